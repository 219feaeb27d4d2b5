"""Experiment trackers (``report_to``): the series TensorBoard, MLflow and W&B receive are the
ones in ``events.jsonl``, for a local run through the real runner, an OpenAI run against the
stand-in, and a resumed run; a missing library is refused before a run exists; a tracker that
fails is turned off while the run goes on. Read back from what each library wrote on disk."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from ftui.core.errors import ConfigError
from ftui.core.events import EventWriter, read_events
from ftui.core.request import RunRequest, prepare_run, resolve_request
from ftui.core.runs import Run
from ftui.core.trackers import Point, destinations, public_uri
from ftui.runner.trackers import TensorBoardTracker, TrackerFeed

from conftest import run_cli
from test_runner import toy_data

ALL = "report_to=tensorboard,mlflow,wandb"


# -- readers of what each library wrote ----------------------------------------------------------

def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from every event file (TFRecord: length, crc, Event proto, crc)."""
    from tensorboardX.proto.event_pb2 import Event

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = Event()
            event.ParseFromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                if v.HasField("simple_value"):
                    out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


def wandb_history(root: Path, config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The history rows of every offline W&B run under ``root/wandb`` (its ``.wandb`` files:
    a LevelDB-style log of ``Record`` protos in 32 KiB blocks after a 7-byte header); the run's
    config into ``config`` when given."""
    from wandb.proto.wandb_internal_pb2 import Record

    rows, config = [], {} if config is None else config
    for path in sorted(root.glob("wandb/offline-run-*/run-*.wandb")):
        data = path.read_bytes()
        assert data[:4] == b":W&B"
        pos, pending = 7, b""
        while pos + 7 <= len(data):
            left = 32768 - pos % 32768
            if left < 7:  # a block's tail too short for a header is padding
                pos += left
                continue
            length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
            pending += data[pos + 7:pos + 7 + length]
            pos += 7 + length
            if kind in (1, 4):  # FULL, LAST: a whole record
                record = Record()
                record.ParseFromString(pending)
                pending = b""
                kind_of = record.WhichOneof("record_type")
                if kind_of in ("run", "config"):  # the config comes with the run, updates after it
                    updates = record.run.config.update if kind_of == "run" else record.config.update
                    config.update({i.key: json.loads(i.value_json) for i in updates})
                if record.WhichOneof("record_type") == "history":
                    rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
    return rows


def mlflow_history(home: Path, run_dir: Path, key: str) -> list[tuple[int, float]]:
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    run_id = json.loads((run_dir / "trackers.json").read_text())["mlflow"]["run_id"]
    client = MlflowClient(tracking_uri=(home / "mlruns").as_uri())
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))]


def series(run: Run, kind: str = "train") -> list[tuple[int, float]]:
    return [(e["step"], e["loss"]) for e in read_events(run.events_path) if e["type"] == kind]


def approx(pairs: list[tuple[int, float]]) -> list[Any]:
    return [(s, pytest.approx(v, rel=1e-6)) for s, v in pairs]  # TensorBoard keeps float32


# -- one tiny local run reporting to all three ---------------------------------------------------

@pytest.fixture(scope="module")
def tracked(tiny_model, tmp_path_factory):
    """A tiny-model run through the real runner with all three trackers, W&B offline and MLflow
    in its default file store under FTUI_HOME."""
    home = tmp_path_factory.mktemp("tracked-home")
    (home / "models").symlink_to(tmp_path_factory.getbasetemp() / "models")
    env = {"FTUI_HOME": str(home), "WANDB_MODE": "offline", "WANDB_API_KEY": "", "MLFLOW_TRACKING_URI": ""}
    res = run_cli("train", "--data", str(toy_data(tmp_path_factory.mktemp("toy"))), "--task", "text",
                  "--model", str(tiny_model), "--max-steps", "6", "--json", "--set", "batch_size=4",
                  "--set", "eval_every=3", "--set", "split.test=4", "--set", "split.val=4",
                  "--set", "eval.max_new_tokens=4", "--set", "eval.k=1", "--set", "eval.limit=2", "--set", ALL, env=env)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    run = Run(Path(info["dir"]))
    assert info["status"] == "succeeded", (run.dir / "runner.log").read_text()[-3000:]
    return home, run, env


def test_a_local_run_reports_events_series_to_tensorboard_mlflow_and_wandb(tracked):
    home, run, env = tracked
    assert run.spec.report.report_to == ("tensorboard", "mlflow", "wandb")
    train, val = series(run), series(run, "val")
    assert [s for s, _ in train] == [1, 2, 3, 4, 5, 6] and [s for s, _ in val] == [3, 6]
    log = (run.dir / "runner.log").read_text()
    assert "tracker" not in log, log[-2000:]  # none was turned off
    evals = {e["variant"]: e for e in read_events(run.events_path) if e["type"] == "eval"}
    assert set(evals) == {"base", "kshot", "finetuned"}

    tb = tensorboard_scalars(run.dir / "tensorboard")
    assert tb["train/loss"] == approx(train) and tb["val/loss"] == approx(val)
    assert [s for s, _ in tb["train/tokens_per_s"]] == [1, 2, 3, 4, 5, 6]
    assert tb["eval/finetuned/exact"] == approx([(6, evals["finetuned"]["metrics"]["exact"])])

    assert mlflow_history(home, run.dir, "train/loss") == train
    assert mlflow_history(home, run.dir, "val/loss") == val
    assert mlflow_history(home, run.dir, "eval/base/exact") == [(6, evals["base"]["metrics"]["exact"])]

    config: dict[str, Any] = {}
    rows = wandb_history(run.dir, config)
    assert [(r["_step"], r["train/loss"]) for r in rows if "train/loss" in r] == train
    assert [(r["_step"], r["val/loss"]) for r in rows if "val/loss" in r] == val
    assert rows[-1]["eval/kshot/normalized"] == evals["kshot"]["metrics"]["normalized"]

    # the hyperparameters went too, and show says where each tracker writes
    assert config["learning_rate"] == run.spec.hyperparameters.learning_rate and config["backend"] == "local"
    assert config["split_sizes.test"] == 4 and config["target_modules"] == "q_proj,k_proj,v_proj,o_proj"
    shown = run_cli("show", run.id, env=env).stdout
    assert f"report to    tensorboard: {run.dir / 'tensorboard'}" in shown
    assert f"mlflow: {(home / 'mlruns').resolve().as_uri()}, run " in shown and "(offline: " in shown
    assert json.loads(run_cli("show", run.id, "--json", env=env).stdout)["report_to"] == ["tensorboard", "mlflow", "wandb"]


# -- resume, failure, missing libraries (no model) -----------------------------------------------

def _session(run: Run, steps: list[int], end: str, classes=None) -> None:
    events = EventWriter(run.events_path)
    feed = TrackerFeed(run, events, classes=classes).start()
    for s in steps:
        events.write("train", step=s, total_steps=6, epoch=s / 6, loss=round(3.0 / s, 5), lr=1e-3,
                     tokens=100 * s, tokens_per_s=50.0)
        events.write("cost", usd=0.01 * s, projected_usd=0.06, basis="test")
        if s % 2 == 0:
            events.write("val", step=s, loss=round(2.0 / s, 5))
    feed.close(end)
    events.close()


def test_a_resumed_run_reports_each_step_once_in_the_same_tracker_runs(monkeypatch, ftui_home):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = prepare_run(RunRequest(preset="demo", overrides=[ALL]))
    _session(run, [1, 2, 3, 4], "cancelled")
    first = json.loads((run.dir / "trackers.json").read_text())
    assert first["tensorboard"]["through"] == {"train": 4, "val": 4}
    # the resumed runner re-does steps 3 and 4 (its checkpoint was at 2): reported once, not twice
    _session(run, [3, 4, 5, 6], "succeeded")
    assert json.loads((run.dir / "trackers.json").read_text())["mlflow"]["run_id"] == first["mlflow"]["run_id"]
    # a tracker that could not start or failed says so in the events (and the run goes on): none here
    assert [e["message"] for e in read_events(run.events_path) if e["type"] == "log"] == []
    train = [(s, round(3.0 / s, 5)) for s in range(1, 7)]
    assert tensorboard_scalars(run.dir / "tensorboard")["train/loss"] == approx(train)
    assert mlflow_history(ftui_home, run.dir, "train/loss") == train
    assert [(r["_step"], r["train/loss"]) for r in wandb_history(run.dir) if "train/loss" in r] == train
    assert [s for s, _ in mlflow_history(ftui_home, run.dir, "val/loss")] == [2, 4, 6]
    assert len(list((run.dir / "wandb").glob("offline-run-*"))) == 2  # one W&B run, resumed (`wandb sync` joins them)


def test_a_failing_tracker_is_turned_off_and_the_others_go_on(ftui_home, capfd):
    class Broken:
        def __init__(self, *args: Any) -> None:
            pass

        def log(self, point: Point, ts: float) -> None:
            if point.step == 2:
                raise RuntimeError("the tracking server went away")

        def flush(self) -> None:
            pass

        def close(self, state: str) -> None:
            pass

        def state(self) -> dict[str, Any]:
            return {}

    run = prepare_run(RunRequest(preset="demo", overrides=["report_to=tensorboard,mlflow"]))
    _session(run, [1, 2, 3], "succeeded", classes={"tensorboard": TensorBoardTracker, "mlflow": Broken})
    warnings = [e["message"] for e in read_events(run.events_path) if e["type"] == "log"]
    assert any("tracker mlflow failed (RuntimeError: the tracking server went away); it is off" in w for w in warnings)
    assert "Traceback" in capfd.readouterr().err  # runner.log, in a real runner
    assert [s for s, _ in tensorboard_scalars(run.dir / "tensorboard")["train/loss"]] == [1, 2, 3]
    assert "mlflow" not in json.loads((run.dir / "trackers.json").read_text())


def test_report_to_is_a_setting_of_both_backends_checked_where_it_is_given(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    for backend in ("local", "openai"):
        spec = resolve_request(RunRequest(preset="demo", backend=backend, overrides=["report_to=wandb, tensorboard"])).spec
        assert spec.report.report_to == ("wandb", "tensorboard")
    assert resolve_request(RunRequest(preset="demo")).spec.report.report_to == ()  # off by default
    assert resolve_request(RunRequest(preset="demo", overrides=["report.report_to=none"])).spec.report.report_to == ()
    with pytest.raises(ConfigError, match="unknown tracker.*'comet'; choose from tensorboard, mlflow, wandb"):
        resolve_request(RunRequest(preset="demo", overrides=["report_to=tensorboard,comet"]))


@pytest.mark.parametrize("library,tracker", [("wandb", "wandb"), ("mlflow", "mlflow")])
def test_a_missing_library_is_refused_before_a_run_exists(monkeypatch, ftui_home, capsys, library, tracker):
    from ftui.cli import main

    monkeypatch.setitem(sys.modules, library, None)  # `import wandb` fails as when it is not installed
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert main(["train", "--preset", "demo", "--set", f"report_to=tensorboard,{tracker}"]) == 2
    err = capsys.readouterr().err
    assert f"report_to: {tracker} is not installed" in err and f"pip install 'ftui[{tracker}]'" in err
    assert "Traceback" not in err
    assert not list((ftui_home / "runs").glob("*/run.json"))  # no run was made


def test_wandb_online_without_a_key_is_refused_before_a_run_exists(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with pytest.raises(ConfigError, match="wandb has no API key here.*WANDB_MODE=offline"):
        resolve_request(RunRequest(preset="demo", overrides=["report_to=wandb"]))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_request(RunRequest(preset="demo", overrides=["report_to=wandb"])).spec.report.report_to == ("wandb",)
    assert "x" * 40 not in json.dumps(prepare_run(RunRequest(preset="demo", overrides=["report_to=wandb"])).spec.to_json())


def test_show_says_where_a_tracker_will_write_before_its_runner_started(ftui_home):
    run = prepare_run(RunRequest(preset="demo", overrides=["report_to=tensorboard,mlflow"]))
    assert destinations(run.dir, run.spec.report.report_to) == {
        "tensorboard": str(run.dir / "tensorboard"), "mlflow": "not started yet"}
    # what trackers.json records of an MLflow server never holds its password
    assert public_uri("https://me:s3cret@mlflow.example:5000/x") == "https://mlflow.example:5000/x"
    assert public_uri("file:///home/me/mlruns") == "file:///home/me/mlruns"


# -- an OpenAI run, through the same path --------------------------------------------------------

def test_an_openai_run_reports_the_same_series_with_its_cost(ftui_home):
    from openai_standin import StandIn
    from test_openai import FAST

    server = StandIn().start()
    try:
        res = run_cli("train", "--preset", "demo", "--backend", "openai", "--json", *FAST,
                      "--set", "eval.limit=2", "--set", "report_to=tensorboard", env=server.env())
    finally:
        server.stop()
    assert res.returncode == 0, res.stderr
    run = Run(Path(json.loads(res.stdout)["dir"]))
    tb = tensorboard_scalars(run.dir / "tensorboard")
    assert tb["train/loss"] == approx(series(run)) and len(tb["train/loss"]) == 300
    assert tb["val/loss"] == approx(series(run, "val"))
    costs = [e["usd"] for e in read_events(run.events_path) if e["type"] == "cost"]
    assert [v for _, v in tb["cost/usd"]] == pytest.approx(costs, rel=1e-6) and costs[-1] > 0
    assert {"eval/base/valid", "eval/kshot/valid", "eval/finetuned/exact"} <= set(tb)


# -- the Backend screen's tick boxes -------------------------------------------------------------

async def test_backend_screen_tick_boxes_set_report_to_and_a_missing_library_stops_the_start(monkeypatch):
    from ftui.tui.app import FtuiApp
    from test_tui import fake_services, gpu_machine, wait_until

    launched: list[Run] = []
    app = FtuiApp(services=fake_services(detect_machine=gpu_machine, launch=lambda run: launched.append(run) or 0))
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if W&B were not installed
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.screen.choice is not None)
        await pilot.press("n")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "BackendScreen")
        be = app.screen
        error = lambda: str(be.query_one("#start-error").render())  # noqa: E731
        assert be.report_overrides() == []  # off by default
        await pilot.click("#report-tensorboard")
        await pilot.click("#report-wandb")
        assert be.report_overrides() == ["report_to=tensorboard,wandb"]
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "not installed" in error(), timeout=30, what="the refusal")
        assert "report_to: wandb is not installed" in error() and launched == []
        await pilot.click("#report-wandb")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: bool(launched), timeout=30, what="the launch")
        assert launched[0].spec.report.report_to == ("tensorboard",)
