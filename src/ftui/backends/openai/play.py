"""The OpenAI backend's Playground: chat completions, streamed, at temperature 0 as eval asks.

``base`` and ``kshot`` call the run's base model, ``finetuned`` the job's ``ft:`` model by its
id (once the job has succeeded). Nothing is loaded: the client is made once and kept.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from ftui.backends.openai.client import ServiceError, explain, make_client
from ftui.backends.openai.train import JobFile
from ftui.core.runs import Run


class OpenAIPlayer:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.tuned = JobFile(run).get("fine_tuned_model")
        self.client = make_client(run.spec.hyperparameters)
        self.variants: tuple[str, ...] = ("base", "kshot") + (("finetuned",) if self.tuned else ())

    def describe(self) -> str:
        return f"OpenAI: {self.run.spec.model}" + (f" and {self.tuned}" if self.tuned else "")

    def stream(self, variant: str, prompt: Sequence[dict], *, max_new_tokens: int,
               should_stop: Callable[[], bool]) -> Iterator[str]:
        model = self.tuned if variant == "finetuned" else self.run.spec.model
        try:
            chunks: Any = self.client.chat.completions.create(
                model=model, messages=list(prompt), temperature=0, max_completion_tokens=max_new_tokens,
                seed=self.run.spec.split.seed, stream=True)
            text = ""
            for chunk in chunks:
                if should_stop():
                    chunks.close()
                    return
                for choice in chunk.choices or ():
                    piece = getattr(choice.delta, "content", None) if choice.delta is not None else None
                    if piece:
                        text += piece
                        yield text
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes one readable message
            raise ServiceError(explain(exc, f"asking {model}")) from None

    def close(self) -> None:
        pass
