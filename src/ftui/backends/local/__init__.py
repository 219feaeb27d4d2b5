"""The local backend: LoRA, DoRA, IA3, prefix tuning, full fine-tuning and QLoRA with
transformers' Trainer on this machine's GPU or CPU.

``BACKEND`` is what the runner drives (see ``ftui.backends.base``). torch, transformers and
peft are imported inside the functions that use them, so importing this package is cheap.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from ftui.backends.base import Trained, TrainJob
from ftui.core.evalplan import EvalPlan
from ftui.core.events import drop_events_after, read_events
from ftui.core.runs import Run


class LocalBackend:
    def train(self, run: Run, job: TrainJob) -> Trained:
        from ftui.backends.local import hardware
        from ftui.core.checkpoints import clean_partial, last_checkpoint, step_of
        from ftui.backends.local.train import train_run
        from ftui.core.cost import Price, hardware_price

        hp = run.spec.hyperparameters
        threads = hardware.apply_threads()
        hw = hardware.detect()
        dtype = hardware.precision(hw, hp.precision)
        price = hardware_price(hw.gpu_name, hp.price_per_hour)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and hw.device == "cuda" and price.per_hour > 0:  # every GPU of the job is paid for
            price = Price(price.per_hour * world, f"{price.basis} x {world} GPUs")
        events = job.events
        events.write("log", level="info", message=(
            f"device {hw.device}{' (' + hw.gpu_name + ')' if hw.gpu_name else ''}, {hw.cpu_count} CPU cores "
            f"({threads} compute thread{'s' if threads != 1 else ''}), "
            f"training precision {dtype}" + (f", {world} training processes (torchrun)" if world > 1 else "")))
        if job.resume:
            removed = clean_partial(run.checkpoints_path)
            if removed:
                events.write("log", level="info", message=(
                    f"removed what the stopped runner left half-written: {', '.join(removed)}"))
        checkpoint = last_checkpoint(run.checkpoints_path) if job.resume else None
        spent_before = 0.0
        if checkpoint is not None:
            step = step_of(checkpoint) or 0
            dropped = drop_events_after(run.events_path, step)
            events.reopen()
            events.write("log", level="info", message=(
                f"resuming from checkpoint step {step}" + (f" ({dropped} later step events re-done)" if dropped else "")))
            spent_before = _spent_seconds(run, price.per_hour)
        elif job.resume:
            events.write("log", level="info", message="no checkpoint yet: training from the start")
            drop_events_after(run.events_path, 0)
            events.reopen()
        job.set_state("running", "training")
        finished = train_run(run, events=events, should_stop=job.should_stop, price=price,
                             sampler=hardware.Sampler(), device=hw.device, dtype=dtype,
                             resume_from=checkpoint, spent_before_s=spent_before)
        if not finished:
            return Trained("cancelled", "stopped; a checkpoint was saved (ftui resume continues)")
        return Trained("succeeded")

    def answerer(self, run: Run, plan: EvalPlan, variants: Sequence[str]) -> Any:
        from ftui.backends.local import hardware
        from ftui.backends.local.evaluate import answerer

        hardware.apply_threads()
        return answerer(run, plan, variants)

    def player(self, run: Run) -> Any:
        from ftui.backends.local.play import LocalPlayer

        return LocalPlayer(run)

    def export_model(self, run: Run, kind: str, *, out: Any = None, gguf_types: Sequence[str] = ("f16",)) -> list:
        """The run's model as ``kind`` (adapter, merged, gguf) in folder ``out``; the files written."""
        from ftui.backends.local.export import export_model

        return export_model(run, kind, out=out, gguf_types=gguf_types)

    def train_worker(self, run: Run, *, resume: bool) -> int:
        """A training process of rank > 0 (torchrun): it trains alongside rank 0, which writes
        the events, the status, the checkpoints and the adapter, decides when to stop and
        evaluates."""
        from ftui.backends.local import hardware
        from ftui.core.checkpoints import last_checkpoint
        from ftui.backends.local.train import train_run
        from ftui.core.cost import Price

        if run.trained_weights() is not None:
            return 0  # training is done; rank 0 evaluates
        hardware.apply_threads()
        hw = hardware.detect()
        dtype = hardware.precision(hw, run.spec.hyperparameters.precision)
        checkpoint = last_checkpoint(run.checkpoints_path) if resume else None
        train_run(run, events=_Silent(), should_stop=lambda: False, price=Price(0.0, ""), sampler=_NoSampler(),
                  device=hw.device, dtype=dtype, resume_from=checkpoint)
        return 0


def _spent_seconds(run: Run, per_hour: float) -> float:
    """Time already paid for by earlier sessions of this run (from the last cost event)."""
    if per_hour <= 0:
        return 0.0
    costs = [e for e in read_events(run.events_path) if e["type"] == "cost"]
    return costs[-1]["usd"] * 3600 / per_hour if costs else 0.0


class _Silent:
    """The event writer of a training process other than rank 0: only rank 0 writes events."""

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {}

    def sync(self) -> None:
        pass


class _NoSampler:
    def sample(self) -> dict[str, Any]:
        return {}


BACKEND = LocalBackend()
