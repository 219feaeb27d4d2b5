"""The run store: run directories under ``$FTUI_HOME/runs`` (DESIGN.md, The run directory)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Sequence

from ftui import __version__
from ftui.core.early_stopping import Outcome, outcome
from ftui.core.errors import FtuiError, RunNotFoundError
from ftui.core.events import LOST, MISSING, TERMINAL_STATES, read_events
from ftui.core.examples import Example
from ftui.core.mfu import run_mfu
from ftui.core.paths import runs_dir
from ftui.core.progress import RunProgress, work_time
from ftui.core.runspec import RunSpec

HEARTBEAT_STALE_S = 60.0
"""A running status whose heartbeat is older than this (and whose pid is gone) is ``lost``."""

SPLITS = ("train", "val", "test")

ENDED_STATES = (*TERMINAL_STATES, LOST, MISSING)
"""States in which no runner works on a run: finished, or seen by a viewer as lost or missing."""


def is_active(state: str) -> bool:
    """A runner is (or should be) working on a run in ``state``: not ended, not lost, not missing.
    The one definition the CLI, the study driver and the TUI use."""
    return state not in ENDED_STATES


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON so a reader sees the old file or the new one, never a torn one."""
    # A unique temp name per writer: two threads of one process may write the same file.
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    os.fchmod(fd, 0o644)  # mkstemp makes 0600; these files are read by viewers like any other
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


