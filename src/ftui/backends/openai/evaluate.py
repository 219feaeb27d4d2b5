"""Evaluation of an OpenAI run through chat completions: the same records and metrics as local.

``base`` asks the base model zero-shot, ``kshot`` the base model with k training examples in
the prompt, ``finetuned`` the job's ``ft:`` model. Requests run a few at a time
(``eval_concurrency``); the inference cost comes from the usage each answer reports.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Sequence

from ftui.backends.base import Answer, Answered
from ftui.backends.openai.client import ServiceError, explain, is_transient, make_client
from ftui.backends.openai.train import JobFile
from ftui.core.errors import ConfigError
from ftui.core.evalplan import EvalPlan
from ftui.core.events import EventWriter
from ftui.core.openai_prep import PRICES_AS_OF, inference_price
from ftui.core.runs import Run
from ftui.core.scoring import VARIANTS


class OpenAIAnswerer:
    """Chat completions at temperature 0, ``eval_concurrency`` at a time; ``finetuned`` asks
    the job's ``ft:`` model. Each variant's inference cost comes from the reported usage."""

    def __init__(self, run: Run, plan: EvalPlan, tuned: str | None) -> None:
        self.run, self.plan, self.tuned = run, plan, tuned
        self.hp = run.spec.hyperparameters
        self.client = make_client(self.hp)

    def _model(self, variant: str) -> str:
        return self.tuned if variant == "finetuned" and self.tuned else self.run.spec.model

    def describe(self, variant: str) -> str:
        return f"on {self._model(variant)}, {self.hp.eval_concurrency} requests at a time"

    def answer(self, variant: str, prompts: Sequence[Sequence[dict]], *, on_progress: Callable[[int], None],
               should_stop: Callable[[], bool]) -> Answered | None:
        model = self._model(variant)
        answers = _complete_all(self.client, model, prompts, max_tokens=self.plan.settings.max_new_tokens,
                                seed=self.run.spec.split.seed,
                                concurrency=self.hp.eval_concurrency, stopping=should_stop, on_progress=on_progress)
        if answers is None:
            return None
        usage_in = sum(a.prompt_tokens for a in answers)
        usage_out = sum(a.completion_tokens for a in answers)
        price = inference_price(model)
        cost = (usage_in * price[0] + usage_out * price[1]) / 1e6 if price else None
        info: dict[str, Any] = {"model": model, "backend": "openai", "usage": {
            "prompt_tokens": usage_in, "completion_tokens": usage_out},
            "failed_requests": sum(1 for a in answers if a.error),
            "cost_usd": round(cost, 6) if cost is not None else None,
            "cost_basis": (f"reported usage x ${price[0]:g}/${price[1]:g} per 1M input/output tokens "
                           f"(OpenAI prices {PRICES_AS_OF})") if price else "model not in ftui's price table",
            "concurrency": self.hp.eval_concurrency}
        return Answered([Answer(a.text, a.latency, a.error) for a in answers], info)

    def after(self, variant: str, answered: Answered, events: EventWriter | None) -> None:
        if events is None:
            return
        failed = [a for a in answered.answers if a.error]
        if failed:
            events.write("log", level="warning", message=(
                f"eval {variant}: {len(failed)} request(s) failed and count as invalid (first: {failed[0].error})"))
        _cost_event(self.run, events)

    def close(self) -> None:
        pass


def answerer(run: Run, plan: EvalPlan, variants: Sequence[str]) -> OpenAIAnswerer:
    tuned = JobFile(run).get("fine_tuned_model")
    if "finetuned" in variants and not tuned:
        raise ConfigError(f"run {run.id} has no fine-tuned model yet: its OpenAI job has not succeeded")
    return OpenAIAnswerer(run, plan, tuned)


def evaluate_run(run: Run, *, variants: Sequence[str] = VARIANTS, limit: int | None = None,
                 events: EventWriter | None = None, should_stop: Callable[[], bool] | None = None,
                 heldout: str = "") -> dict[str, dict[str, float]]:
    """The shared evaluation loop with this backend (see ``ftui.backends.evaluate``)."""
    from ftui.backends.evaluate import evaluate_run as shared
    from ftui.backends.openai import BACKEND

    return shared(run, BACKEND, variants=variants, limit=limit, events=events, should_stop=should_stop,
                  heldout=heldout)


class _Answer:
    __slots__ = ("text", "latency", "prompt_tokens", "completion_tokens", "error")

    def __init__(self, text: str = "", latency: float = 0.0, prompt_tokens: int = 0, completion_tokens: int = 0,
                 error: str | None = None) -> None:
        self.text, self.latency, self.error = text, latency, error
        self.prompt_tokens, self.completion_tokens = prompt_tokens, completion_tokens


def _complete_all(client: Any, model: str, prompts: Sequence[Sequence[dict]], *, max_tokens: int, seed: int,
                  concurrency: int, stopping: Callable[[], bool],
                  on_progress: Callable[[int], None] | None = None) -> list[_Answer] | None:
    """Every prompt's answer, in order, ``concurrency`` at a time; None when stopped.

    ``on_progress(done)`` runs in this thread each time requests complete."""
    answers: list[_Answer | None] = [None] * len(prompts)
    fatal: list[BaseException] = []

    def one(i: int) -> None:
        began = time.perf_counter()
        try:
            resp = client.chat.completions.create(model=model, messages=list(prompts[i]), temperature=0,
                                                  max_completion_tokens=max_tokens, seed=seed)
        except Exception as exc:  # noqa: BLE001 - one failed request is one invalid answer
            if _fatal(exc):
                fatal.append(exc)
            answers[i] = _Answer(latency=time.perf_counter() - began, error=explain(exc, f"example {i}"))
            return
        choice = resp.choices[0] if resp.choices else None
        text = (choice.message.content or "") if choice is not None and choice.message is not None else ""
        usage = resp.usage
        answers[i] = _Answer(text=text, latency=time.perf_counter() - began,
                             prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                             completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0))

    finished = 0
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ftui-eval") as pool:
        pending: set[Future] = set()
        queue = iter(range(len(prompts)))
        for i in queue:
            pending.add(pool.submit(one, i))
            if len(pending) >= concurrency:
                break
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for f in done:
                f.result()
            finished += len(done)
            if done and on_progress is not None and not fatal:
                on_progress(finished)
            if fatal:
                for f in pending:
                    f.cancel()
                raise ServiceError(explain(fatal[0], f"evaluating on {model}"))
            if stopping():
                for f in pending:
                    f.cancel()
                return None
            for _ in range(len(done)):
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(one, nxt))
    return [a if a is not None else _Answer(error="no answer") for a in answers]


def _fatal(exc: BaseException) -> bool:
    """Failures every other request would hit too: a bad key, no access, an unknown model."""
    import openai

    return isinstance(exc, openai.APIStatusError) and exc.status_code in (401, 403, 404) and not is_transient(exc)


def _cost_event(run: Run, events: EventWriter) -> None:
    """The run's cost so far: the training bill plus every evaluated variant's inference."""
    job = JobFile(run)
    trained = job.get("billed_usd")
    eval_usd = sum((m.get("cost_usd") or 0.0) for m in run.eval_metrics().values())
    base = trained or 0.0
    events.write("cost", usd=round(base + eval_usd, 6), projected_usd=None,
                 basis=f"training ${base:.4f} + evaluation ${eval_usd:.4f} (reported usage x OpenAI prices "
                       f"{PRICES_AS_OF})")


def _log(events: EventWriter | None, message: str, level: str = "info") -> None:
    if events is not None:
        events.write("log", level=level, message=message)
