"""The OpenAI fine-tuning backend: the same run directory, events and eval records as local.

``BACKEND`` is what the runner drives (see ``ftui.backends.base``); the openai SDK is imported
inside the functions that call the service.
"""

from __future__ import annotations

from typing import Any, Sequence

from ftui.backends.base import Trained, TrainJob
from ftui.core.evalplan import EvalPlan
from ftui.core.runs import Run


class OpenAIBackend:
    def train(self, run: Run, job: TrainJob) -> Trained:
        """Upload and start the job, or re-attach to it (``job.json``), and follow it to its end."""
        from ftui.backends.openai.train import train_run

        job.set_state("running", "starting the OpenAI job")
        outcome = train_run(run, events=job.events, should_stop=job.should_stop, set_state=job.set_state)
        if outcome.state == "succeeded":
            job.events.write("log", level="info", message=outcome.message)
        return Trained(outcome.state, outcome.message)

    def answerer(self, run: Run, plan: EvalPlan, variants: Sequence[str]) -> Any:
        from ftui.backends.openai.evaluate import answerer

        return answerer(run, plan, variants)

    def player(self, run: Run) -> Any:
        from ftui.backends.openai.play import OpenAIPlayer

        return OpenAIPlayer(run)

    def export_model(self, run: Run, kind: str, **_: Any) -> list:
        """Refused: the fine-tuned model's weights stay at OpenAI."""
        from ftui.core.errors import ConfigError

        tuned = run.job().get("fine_tuned_model")
        where = (f"it lives at OpenAI as {tuned}: call it by that id (chat completions, `model=\"{tuned}\"`)"
                 if tuned else "it has no fine-tuned model yet, and when it has, that model lives at OpenAI")
        raise ConfigError(f"run {run.id} was fine-tuned at OpenAI, which does not hand out the weights, so there is "
                          f"no {kind} to export: {where}. `ftui export {run.id}` (without --model) writes its summary")


BACKEND = OpenAIBackend()