@dataclass(frozen=True)
class Run:
    """A run directory and what can be read from it. Cheap to make; reads on demand."""

    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @cached_property
    def spec(self) -> RunSpec:
        """``run.json``, read once into its types (it is written once, when the run is made)."""
        return RunSpec.from_json(_read_json(self.dir / "run.json") or {})

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def status_path(self) -> Path:
        return self.dir / "status.json"

    @property
    def stop_path(self) -> Path:
        return self.dir / "stop"

    @property
    def checkpoints_path(self) -> Path:
        """``checkpoints/step-N/`` folders (core.checkpoints lists them)."""
        return self.dir / "checkpoints"

    def examples(self, split: str) -> list[Example]:
        """The frozen examples of ``split`` (train, val or test)."""
        path = self.dir / "data" / f"{split}.jsonl"
        with open(path, encoding="utf-8") as f:
            return [Example.from_json(json.loads(line)) for line in f if line.strip()]

    def add_heldout(self, name: str, examples: Sequence[Example]) -> Path:
        """Freeze another held-out set as ``data/heldout-NAME.jsonl`` (``ftui eval --data``)."""
        path = self.dir / "data" / f"heldout-{name}.jsonl"
        _write_examples(path, examples)
        return path

    def write_status(self, state: str, **fields: Any) -> None:
        """Atomic ``status.json`` with this process's pid, host and a fresh heartbeat."""
        now = time.time()
        write_json_atomic(self.status_path, {
            "state": state, "pid": os.getpid(), "host": socket.gethostname(),
            "heartbeat": now, "updated": now, **fields,
        })

    def status(self, *, now: float | None = None) -> dict[str, Any]:
        """The latest state, with ``lost`` for a silent runner that has gone."""
        st = _read_json(self.status_path)
        if st is None:
            return {"state": "queued"}
        state = st.get("state", "queued")
        if state not in TERMINAL_STATES and "pid" in st and _runner_gone(st, now or time.time()):
            st = {**st, "state": LOST, "last_state": state}
        return st

    def active(self) -> bool:
        """A runner is (or should be) working on this run now (see ``is_active``)."""
        return is_active(self.status().get("state", "queued"))

    def job(self) -> dict[str, Any]:
        """``job.json`` of an OpenAI run (ids at OpenAI, the fine-tuned model); {} otherwise."""
        return _read_json(self.dir / "job.json") or {}

    @property
    def adapter_path(self) -> Path:
        """``adapter/``: the peft adapter a local run trained (lora, dora, ia3, prefix)."""
        return self.dir / "adapter"

    @property
    def model_path(self) -> Path:
        """``model/``: the whole model a full fine-tuning saved (weights, config, tokenizer)."""
        return self.dir / "model"

    def trained_weights(self) -> Path | None:
        """Where the local training's result is (``adapter/`` or ``model/``), None before it ends."""
        if (self.adapter_path / "adapter_config.json").is_file():
            return self.adapter_path
        if (self.model_path / "config.json").is_file():
            return self.model_path
        return None

    def validation_outcome(self, progress: RunProgress) -> Outcome | None:
        """What the run's validation passes decided (an early stop, the step whose weights it
        kept), from its events folded into ``progress``; None without such passes."""
        hp = self.spec.hyperparameters  # early stopping and keep_best are local settings
        return outcome(progress.last_val, total_steps=progress.total_steps,
                       patience=getattr(hp, "early_stop_patience", 0), keep_best=getattr(hp, "keep_best", False),
                       trained=self.trained_weights() is not None)

    def exports(self) -> dict[str, dict[str, Any]]:
        """``exports.json``: model kind (adapter, merged, gguf) -> {path, files, ts} of its last
        export (``ftui export RUN --model KIND``), for those still on disk."""
        data = _read_json(self.dir / "exports.json") or {}
        return {k: v for k, v in data.items() if isinstance(v, dict) and Path(str(v.get("path", ""))).exists()}

    def where(self) -> list[tuple[str, Path]]:
        """Where this run's model is: its trained weights, then each model export."""
        out = []
        weights = self.trained_weights()
        if weights is not None:
            out.append(("adapter" if weights == self.adapter_path else "model", weights))
        out += [(f"export {kind}", Path(info["path"])) for kind, info in self.exports().items()]
        return out

    def finetuned_ready(self) -> bool:
        """Whether the fine-tuned variant can be evaluated: local trained weights or an ``ft:`` model."""
        return self.trained_weights() is not None or bool(self.job().get("fine_tuned_model"))

    def eval_metrics(self) -> dict[str, dict[str, Any]]:
        """variant -> metrics.json contents, for every evaluated variant."""
        out = {}
        eval_dir = self.dir / "eval"
        if eval_dir.is_dir():
            for sub in sorted(eval_dir.iterdir()):
                m = _read_json(sub / "metrics.json")
                if m is not None:
                    out[sub.name] = m
        return out

    def summary(self, events: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """The object ``ftui show --json`` prints and ``ftui runs --json`` lists.

        ``events``: the run's events when the caller has read them already.
        """
        spec = self.spec
        st = self.status()
        events = read_events(self.events_path) if events is None else events
        progress = RunProgress()
        progress.apply(events)
        train, cost = progress.last_train or {}, progress.cost or {}
        started = spec.created
        ended = st.get("ended")
        state = st.get("state", "queued")
        evaluating = progress.eval_progress if state == "evaluating" else None
        # a working run's open session counts to its runner's last heartbeat
        heartbeat = st.get("heartbeat") if is_active(state) else None
        worked = work_time(events, until=heartbeat if isinstance(heartbeat, (int, float)) else None)
        hw = progress.hw or {}
        validation = self.validation_outcome(progress)
        return {
            "id": self.id,
            "dir": str(self.dir),
            "status": state,
            "message": st.get("message", ""),
            # While it waits in the machine-wide queue: {"place" (1: next), "behind" (the run it
            # waits for), "holder" (the run using its devices)}; null otherwise.
            "queue": st.get("queue") if state == "queued" and isinstance(st.get("queue"), dict) else None,
            # A local run's devices ("cpu", "GPU 0", "GPUs 1,2") and compute threads per process,
            # once its runner chose them.
            "devices": st.get("devices"),
            "threads": hw.get("threads") or st.get("threads"),
            "preset": spec.preset,
            "task": spec.task,
            "backend": spec.backend,
            "model": spec.model,
            # The local backend's training method; what trains and the peak memory, once known.
            "method": getattr(spec.hyperparameters, "method", None),
            "trainable_params": hw.get("trainable_params"),
            "total_params": hw.get("total_params"),
            "peak_mem_bytes": hw.get("peak_mem_bytes"),
            # The training process's peak resident set (host memory, on every device).
            "peak_rss": hw.get("peak_rss"),
            "created": started,
            "ended": ended,
            # From created to ended on the clock, pauses between runner sessions included.
            "duration_s": round(ended - started, 1) if ended and started else None,
            # Working time (core.progress.work_time): evaluation, and everything else (starting,
            # training, saving); null before a runner wrote. Pauses between sessions left out.
            "train_s": None if worked is None else round(worked.train_s, 1),
            "eval_s": None if worked is None else round(worked.eval_s, 1),
            "step": train.get("step"),
            "total_steps": train.get("total_steps"),
            "tokens": train.get("tokens"),
            # Over the last steps (every process's tokens); the model-FLOPs utilisation of the
            # GPUs at that rate (core.mfu; null on a CPU and for a GPU without a known peak).
            "tokens_per_s": train.get("tokens_per_s"),
            "mfu": None if (share := run_mfu(train, hw)) is None else round(share, 4),
            # The validation rows each pass read (the last pass's; null before one), of the split's.
            "val_rows": (progress.last_val or {}).get("rows"),
            "val_split_rows": spec.split_sizes.get("val"),
            # The step early stopping ended training at (null: it did not), and the step whose
            # weights are the result when they are the best validation pass's (keep_best).
            "stopped_early_at": validation and validation.stopped_early_at,
            "kept_step": validation and validation.kept_step,
            "best_val_loss": validation and validation.best_loss,
            "cost_usd": cost.get("usd"),
            # The experiment trackers the run reports to (report_to); empty for none.
            "report_to": list(spec.report.report_to),
            "eval": {v: m.get("metrics", {}) for v, m in self.eval_metrics().items()},
            # The variant now generating, while the run is evaluating; null otherwise.
            "eval_progress": None if evaluating is None else {
                k: evaluating[k] for k in ("variant", "done", "total", "examples_per_s", "eta_s")},
        }


def _runner_gone(st: Mapping[str, Any], now: float) -> bool:
    heartbeat = st.get("heartbeat")
    if not isinstance(heartbeat, (int, float)) or now - heartbeat <= HEARTBEAT_STALE_S:
        return False
    pid = st.get("pid")
    if st.get("host") == socket.gethostname() and isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False  # alive but silent: hung, not lost
    return True


def new_run_id(label: str, *, now: float | None = None) -> str:
    """``20261123-104501-demo-3fa2`` (UTC): sortable by time, readable, unique."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now or time.time()))
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:24] or "run"
    return f"{stamp}-{slug}-{secrets.token_hex(2)}"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def create_run(*, label: str, spec: RunSpec | Mapping[str, Any], splits: Mapping[str, Sequence[Example]],
               root: Path | None = None) -> Run:
    """Make ``runs/<id>/`` with ``run.json`` (spec + id, version, split sizes) and the splits."""
    root = root or runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    while True:
        run_dir = root / new_run_id(label)
        try:
            run_dir.mkdir()
            break
        except FileExistsError:  # same second, same random suffix: try another
            continue
    (run_dir / "data").mkdir()
    for name in SPLITS:
        _write_examples(run_dir / "data" / f"{name}.jsonl", splits.get(name, ()))
    if not isinstance(spec, RunSpec):  # a plain mapping, as run.json holds it (fixtures, tools)
        spec = RunSpec.from_json(spec)
    frozen = replace(spec, id=run_dir.name, ftui_version=__version__, created=round(time.time(), 3),
                     split_sizes={name: len(splits.get(name, ())) for name in SPLITS})
    write_json_atomic(run_dir / "run.json", frozen.to_json())
    return Run(run_dir)


def _write_examples(path: Path, examples: Sequence[Example]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps(ex.to_json(), ensure_ascii=False) + "\n")


def list_runs(root: Path | None = None) -> list[Run]:
    """Every run, oldest first (ids sort by creation time)."""
    root = root or runs_dir()
    if not root.is_dir():
        return []
    return [Run(p) for p in sorted(root.iterdir()) if (p / "run.json").is_file()]


def resolve_run(ref: str, root: Path | None = None) -> Run:
    """A run by full id, unique prefix, ``latest``, or a path to a run directory."""
    path = Path(ref)
    if (path / "run.json").is_file():
        return Run(path.resolve())
    runs = list_runs(root)
    if ref == "latest":
        if not runs:
            raise RunNotFoundError(f"no runs yet in {root or runs_dir()}")
        return max(runs, key=lambda r: (r.spec.created or 0, r.id))
    exact = [r for r in runs if r.id == ref]
    if exact:
        return exact[0]
    matches = [r for r in runs if r.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunNotFoundError(f"no run matches '{ref}' in {root or runs_dir()} (try `ftui runs`)")
    raise RunNotFoundError(
        f"'{ref}' matches {len(matches)} runs ({', '.join(r.id for r in matches[:4])}...); give more of the id"
    )


def refuse_removal(run: Run) -> None:
    """Raise (FtuiError) if a runner works on the run: it is cancelled before it is removed. One
    made but never started (queued, no runner yet) may go."""
    st = run.status()
    state = st.get("state", "queued")
    if is_active(state) and "pid" in st:
        raise FtuiError(f"run {run.id} is {state}: cancel it first (ftui cancel {run.id}), then remove it")


def delete_run(run: Run) -> None:
    """Remove the run's folder and everything in it (see ``refuse_removal``)."""
    refuse_removal(run)
    shutil.rmtree(run.dir)
