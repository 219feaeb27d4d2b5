"""The evaluation loop, the same for every backend: base, k-shot and fine-tuned variants on the
held-out split. The backend answers prompts; everything else happens here once: stop checks,
progress events, scoring, ``eval/<variant>/predictions.jsonl`` and ``metrics.json`` (the latter
last, so a variant stopped half-way leaves no metrics), and the ``eval`` event.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Sequence

from ftui.backends.base import Backend
from ftui.core.evalplan import EvalProgressReporter, plan_eval
from ftui.core.events import EventWriter
from ftui.core.prompts import render_user
from ftui.core.runs import Run
from ftui.core.scoring import VARIANTS, score_examples, write_eval


def evaluate_run(run: Run, backend: Backend, *, variants: Sequence[str] = VARIANTS, limit: int | None = None,
                 events: EventWriter | None = None, should_stop: Callable[[], bool] | None = None,
                 heldout: str = "") -> dict[str, dict[str, float]]:
    """Evaluate ``variants`` on the run's test split (or the held-out set ``heldout``); returns
    name -> metrics for the variants finished. ``limit``: the first N examples (default:
    ``eval.limit`` of run.json). A stop request ends the current variant without its metrics."""
    plan = plan_eval(run, variants, limit, heldout=heldout)
    stopping = should_stop or (lambda: False)
    examples = plan.examples
    results: dict[str, dict[str, float]] = {}
    answerer = backend.answerer(run, plan, variants)
    try:
        for variant in variants:
            if stopping():
                break
            name = plan.out_name(variant)
            prompts = plan.prompts(variant)
            _log(events, f"eval {name}: {len(examples)} held-out examples {answerer.describe(variant)}")
            report = EvalProgressReporter(events, name, len(prompts))
            report.start()
            began = time.perf_counter()
            answered = answerer.answer(variant, prompts, on_progress=report, should_stop=stopping)
            if answered is None:
                _log(events, f"eval {name}: stopped before the end; no metrics written for it")
                break
            duration = answered.seconds if answered.seconds is not None else time.perf_counter() - began
            answers = answered.answers
            records, metrics = score_examples(
                plan.task, examples, [a.text for a in answers],
                inputs=[render_user(ex, plan.template) for ex in examples],
                latencies=[round(a.latency_s, 4) for a in answers],
            )
            records = [replace(r, error=a.error) if a.error else r for r, a in zip(records, answers)]
            info = dict(answered.info)
            if variant == "kshot":
                info["shots"] = plan.shot_indices  # positions in data/train.jsonl
            write_eval(run.dir, name, records, metrics, **info, duration_s=round(duration, 3),
                       examples_per_s=round(len(examples) / duration, 3) if duration > 0 else None,
                       max_new_tokens=plan.settings.max_new_tokens)
            results[name] = dict(metrics)
            if events is not None:
                events.write("eval", variant=name, n=len(records), metrics=dict(metrics))
            answerer.after(name, answered, events)
    finally:
        answerer.close()
    return results


def _log(events: EventWriter | None, message: str, level: str = "info") -> None:
    if events is not None:
        events.write("log", level=level, message=message)
