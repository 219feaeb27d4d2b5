"""The Local tab's settings form: its fields in order, their labels, choices and hints, the
widgets made from them, and the words of a field's value, each checked the way ``--set``
checks it (``core.request``). The Backend screen holds the form and hands in its values.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import Input, Label, Select, Static

from ftui.core.config import LR_SCHEDULERS, METHOD_FIELDS, METHODS, LocalSettings
from ftui.core.errors import ConfigError
from ftui.core.request import apply_overrides  # --set's parsing and checks: the path a run's settings take

# Grids of (setting, label, columns spanned) in form order; "extra" is free-form key=value
# settings. The method's explanation goes under the first grid. A field in METHOD_FIELDS shows
# only for the methods that read it and the grid closes up around the hidden ones, so after a
# field left alone on its row (LoRA dropout, virtual tokens) only one-column fields may follow:
# a 3-column field would start in the third column and be cut.
LOCAL_GRIDS = {
    "method-form": [("method", "method", 1), ("quantization", "quantization", 1)],
    "local-form": [
        ("model", "model", 3),
        ("epochs", "epochs", 1), ("learning_rate", "learning rate", 1),
        ("batch_size", "batch size", 1), ("max_length", "max length", 1),
        ("max_steps", "max steps", 1), ("precision", "precision", 1),
        ("target_modules", "LoRA modules", 3),
        ("lora_r", "LoRA r", 1), ("lora_alpha", "LoRA alpha", 1),
        ("lora_dropout", "LoRA dropout", 1), ("num_virtual_tokens", "virtual tokens", 1),
        ("devices", "devices", 1),
    ],
    "schedule-form": [
        ("lr_scheduler", "LR schedule", 1), ("warmup_steps", "warmup steps", 1),
        ("val_rows", "val rows", 1), ("early_stop_patience", "stop patience", 1),
        ("keep_best", "keep best", 1),
    ],
    "more-form": [("extra", "more", 3)],
}
LOCAL_FIELDS = [f for fields in LOCAL_GRIDS.values() for f in fields]
GROUPS = {"schedule-form": "schedule & validation"}
"""Grids in a collapsible group, collapsed at first, with its title: 80x24 keeps the form, the
plan and the memory verdict on one screen."""
SELECTS = {"method": tuple(METHODS), "quantization": ("none", "4bit", "8bit"), "precision": ("auto", "bf16", "fp32"),
           "lr_scheduler": tuple(LR_SCHEDULERS), "keep_best": ("true", "false")}
LABELS = {name: label for name, label, _ in LOCAL_FIELDS}
METHOD_ONLY = {name for fields in METHOD_FIELDS.values() for name in fields}
"""Fields some methods do not read (shown, and sent, only for those that do)."""
MAX_STEPS_HINT = "-1: as the epochs need"
"""The max steps field's placeholder: left empty (or -1) it trains as many steps as the epochs need."""
PLACEHOLDERS = {"max_steps": MAX_STEPS_HINT, "devices": "all GPUs (or the CPU)",
                "extra": "key=value … e.g. grad_accum=2 eval.limit=8 price_per_hour=0.5"}
TOOLTIPS = {
    "max_steps": "-1 (or empty): as many steps as the epochs need; a number stops there, "
                 "going round the data again when the epochs need fewer",
    "devices": "GPU ids as nvidia-smi lists them (0, or 1,2) or cpu; empty: every visible GPU, the CPU "
               "without one. Runs on the same devices take turns",
    "lr_scheduler": "\n".join(f"{name}: {words}" for name, words in LR_SCHEDULERS.items()),
    "warmup_steps": "steps over which the rate climbs to its peak: a fraction of the training steps "
                    "(< 1) or a number of steps",
    "val_rows": "validation rows each pass computes the loss on (the same rows every pass); "
                "all (or 0): the whole validation split",
    "early_stop_patience": "stop training when the validation loss has not improved for this many "
                           "validation passes in a row; 0: never stop early",
    "keep_best": "true: the result is the weights of the validation pass with the lowest loss; "
                 "false: those of the last step",
}


def applies(name: str, method: str) -> bool:
    """Whether ``method`` reads the setting ``name``."""
    return name not in METHOD_ONLY or name in METHOD_FIELDS[method]


def shown(value: Any) -> str:
    """A setting as the form shows it (and as ``--set`` reads it back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def quantization_refusal(method: str) -> str:
    """Why ``method`` takes no 4/8-bit base, in config's own words."""
    try:
        LocalSettings(method=method, quantization="4bit")
    except ConfigError as exc:
        return str(exc)
    return ""


def form_grid(grid_id: str, fields: list[tuple[str, str, int]], defaults: LocalSettings) -> ComposeResult:
    """A grid of labelled fields holding ``defaults``' values, and under it a line for what is
    wrong with them (hidden while nothing is)."""
    with Grid(id=grid_id, classes="form"):
        for name, label, span in fields:
            yield Label(label, id=f"label-{name}", classes="label")
            yield form_field(name, span, defaults)
    yield Static(id=f"{grid_id}-problems", classes="problems hidden")


def form_field(name: str, span: int, defaults: LocalSettings) -> Input | Select:
    """The field ``f-NAME``: a select for a choice, else an input, with its hint and tooltip."""
    classes = "span3" if span == 3 else ""
    field: Input | Select
    if name in SELECTS:
        field = Select([(o, o) for o in SELECTS[name]], value=shown(getattr(defaults, name)), allow_blank=False,
                       id=f"f-{name}", compact=True, classes=classes)
    else:
        value = "" if name == "extra" else shown(getattr(defaults, name))
        if name == "max_steps" and value == "-1":  # empty reads as -1, which the placeholder explains (#18)
            value = ""
        field = Input(value, id=f"f-{name}", compact=True, classes=classes, placeholder=PLACEHOLDERS.get(name, ""))
    field.tooltip = TOOLTIPS.get(name)
    return field


def setting_problem(name: str, text: str, defaults: LocalSettings) -> str | None:
    """Why the form's ``text`` for setting ``name`` is refused, in ``--set``'s words without its
    ``--set KEY=VALUE: local.KEY:`` lead (the form names the field); None when it is not. Checked
    alone, against ``defaults``: what depends on other settings is checked at Start."""
    if name == "max_steps" and not text:
        return None  # empty reads as -1 (the placeholder says so)
    try:
        apply_overrides({"local": defaults}, [f"{name}={text}"], "local")
    except ConfigError as exc:
        return re.sub(r"^--set [^:]*: (?:local\.\w+: )?", "", str(exc))
    return None


def named_setting(message: str, names: Iterable[str]) -> str | None:
    """The first of ``names`` that ``message`` names as a setting (``lr_scheduler=foo``,
    ``local.lr_scheduler: …``, ``--set val_rows: …``); None when it names none."""
    found = [(m.start(), name) for name in names
             if (m := re.search(rf"(?<![\w]){re.escape(name)}(?=[=:])", message))]
    return min(found)[1] if found else None


def group_title(title: str, changed: Iterable[tuple[str, str]]) -> str:
    """A group's title, with the (label, value) of each field that differs from the preset's, so
    a collapsed group still says what it changes."""
    changed = list(changed)
    return f"{title}: " + ", ".join(f"{label} {value}" for label, value in changed) if changed else title
