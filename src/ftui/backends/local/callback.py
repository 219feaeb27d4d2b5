"""The Trainer callback that turns training into events, checkpoints and a clean stop."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from transformers import TrainerCallback

from ftui.core.checkpoints import publish
from ftui.core.cost import Price, spent_and_projected
from ftui.core.early_stopping import BestValidation
from ftui.core.events import EventWriter

MIN_EVENT_INTERVAL_S = 0.25
"""Events are written in bursts at most four times a second; every step still gets its line."""
HW_INTERVAL_S = 5.0
SPEED_WINDOW = 10
"""tokens_per_s is measured over the last this many steps."""


class EventsCallback(TrainerCallback):
    """Writes ``train``, ``val``, ``hw``, ``cost`` and ``checkpoint`` events; honours stop requests;
    stops early when the validation loss stops improving.

    Checkpoints are saved by the Trainer as ``checkpoint-N`` and renamed to the run
    directory's ``checkpoints/step-N`` (the contract); the last two are kept, and the one of the
    best validation pass (its weights become the result, ``keep_best``).
    """

    def __init__(self, events: EventWriter, *, should_stop: Callable[[], bool], price: Price,
                 sampler: Any, spent_before_s: float = 0.0, tokens_before: int = 0,
                 best: BestValidation | None = None, val_rows: int | None = None) -> None:
        self.events = events
        self.val_rows = val_rows
        """Validation rows each pass reads (recorded on every ``val`` event)."""
        self.best = best if best is not None else BestValidation()
        """The validation passes counted so far (every rank counts the same, gathered, losses)."""
        self.should_stop = should_stop
        self.price = price
        self.sampler = sampler
        self.spent_before_s = spent_before_s
        self.started = time.monotonic()
        self.last_flush = 0.0
        self.pending: list[tuple[str, dict[str, Any]]] = []
        self.last_hw = 0.0
        self.stopped = False
        self.step_began = 0.0
        self.busy_s = 0.0
        """Time inside training steps only (validation and checkpoint saves excluded)."""
        self.window: deque[tuple[float, int]] = deque(maxlen=SPEED_WINDOW + 1)
        """(busy seconds, tokens) at the last steps: tokens/s over a recent window."""

    def elapsed_s(self) -> float:
        return self.spent_before_s + time.monotonic() - self.started

    def on_train_begin(self, args, state, control, **kwargs):
        self.window.append((0.0, int(state.num_input_tokens_seen or 0)))
        # A resumed run: the Trainer restored the log history of its checkpoint, whose validation
        # passes give the best so far and the passes since, as the stopped session counted them.
        self.best.replay((int(h["step"]), float(h["eval_loss"])) for h in state.log_history if "eval_loss" in h)

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_began = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        self.busy_s += time.monotonic() - self.step_began
        # Several processes stop at the same step or not at all: rank 0 reads the stop request
        # (the others are given one that never fires) and every rank takes the largest answer.
        if agree(self.should_stop()):
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs:
            return
        now = time.monotonic()
        final = state.global_step >= state.max_steps or self.stopped
        tokens = int(state.num_input_tokens_seen or 0)
        self.window.append((self.busy_s, tokens))
        (busy0, tokens0), (busy1, tokens1) = self.window[0], self.window[-1]
        speed = (tokens1 - tokens0) / max(busy1 - busy0, 1e-6)
        self.pending.append(("train", dict(
            step=state.global_step, total_steps=state.max_steps, epoch=round(float(state.epoch or 0), 4),
            loss=round(float(logs["loss"]), 5), lr=float(logs.get("learning_rate", 0.0)), tokens=tokens,
            tokens_per_s=round(speed, 1))))
        if now - self.last_hw >= HW_INTERVAL_S or final:
            self.last_hw = now
            self._readings(state, state.max_steps)
        if final or now - self.last_flush >= MIN_EVENT_INTERVAL_S:
            self.flush()

    def _readings(self, state: Any, total_steps: int) -> None:
        """An ``hw`` and a ``cost`` event (the cost projected to ``total_steps``)."""
        self.pending.append(("hw", self.sampler.sample()))
        spent, projected = spent_and_projected(self.price, self.elapsed_s(), state.global_step, total_steps)
        self.pending.append(("cost", dict(
            usd=round(spent, 6), projected_usd=None if projected is None else round(projected, 6),
            basis=self.price.basis)))

    def flush(self) -> None:
        for kind, fields in self.pending:
            self.events.write(kind, **fields)
        self.pending.clear()
        self.last_flush = time.monotonic()

    def on_train_end(self, args, state, control, **kwargs):
        self.flush()

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self.flush()  # the steps before this validation point come first in the log
        metrics = metrics or {}
        if "eval_loss" in metrics:
            acc = metrics.get("eval_token_accuracy")
            self.best.add(state.global_step, float(metrics["eval_loss"]))
            self.events.write("val", step=state.global_step, loss=round(float(metrics["eval_loss"]), 5),
                              token_accuracy=None if acc is None else round(float(acc), 5), **self.best.fields(),
                              **({} if self.val_rows is None else {"rows": self.val_rows}))
            if self.best.exhausted and state.global_step < state.max_steps:
                # The Trainer saves this step's checkpoint (saves follow validation), then ends.
                control.should_training_stop = True
                self.events.write("log", level="info", message=(
                    f"stopped early at step {state.global_step} of {state.max_steps}: validation loss not "
                    f"improved for {self.best.since} passes (best {self.best.loss:.4f} at step {self.best.step})"))
                self._readings(state, state.global_step)  # the cost is final: no steps are left
                self.flush()

    def on_save(self, args, state, control, **kwargs):
        self.flush()
        barrier()  # every process has written its part (its RNG state) of checkpoint-N
        if state.is_world_process_zero:
            self._publish(Path(args.output_dir), state)
        barrier()

    def _publish(self, out: Path, state: Any) -> None:
        # The Trainer wrote checkpoint-N completely before this call; one rename publishes it,
        # so a step-N folder is never half-written, whenever the runner is killed.
        target = publish(out, state.global_step, protect=self.best.step)
        if target is not None:
            self.events.write("checkpoint", step=state.global_step, path=f"checkpoints/{target.name}")


def _group() -> Any:
    """torch.distributed when this process is one of several, else None."""
    import torch.distributed as dist  # heavy: training only (torch is loaded by then)

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist
    return None


def agree(flag: bool) -> bool:
    """True on every process when it is true on any (one all-reduce; just ``flag`` alone)."""
    dist = _group()
    if dist is None:
        return flag
    import torch

    device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def barrier() -> None:
    dist = _group()
    if dist is not None:
        dist.barrier()
