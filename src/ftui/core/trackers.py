"""Experiment trackers (``report_to``): which library each needs, whether it is installed here,
and what each event of ``events.jsonl`` becomes for them (scalars by step, the settings).

The pure half: the runner (``ftui.runner.trackers``) holds the library adapters and feeds them
from the run's own event stream, so a local and an OpenAI run report the same series. Nothing
here imports a tracker library: whether one is installed is asked of the import system only
(the TUI checks it too).
"""

from __future__ import annotations

import importlib.util
import json
import netrc
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ftui.core.config import TRACKERS, to_plain
from ftui.core.errors import ConfigError

if TYPE_CHECKING:
    from ftui.core.runspec import RunSpec

LIBRARIES: dict[str, tuple[tuple[str, ...], str]] = {
    # tensorboardX writes event files with protobuf alone; torch.utils.tensorboard needs the
    # tensorboard package (and grpcio): either will do, tensorboardX is the extra's choice.
    "tensorboard": (("tensorboardX", "tensorboard"), "tensorboardX"),
    "mlflow": (("mlflow",), "mlflow-skinny"),
    "wandb": (("wandb",), "wandb"),
}
"""Tracker -> (modules any one of which will do, the PyPI package ``ftui[TRACKER]`` installs)."""
assert set(LIBRARIES) == set(TRACKERS)


def installed(name: str) -> bool:
    """Whether the library of tracker ``name`` can be imported here (nothing is imported)."""
    for module in LIBRARIES[name][0]:
        try:
            if importlib.util.find_spec(module) is not None:
                return True
        except (ImportError, ValueError):  # a broken install, or a module set to None in sys.modules
            continue
    return False


def missing_trackers(names: Sequence[str]) -> list[str]:
    """The trackers in ``names`` whose library is not installed."""
    return [n for n in names if not installed(n)]


def check_trackers(names: Sequence[str]) -> None:
    """Refuse, before a run exists, trackers whose library is missing (ConfigError, exit 2)."""
    missing = missing_trackers(names)
    if not missing:
        if "wandb" in names and _wandb_without_key():
            raise ConfigError(
                "report_to: wandb has no API key here: export WANDB_API_KEY (or run `wandb login`), or set "
                "WANDB_MODE=offline to keep the W&B run in the run folder (`wandb sync` uploads it later). "
                "Nothing was started.")
        return
    packages = ", ".join(LIBRARIES[n][1] for n in missing)
    raise ConfigError(
        f"report_to: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed in this Python "
        f"({sys.executable}), so the run cannot report to {'it' if len(missing) == 1 else 'them'}. Install "
        f"{'it' if len(missing) == 1 else 'them'} with pip install 'ftui[{','.join(missing)}]' "
        f"(the package{'s' if len(missing) > 1 else ''} {packages}), or leave "
        f"{'it' if len(missing) == 1 else 'them'} out of report_to. Nothing was started.")


def _wandb_without_key() -> bool:
    """W&B would run online with no key to log in with (its runner would stop reporting at once)."""
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun") or os.environ.get("WANDB_API_KEY"):
        return False
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or ""
    try:
        return netrc.netrc(os.environ.get("NETRC") or None).authenticators(host) is None  # `wandb login` writes it
    except (OSError, netrc.NetrcParseError):
        return True


@dataclass(frozen=True)
class Point:
    """Scalars reported together at one step."""

    step: int
    values: Mapping[str, float]
    series: str = ""
    """``train`` or ``val`` when the step is the event's own: a resumed run reports each step of
    a series once. Empty for values placed at the latest step (cost, eval), which may be
    reported again (a re-evaluation)."""


_TRAIN = ("loss", "lr", "epoch", "tokens", "tokens_per_s", "token_accuracy")
_VAL = ("loss", "token_accuracy")
_COST = ("usd", "projected_usd")


def _numbers(prefix: str, source: Mapping[str, Any], keys: Sequence[str] | None = None) -> dict[str, float]:
    out = {}
    for key in keys if keys is not None else sorted(source):
        value = source.get(key)
        if isinstance(value, (int, float)) and value == value:  # NaN is no point on a chart
            out[f"{prefix}/{key}"] = float(value)
    return out


class Series:
    """Turns events into points: ``train/*`` and ``val/*`` at their step; ``cost/*`` and
    ``eval/VARIANT/*`` at the latest step seen (the step training ended at, for eval)."""

    def __init__(self, *, step: int = 0) -> None:
        self.step = step
        """The latest step seen; a resumed or re-evaluated run starts at the one reported before."""

    def points(self, event: Mapping[str, Any]) -> list[Point]:
        kind = event.get("type")
        if kind in ("train", "val"):
            self.step = max(self.step, int(event["step"]))
            values = _numbers(kind, event, _TRAIN if kind == "train" else _VAL)
            return [Point(int(event["step"]), values, kind)] if values else []
        if kind == "cost":
            values = _numbers("cost", event, _COST)
        elif kind == "eval":
            metrics = event.get("metrics") or {}
            values = {**_numbers(f"eval/{event['variant']}", metrics), f"eval/{event['variant']}/n": float(event["n"])}
        else:
            return []
        return [Point(self.step, values)] if values else []


def run_settings(spec: "RunSpec") -> dict[str, Any]:
    """The run's settings as one flat mapping of plain values (the trackers' hyperparameters):
    what ran, on what data, with which backend settings (those its method reads), eval and split."""
    def plain(value: Any) -> Any:
        value = to_plain(value)
        if isinstance(value, list):
            return ",".join(map(str, value))
        return "" if value is None else value

    out: dict[str, Any] = {"backend": spec.backend, "model": spec.model, "task": spec.task,
                           "preset": spec.preset or "", "data": spec.data.source, "data_sha256": spec.data.sha256 or "",
                           "run_id": spec.id}
    out.update({k: plain(v) for k, v in spec.used_settings().items()})
    out.update({f"eval.{k}": plain(v) for k, v in (to_plain(spec.eval) or {}).items()})
    out.update({f"split.{k}": plain(v) for k, v in (to_plain(spec.split) or {}).items()})
    out.update({f"split_sizes.{k}": v for k, v in spec.split_sizes.items()})
    return out


STATE_FILE = "trackers.json"
"""``RUN/trackers.json``: per tracker, what the runner reported (``through``: the last step of
each series) and where (``run_id``, ``tracking_uri``, ``project``, ``dir``). Never a secret."""


def read_state(run_dir: Path) -> dict[str, Any]:
    """``RUN/trackers.json``, or {} before a runner wrote it."""
    try:
        state = json.loads((Path(run_dir) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def public_uri(uri: str) -> str:
    """A tracking URI without the user and password it may carry (it is written and printed)."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))


def destinations(run_dir: Path, names: Sequence[str]) -> dict[str, str]:
    """Where each tracker of the run writes, in words (``ftui show``); "not started yet" before
    the runner opened it."""
    state = read_state(run_dir)
    out = {}
    for name in names:
        seen = state.get(name) if isinstance(state.get(name), dict) else {}
        if name == "tensorboard":
            out[name] = str(Path(run_dir) / "tensorboard")
        elif not seen.get("run_id"):
            out[name] = "not started yet"
        elif name == "mlflow":
            out[name] = f"{seen.get('tracking_uri', '')}, run {seen['run_id']}"
        else:
            where = f" ({seen['mode']}: {seen.get('dir', '')})" if seen.get("mode") in ("offline", "disabled") else ""
            out[name] = f"project {seen.get('project', '')}, run {seen['run_id']}{where}"
    return out
