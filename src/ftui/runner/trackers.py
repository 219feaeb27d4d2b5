"""The runner's experiment trackers: TensorBoard, MLflow and W&B, fed from the run's own events.

Every event the runner writes is queued (an ``EventWriter`` listener), whichever backend wrote
it, so a local and an OpenAI run report the same series. One thread opens the trackers (their
imports take seconds, and training must not wait for them), turns events into points
(``core.trackers.Series``) and hands them to each tracker that still works. A tracker that
raises is closed and left off, with its traceback in ``runner.log`` and a warning event: the
run goes on.

``RUN/trackers.json`` remembers, per tracker, the last step it reported and its MLflow or W&B
run id: a resumed (or re-evaluated) run goes on in the same tracker run and reports each step
once; steps a resume re-does are not reported again. It never holds a secret: W&B and MLflow
read their credentials from the environment themselves.
"""

from __future__ import annotations

import os
import queue
import re
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from ftui.core.events import EventWriter
from ftui.core.paths import ftui_home
from ftui.core.runs import Run, write_json_atomic
from ftui.core.trackers import STATE_FILE, Point, Series, public_uri, read_state, run_settings

CLOSE_TIMEOUT_S = 120.0
"""How long the runner waits, at its end, for the trackers to write what is queued and close
(an online W&B or MLflow server may be slow); the run's result is recorded before."""
_CLOSED_AS = {"succeeded": ("FINISHED", 0), "failed": ("FAILED", 1), "cancelled": ("KILLED", 1)}


class Tracker(Protocol):
    """One library, made as ``cls(run, settings, through, remembered)``: ``settings`` the run's
    flat settings (``core.trackers.run_settings``), ``through`` the last training step an earlier
    session reported (0: none), ``remembered`` what ``state()`` returned then. Any method may
    raise: the feed turns that tracker off."""

    def log(self, point: Point, ts: float) -> None: ...

    def flush(self) -> None: ...

    def close(self, state: str) -> None: ...

    def state(self) -> dict[str, Any]: ...


class TensorBoardTracker:
    """Event files in ``RUN/tensorboard`` (``tensorboard --logdir RUN/tensorboard``)."""

    def __init__(self, run: Run, settings: Mapping[str, Any], through: int, remembered: Mapping[str, Any]) -> None:
        # tensorboardX writes the files with protobuf (it imports torch when installed, which the
        # runner has anyway); torch's own writer needs the tensorboard package and grpcio.
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            from torch.utils.tensorboard import SummaryWriter
        # A resumed run's new file purges, for TensorBoard's readers, what an earlier session
        # wrote past the last step it recorded as reported (a killed runner's unflushed tail).
        self.writer = SummaryWriter(str(run.dir / "tensorboard"), purge_step=through + 1 if through else None,
                                    flush_secs=30)
        if not through:
            rows = "\n".join(f"| {k} | {v} |" for k, v in settings.items())
            self.writer.add_text("settings", f"| setting | value |\n|---|---|\n{rows}", 0)

    def log(self, point: Point, ts: float) -> None:
        for key, value in point.values.items():
            self.writer.add_scalar(key, value, point.step, walltime=ts)

    def flush(self) -> None:
        self.writer.flush()

    def close(self, state: str) -> None:
        self.writer.close()

    def state(self) -> dict[str, Any]:
        return {}


