"""The Local tab's words about a training before it starts: its plan (examples, steps, tokens,
and the time at the speed an earlier run of the same model measured on this machine) and the
memory it needs against what the machine has. Pure: the Backend screen hands in the form's
values, the data's token counts, the machine and the measured speeds (``core.plan``,
``core.machine``); this module only words them.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from rich.console import Group, RenderableType
from rich.text import Text

from ftui.core.config import METHOD_LABELS, LocalSettings
from ftui.core.machine import Machine, estimate_fit, micro_batch_positions, model_shape
from ftui.core.plan import MeasuredSpeed, TokenCounts, TrainingPlan, plan_training, speed_for
from ftui.tui import fmt

PLAN_SETTINGS = {"epochs": "epochs", "batch_size": "batch size", "max_steps": "max steps",
                 "max_length": "max length", "grad_accum": "grad_accum", "num_processes": "num_processes"}
"""The settings the plan reads, with the names a problem with them is told by (the last two
are set in the free-form field)."""
FIT_NUMBERS = ("batch_size", "max_length", "lora_r", "num_virtual_tokens")
FIT_FIELDS = ("model", "precision", "quantization", "target_modules", *FIT_NUMBERS)
"""The form's fields the memory estimate reads."""


def whole(text: str) -> int | None:
    """A field's text as a whole number; None when it is not one."""
    try:
        return int(text)
    except ValueError:
        return None


def number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def millions(n: int) -> str:
    """A parameter count in millions: two decimals below ten million (adapters), none above."""
    return f"{n / 1e6:.2f}M" if n < 10_000_000 else f"{n / 1e6:,.0f}M"


# -- the plan ---------------------------------------------------------------------------------

def plan_view(values: Mapping[str, str], *, examples: int, tokens: TokenCounts | None, counted: bool,
              speeds: Sequence[MeasuredSpeed] | None, model: str, method: str, gpus: int) -> RenderableType:
    """Two lines: examples, tokens and steps; the time. ``values``: each of ``PLAN_SETTINGS`` as
    the form has it; ``counted``: the token count has come back (with counts or without);
    ``speeds``: None while they are read; ``gpus``: on this machine (``num_processes`` 0 trains
    on each)."""
    label = ("plan  ", "bold")
    epochs = number(values["epochs"])
    sizes = {name: whole(values[name]) for name in ("batch_size", "max_length", "grad_accum", "num_processes")}
    bad = [] if epochs is not None and 0 < epochs < 1e6 else ["epochs"]
    bad += [PLAN_SETTINGS[n] for n in ("batch_size", "max_length", "grad_accum") if (sizes[n] or 0) < 1]
    if sizes["num_processes"] is None or sizes["num_processes"] < 0:
        bad.append(PLAN_SETTINGS["num_processes"])
    max_steps = whole(values["max_steps"])
    if bad or max_steps is None or (max_steps < 1 and max_steps != -1):
        problem = f"fill in {', '.join(bad)}" if bad else "max steps is -1 (as the epochs need) or 1 and more"
        return Text.assemble(label, (problem, "yellow"))
    plan = plan_training(examples=examples, epochs=epochs, batch_size=sizes["batch_size"],
                         grad_accum=sizes["grad_accum"], max_steps=max_steps, max_length=sizes["max_length"],
                         tokens=tokens, processes=sizes["num_processes"] or max(gpus, 1))
    time = time_text(plan, speeds, counted=counted, model=model, method=method)
    return Group(Text.assemble(label, plan.line()), Text("  " + time))


def time_text(plan: TrainingPlan, speeds: Sequence[MeasuredSpeed] | None, *, counted: bool, model: str,
              method: str) -> str:
    """The training's time at the speed an earlier run of ``model`` measured here, and whose
    measurement it is; or why there is no estimate. Never a rate nobody measured."""
    if speeds is None:
        return "time: reading the earlier runs…"
    speed = speed_for(speeds, model=model, method=method)
    if speed is None:
        return f"time: no measurement yet (no earlier run of {model} on this machine)"
    rate = f"{speed.tokens_per_s:,.0f} tok/s"
    whose = f"run {speed.run_id}" if speed.method in (None, method) else f"{speed.method} run {speed.run_id}"
    if plan.tokens is None:
        state = "not counted" if counted else "being counted"
        return f"time: unknown while the tokens are {state} ({rate} from {whose})"
    return f"~{fmt.duration(plan.tokens / speed.tokens_per_s)} of training at {rate}, from {whose}"


# -- the memory fit -----------------------------------------------------------------------------

def fit_view(values: Mapping[str, str], *, method: str, defaults: LocalSettings, machine: Machine | None,
             tokens: TokenCounts | None, labels: Mapping[str, str]) -> RenderableType:
    """The memory ``method`` needs (``core.machine.estimate_fit``) against what ``machine`` has.

    ``values``: the form's text of each of ``FIT_FIELDS`` that ``method`` reads (the others
    come from ``defaults``: the estimate does not depend on them); ``labels``: their names on
    the form. Batches are as long as their longest example, so data shorter than
    ``max_length`` is estimated at its longest example's length.
    """
    label = ("memory fit  ", "bold")
    model = values["model"]
    shape = model_shape(model)
    if shape is None:
        return Text.assemble(label, (f"unknown: no config.json for '{model}' here yet", "dim"))
    numbers: dict[str, int] = {}
    missing = []
    for name in FIT_NUMBERS:
        if name not in values:
            numbers[name] = getattr(defaults, name)  # not read by this method; any valid value
            continue
        n = whole(values[name])
        if n is None or n < 1:
            missing.append(labels[name])
        else:
            numbers[name] = n
    if missing:
        return Text.assemble(label, (f"fill in {', '.join(missing)}", "dim"))
    max_length = numbers["max_length"]
    if tokens is not None and tokens.longest < max_length:
        numbers["max_length"] = tokens.longest
        batches = f"batches of {numbers['batch_size']} × {tokens.longest} tokens (longest example)"
    else:
        batches = f"batches of {numbers['batch_size']} × {max_length} tokens (max length)"
    m = machine
    precision = values["precision"]
    if precision == "auto":
        precision = "bf16" if m and (m.cuda or m.cpu_bf16) else "fp32"
    available = None
    if m is not None:
        available = m.gpus[0].mem_total if m.cuda else m.ram_available
    modules = ([t.strip() for t in values["target_modules"].split(",") if t.strip()] if "target_modules" in values
               else list(defaults.target_modules))
    device = m.device if m else "cpu"
    est = estimate_fit(shape, method=method, device=device, precision=precision,
                       quantization=values["quantization"], target_modules=modules, available=available,
                       micro_batch_tokens=micro_batch_positions(defaults.micro_batch_tokens, device), **numbers)
    head = Text.assemble(label, f"{millions(shape.params)} parameters, "
                         f"{millions(est.trainable_params)} trainable ({METHOD_LABELS[method]}), {precision}")
    breakdown, *rest = est.lines()
    if est.fits is None:  # no verdict line (memory unknown): the batches on a line of their own
        verdict = Text("  " + batches, style="dim")
    else:
        verdict, rest = Text.assemble("  ", (rest[0], "green" if est.fits else "bold red"), f"; {batches}"), rest[1:]
    return Group(head, Text("  " + breakdown), verdict, *(Text("  " + note) for note in rest))
