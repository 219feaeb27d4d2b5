"""The backend registry's pure facts: what each backend is called, its settings class, whether
it trains remotely, how many processes it runs, which flags it takes, and what it asks before
spending money. The work itself (training, answering prompts) lives in ``ftui.backends.NAME``
and is imported by the runner only.

Adding a backend is one folder under ``ftui/backends`` plus one ``register(BackendFacts(...))``
line; a backend outside this package registers from a module named in ``$FTUI_PLUGINS``
(comma-separated module names, imported on first use), so the CLI, the runner and the TUI
all see it. No code outside a backend's folder compares backend names.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ftui.core.config import METHODS, LocalSettings, OpenAISettings
from ftui.core.errors import ConfigError, FtuiError

if TYPE_CHECKING:
    from ftui.core.request import Resolved
    from ftui.core.runspec import RunSpec

PLUGINS_ENV = "FTUI_PLUGINS"


@dataclass(frozen=True)
class SpendCheck:
    """What starting a run would spend, known before anything is sent."""

    lines: tuple[str, ...]
    """The pre-flight, as lines for a terminal."""
    problems: tuple[str, ...] = ()
    """Why the service would refuse the data: nothing may start while there are any."""
    missing_credentials: str = ""
    """What to set when the credentials are missing (never the secret itself)."""
    estimate_usd: float | None = None
    budget_usd: float | None = None
    estimate_text: str = ""
    """The estimate in words for the question, e.g. "$1.20 (training $1.00, eval about $0.20)"."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """The pre-flight as JSON (``ftui data check --backend NAME --json`` prints it under NAME)."""

    @property
    def over_budget(self) -> bool:
        return self.estimate_usd is not None and self.budget_usd is not None and self.estimate_usd > self.budget_usd

    @property
    def question(self) -> str:
        """The confirmation asked when the estimate is above the budget."""
        return (f"The estimate {self.estimate_text or f'${self.estimate_usd:.2f}'} is above the budget "
                f"${self.budget_usd:g}. Start anyway?")


def _one_process(spec: "RunSpec") -> int:
    return 1


@dataclass(frozen=True)
class BackendFacts:
    """One backend, as everything outside its folder knows it."""

    name: str
    """What ``--backend`` and ``run.json`` call it."""
    title: str
    """A few words for lists and messages."""
    settings: type
    """The dataclass of its settings (a ``model`` field at least); a preset's ``[NAME]`` table."""
    module: str
    """The module implementing it (``train``, ``answerer``); imported by the runner only."""
    remote: bool = False
    """It trains elsewhere: a study starts it at once, and it uses no local devices."""
    epochs_key: str = "epochs"
    """The setting ``--epochs`` sets."""
    whole_epochs: bool = False
    """``--epochs`` must be a whole number."""
    max_steps_key: str | None = "max_steps"
    """The setting ``--max-steps`` sets; None: the backend has no step limit and refuses it."""
    processes: Callable[["RunSpec"], int] = _one_process
    """How many local processes the runner starts for training, from the run's settings."""
    spend_check: Callable[["Resolved"], SpendCheck] | None = None
    """What the run would spend (pre-flight, credentials, estimate); None: nothing to ask."""
    readiness: Callable[[], str] | None = None
    """A line saying whether it can start here (credentials set or not; never the secret)."""
    data_check_options: Mapping[str, Any] = field(default_factory=dict)
    """How ``ftui data check --backend NAME`` differs: ``tokenizer`` "none" skips counting."""
    preflight: Callable[["RunSpec"], None] | None = None
    """Checks made before a run exists (raise ``FtuiError`` with the reason): what would
    otherwise fail in the runner seconds or minutes later."""
    methods: Mapping[str, str] = field(default_factory=dict)
    """Its training methods (name -> one line), chosen by its ``method`` setting, one run each
    in ``ftui study --methods``; empty: it trains one way."""

    def epochs_flag(self, epochs: float) -> str:
        """``--epochs N`` as a ``key=value`` setting of this backend."""
        if self.whole_epochs and (not float(epochs).is_integer() or epochs < 1):
            raise ConfigError(f"--epochs: {self.title} trains whole epochs, got {epochs:g}")
        return f"{self.epochs_key}={int(epochs) if self.whole_epochs else epochs}"

    def max_steps_flag(self, max_steps: int) -> str:
        if self.max_steps_key is None:
            raise ConfigError(f"--max-steps: {self.title} trains whole epochs; use --epochs N")
        return f"{self.max_steps_key}={max_steps}"


_REGISTRY: dict[str, BackendFacts] = {}
_plugins_loaded = False