class MlflowTracker:
    """An MLflow run in experiment ``$MLFLOW_EXPERIMENT_NAME`` (else ``ftui``) at
    ``$MLFLOW_TRACKING_URI``, else in a file store at ``$FTUI_HOME/mlruns``."""

    def __init__(self, run: Run, settings: Mapping[str, Any], through: int, remembered: Mapping[str, Any]) -> None:
        uri = os.environ.get("MLFLOW_TRACKING_URI") or None
        if uri is None:
            uri = (ftui_home() / "mlruns").resolve().as_uri()
            # MLflow 3 refuses a file store unless asked: ours is the offline default (this process only).
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        self.uri = public_uri(uri)
        self.run_id = self._existing(remembered.get("run_id"))
        if self.run_id is None:
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "ftui"
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
            created = self.client.create_run(experiment_id, run_name=run.id,
                                             tags={"ftui.run_id": run.id, "ftui.run_dir": str(run.dir)})
            self.run_id = created.info.run_id
            params = [Param(k, str(v)[:6000]) for k, v in settings.items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
                self.client.log_batch(self.run_id, params=params[i:i + 100])
        else:
            self.client.update_run(self.run_id, status="RUNNING")

    def _existing(self, run_id: Any) -> str | None:
        if not isinstance(run_id, str):
            return None
        try:
            return self.client.get_run(run_id).info.run_id
        except Exception:  # noqa: BLE001 - another store, or deleted there: a new MLflow run
            return None

    def log(self, point: Point, ts: float) -> None:
        from mlflow.entities import Metric

        self.client.log_batch(self.run_id, metrics=[Metric(k, v, int(ts * 1000), point.step)
                                                    for k, v in point.values.items()])

    def flush(self) -> None:
        pass  # every call above is written when it returns

    def close(self, state: str) -> None:
        self.client.set_terminated(self.run_id, status=_CLOSED_AS.get(state, ("FINISHED", 0))[0])

    def state(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "tracking_uri": self.uri}


class WandbTracker:
    """A W&B run in project ``$WANDB_PROJECT`` (else ``ftui``), id from the ftui run's; files
    under ``$WANDB_DIR``, else the run folder (``RUN/wandb``). ``WANDB_MODE=offline`` writes
    there only (``wandb sync`` uploads later)."""

    def __init__(self, run: Run, settings: Mapping[str, Any], through: int, remembered: Mapping[str, Any]) -> None:
        import wandb

        # init_timeout: W&B's own 90 s was seen to run out while the runner loads a model on a
        # busy 2-core machine (the run then goes on without W&B, with a warning)
        run_id = remembered.get("run_id") or re.sub(r"[^A-Za-z0-9_-]", "-", run.id)[:64]
        self.project = os.environ.get("WANDB_PROJECT") or "ftui"
        self.dir = os.environ.get("WANDB_DIR") or str(run.dir)
        self.run = wandb.init(project=self.project, name=run.id, id=run_id, resume="allow", config=dict(settings),
                              dir=self.dir, settings=wandb.Settings(console="off", silent=True, init_timeout=300.0))
        self.run_id = run_id
        self.mode = os.environ.get("WANDB_MODE") or "online"

    def log(self, point: Point, ts: float) -> None:
        self.run.log(dict(point.values), step=point.step)

    def flush(self) -> None:
        pass  # the W&B service process writes and uploads on its own

    def close(self, state: str) -> None:
        self.run.finish(exit_code=_CLOSED_AS.get(state, ("FINISHED", 0))[1])

    def state(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "project": self.project, "mode": self.mode, "dir": str(Path(self.dir) / "wandb")}


TRACKER_CLASSES: dict[str, Callable[..., Tracker]] = {
    "tensorboard": TensorBoardTracker, "mlflow": MlflowTracker, "wandb": WandbTracker}


class _End:
    def __init__(self, state: str) -> None:
        self.state = state


class TrackerFeed:
    """Queues the events ``events`` writes and reports them to the run's trackers on a thread."""

    def __init__(self, run: Run, events: EventWriter, *,
                 classes: Mapping[str, Callable[..., Tracker]] | None = None) -> None:
        self.run, self.events = run, events
        self.names = tuple(run.spec.report.report_to)
        self.classes = dict(classes or TRACKER_CLASSES)
        self.trackers: dict[str, Tracker] = {}
        self.through: dict[str, dict[str, int]] = {}
        """Per tracker: the last step of each series (train, val) it reported."""
        self.remembered: dict[str, dict[str, Any]] = {}
        self.final_state = ""
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="ftui-trackers", daemon=True)

    @property
    def state_path(self) -> Path:
        return self.run.dir / STATE_FILE

    def start(self) -> "TrackerFeed":
        self.events.add_listener(self._queue.put)
        self._thread.start()
        return self

    def close(self, state: str, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Report what is queued, close every tracker as ending in ``state`` (succeeded, failed,
        cancelled), remember what was reported. Events written after this go nowhere."""
        self._queue.put(_End(state))
        self._thread.join(timeout)
        if self._thread.is_alive():
            print(f"ftui runner: the trackers ({', '.join(self.trackers)}) did not close within {timeout:.0f} s; "
                  "what they had not written is lost", file=sys.stderr, flush=True)

    # -- the thread ------------------------------------------------------------------------
    def _work(self) -> None:
        try:
            self._feed()
        except Exception as exc:  # noqa: BLE001 - a bug here must not end the run either
            for name in list(self.trackers):
                self._off(name, exc, "stopped")
            self.events.remove_listener(self._queue.put)

    def _feed(self) -> None:
        saved = read_state(self.run.dir)
        settings = run_settings(self.run.spec)
        for name in self.names:
            self.remembered[name] = dict(saved.get(name) or {})
            through = self.remembered[name].get("through")
            through = {k: v for k, v in through.items() if isinstance(v, int)} if isinstance(through, dict) else {}
            try:
                self.trackers[name] = self.classes[name](self.run, settings, through.get("train", 0),
                                                         self.remembered[name])
                self.through[name] = through
            except Exception as exc:  # noqa: BLE001 - a tracker never stops the run
                self._off(name, exc, "could not start")
        series = Series(step=max((t.get("train", 0) for t in self.through.values()), default=0))
        done = False
        while not done:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for event in batch:
                if isinstance(event, _End):
                    done, self.final_state = True, event.state
                    continue
                self._report(series.points(event), float(event.get("ts") or 0.0))
            self._call_all("flush", lambda t: t.flush())
            self._save()
        self._call_all("close", lambda t: t.close(self.final_state))
        self.events.remove_listener(self._queue.put)
        self._save()

    def _report(self, points: list[Point], ts: float) -> None:
        for point in points:
            for name, tracker in list(self.trackers.items()):
                if point.series and point.step <= self.through[name].get(point.series, 0):
                    continue  # reported by an earlier session of this run
                try:
                    tracker.log(point, ts)
                except Exception as exc:  # noqa: BLE001
                    self._off(name, exc, "failed")
                    continue
                if point.series:
                    self.through[name][point.series] = point.step

    def _call_all(self, what: str, call: Callable[[Tracker], None]) -> None:
        for name, tracker in list(self.trackers.items()):
            try:
                call(tracker)
            except Exception as exc:  # noqa: BLE001
                self._off(name, exc, f"failed to {what}", close=what != "close")

    def _off(self, name: str, exc: BaseException, what: str, *, close: bool = True) -> None:
        tracker = self.trackers.pop(name, None)
        message = (f"tracker {name} {what} ({type(exc).__name__}: {str(exc)[:300]}); it is off for the rest of "
                   "this run, which goes on (traceback in runner.log)")
        try:
            print(f"ftui runner: {message}", file=sys.stderr)
            traceback.print_exception(exc, file=sys.stderr)
            sys.stderr.flush()
        except OSError:
            pass
        if tracker is not None and close:
            try:
                tracker.close("failed")
            except Exception:  # noqa: BLE001 - it is off already
                pass
        try:
            self.events.write("log", level="warning", message=message)
        except (OSError, ValueError):  # the writer is closed, or the disk is full
            pass

    def _save(self) -> None:
        state = {name: {**self.remembered.get(name, {}), **tracker.state(), "through": self.through[name]}
                 for name, tracker in self.trackers.items()}
        # a tracker that is off keeps what an earlier session remembered of it
        state.update({name: self.remembered[name] for name in self.names
                      if name not in state and self.remembered.get(name)})
        try:
            write_json_atomic(self.state_path, state)
        except OSError:
            pass  # a full disk: the run's failure path says so; the trackers go on


def start_trackers(run: Run, events: EventWriter) -> TrackerFeed | None:
    """The run's tracker feed, started; None when it reports to none."""
    if not run.spec.report.report_to:
        return None
    return TrackerFeed(run, events).start()
