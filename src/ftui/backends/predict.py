"""``ftui predict``'s loop, the same for every backend: the run's prompts for new rows (as its
eval builds them, k-shot with the same shots), answered by the backend's ``Answerer`` a chunk
at a time (the local backend's batched generator, an OpenAI run's ``ft:`` model), each chunk
judged and written before the next. What is judged and written is ``ftui.core.predict``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ftui.backends.base import Backend
from ftui.core.evalplan import plan_examples
from ftui.core.predict import CHUNK_BATCHES, OutputFile, Rows
from ftui.core.runs import Run


def predict_rows(run: Run, backend: Backend, rows: Rows, variant: str, out: OutputFile, *,
                 on_progress: Callable[[int], None], on_start: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Answer every row of ``rows`` with ``variant`` and write its line to ``out``; returns what
    the backend said about its answers (model, device; an OpenAI run's usage and cost summed
    over the chunks). ``on_progress(done)`` after each batch; ``on_start(where)`` once the
    backend is ready ("on cpu"). The backend refuses a variant it cannot answer (no trained
    weights) before any model loads."""
    plan = plan_examples(run, [variant], rows.examples)
    answerer = backend.answerer(run, plan, [variant])
    info: dict[str, Any] = {}
    try:
        if on_start is not None:
            on_start(answerer.describe(variant))
        prompts = plan.prompts(variant)
        step = CHUNK_BATCHES * plan.settings.batch_size
        for start in range(0, len(prompts), step):
            answered = answerer.answer(variant, prompts[start:start + step],
                                       on_progress=lambda done, start=start: on_progress(start + done),
                                       should_stop=lambda: False)
            assert answered is not None  # nothing asks it to stop; Ctrl-C raises instead
            answers = answered.answers
            out.write(rows.examples[start:start + step], [a.text for a in answers], [a.error for a in answers])
            info = _merged(info, answered.info)
    finally:
        answerer.close()
    return info


def _merged(total: Mapping[str, Any], chunk: Mapping[str, Any]) -> dict[str, Any]:
    """A chunk's ``Answered.info`` added to the ones before: counts and costs summed, the rest
    (model, device) as the chunk says."""
    out = {**total, **chunk}
    for key in ("cost_usd", "failed_requests"):
        if isinstance(total.get(key), (int, float)) and isinstance(chunk.get(key), (int, float)):
            out[key] = round(total[key] + chunk[key], 6)
    if isinstance(total.get("usage"), Mapping) and isinstance(chunk.get("usage"), Mapping):
        out["usage"] = {k: total["usage"].get(k, 0) + chunk["usage"].get(k, 0)
                        for k in {*total["usage"], *chunk["usage"]}}
    return out