def register(facts: BackendFacts) -> BackendFacts:
    """Make a backend known (a plugin calls this at import)."""
    _REGISTRY[facts.name] = facts
    return facts


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for name in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            print(f"ftui: {PLUGINS_ENV}: cannot import {name}: {exc}", file=sys.stderr)


def backend_names() -> tuple[str, ...]:
    """Every registered backend, the default first."""
    _load_plugins()
    return tuple(_REGISTRY)


def backend(name: str) -> BackendFacts:
    """The backend called ``name``; a ConfigError naming the choices otherwise."""
    _load_plugins()
    facts = _REGISTRY.get(name)
    if facts is None:
        raise ConfigError(f"unknown backend {name!r}; choose one of: {', '.join(_REGISTRY)}")
    return facts


def default_backend() -> str:
    return next(iter(_REGISTRY))


def spend_gate(resolved: "Resolved", *, confirm: Callable[[str], bool], out: Any = None) -> None:
    """Ask before spending: print the pre-flight, refuse data the service would refuse or
    missing credentials, and ask ``confirm`` above the budget. Raises FtuiError (nothing was
    sent) when the run must not start. Backends that spend nothing pass at once."""
    facts = backend(resolved.spec.backend)
    if facts.spend_check is None:
        return
    check = facts.spend_check(resolved)
    print("\n".join(check.lines), file=out or sys.stderr)
    if check.problems:
        raise FtuiError(f"{resolved.spec.data.source}: {facts.title} would refuse this training data "
                        f"({len(check.problems)} problem(s) above); nothing was sent")
    if check.missing_credentials:
        raise FtuiError(check.missing_credentials)
    if check.over_budget and not confirm(check.question):
        raise FtuiError(f"estimated ${check.estimate_usd:.2f} is above budget_usd ${check.budget_usd:g}: nothing was "
                        f"started; pass --yes, or raise it with --set {facts.name}.budget_usd=N")


def _local_processes(spec: "RunSpec") -> int:
    """``num_processes``, or one per GPU the run uses when it is 0 (its ``devices``, else every
    visible one; one without GPUs); no torch."""
    from ftui.core.devices import resolve_devices

    wanted = int(spec.setting("num_processes", 0) or 0)
    if wanted > 0:
        return wanted
    return max(1, len(resolve_devices(spec.setting("devices", ()) or ()).gpus))


def _openai_spend_check(resolved: "Resolved") -> SpendCheck:
    from ftui.core.openai_prep import preflight_resolved, spend_check

    return spend_check(preflight_resolved(resolved))


def _openai_readiness() -> str:
    from ftui.core.openai_prep import key_present

    return ("OPENAI_API_KEY is set" if key_present() else
            "OPENAI_API_KEY is not set: openai cannot start (export it, restart ftui)")


def _local_preflight(spec: "RunSpec") -> None:
    """The local backend: a model that can load here, and a CUDA GPU for 4/8-bit training."""
    from ftui.core.errors import ConfigError, OfflineError
    from ftui.core.machine import detect, model_problem

    problem = model_problem(spec.model)
    if problem:
        raise OfflineError(problem)
    hp = spec.hyperparameters
    if hp.quantization != "none" and not detect().cuda:
        raise ConfigError(f"quantization={hp.quantization} needs a CUDA GPU (bitsandbytes) and this machine "
                          "has none: use --set quantization=none")
    _check_gpu_ids(hp.devices)


def _check_gpu_ids(devices: Sequence[str]) -> None:
    """``devices=0,1``: GPUs that nvidia-smi lists here."""
    from ftui.core.machine import query_gpus

    ids = [d for d in devices if d.isdigit()]
    if not ids:
        return
    gpus, _, why = query_gpus()
    if not gpus:
        raise ConfigError(f"--set devices={','.join(devices)}: this machine has no GPU to train on ({why}); "
                          "leave devices out (the CPU), or use devices=cpu")
    known = {g.index for g in gpus}
    missing = [d for d in ids if int(d) not in known]
    if missing:
        raise ConfigError(f"--set devices={','.join(devices)}: no GPU {missing[0]} here; nvidia-smi lists "
                          f"{', '.join(str(g.index) for g in gpus)}")


def settings_sections(names: Sequence[str] | None = None) -> dict[str, type]:
    """Backend name -> settings class, for presets and ``--set`` sections."""
    return {n: backend(n).settings for n in (names or backend_names())}


register(BackendFacts("local", "LoRA on this machine", LocalSettings, "ftui.backends.local",
                      processes=_local_processes, preflight=_local_preflight, methods=METHODS))
register(BackendFacts("openai", "OpenAI", OpenAISettings, "ftui.backends.openai",
                      remote=True, epochs_key="n_epochs", whole_epochs=True, max_steps_key=None,
                      spend_check=_openai_spend_check, readiness=_openai_readiness,
                      data_check_options={"tokenizer": "none"}))
