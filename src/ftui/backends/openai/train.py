"""An OpenAI fine-tuning job from start to end, as a run: upload, create, follow, cancel, finish.

``job.json`` holds what is needed to find the job again (file ids, job id, the fine-tuned
model); it is written before and after every step that creates something at OpenAI, so a
runner that dies never leads to a second upload of the same data being trained twice:
``ftui resume`` re-attaches to the job by its id, or finds it by the ``ftui_run`` metadata
when the runner died between "create" and writing the answer down.

Events: OpenAI's ``metrics`` events become ``train`` and ``val`` events (one per step,
never twice, also across re-attaches), its messages become ``log`` events, and ``cost``
events follow the estimate during training and the billed ``trained_tokens`` at the end.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ftui.backends.openai.client import (
    ServiceError,
    StopRequested,
    TrainingNotAvailable,
    call,
    explain,
    is_training_not_available,
    is_transient,
    make_client,
    patiently,
)
from ftui.core.config import OpenAISettings
from ftui.core.errors import ConfigError
from ftui.core.events import EventWriter, read_events
from ftui.core.openai_prep import PRICES_AS_OF, WIND_DOWN, chat_record, preflight_examples, training_price
from ftui.core.runs import Run, write_json_atomic
from ftui.core.runspec import RunSpec

JOB_FILE = "job.json"
STATUS_TEXT = {
    "validating_files": "OpenAI is validating the files",
    "queued": "queued at OpenAI",
    "running": "training at OpenAI",
    "succeeded": "the OpenAI job succeeded",
    "failed": "the OpenAI job failed",
    "cancelled": "the OpenAI job was cancelled",
}
CANCEL_WAIT_S = 120.0


class JobFile:
    """``job.json``: ids at OpenAI and what the job reported. Never a secret."""

    def __init__(self, run: Run) -> None:
        self.path = run.dir / JOB_FILE
        try:
            self.data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        write_json_atomic(self.path, self.data)


@dataclass
class Outcome:
    state: str
    """``succeeded`` or ``cancelled`` (failures raise)."""
    message: str


def local_command(spec: RunSpec) -> str:
    """The command that trains the same data on the local backend."""
    if spec.preset:
        return f"ftui train --preset {shlex.quote(spec.preset)} --backend local"
    return f"ftui train --data {shlex.quote(spec.data.source or 'DATA.jsonl')} --task {spec.task} --backend local"


def train_run(run: Run, *, events: EventWriter, should_stop: Callable[[], bool],
              set_state: Callable[..., None], sleep: Callable[[float], None] = time.sleep) -> Outcome:
    """Start the run's job (or re-attach to it) and follow it to its end."""
    hp: OpenAISettings = run.spec.hyperparameters
    client = make_client(hp)
    job = JobFile(run)
    follower = _Follower(run, client, hp, job, events, sleep)
    job_id = job.get("job_id")
    if job_id is None:
        job_id = _start_job(run, client, hp, job, events, set_state, sleep)
    else:
        events.write("log", level="info", message=f"re-attaching to OpenAI job {job_id}")
    return follower.follow(job_id, should_stop, set_state)


# -- starting ------------------------------------------------------------------------------------

def _start_job(run: Run, client: Any, hp: OpenAISettings, job: JobFile, events: EventWriter,
               set_state: Callable[..., None], sleep: Callable[[float], None]) -> str:
    template = run.spec.prompt
    train, val = run.examples("train"), run.examples("val")
    pre = preflight_examples(train, val, [], template=template, settings=hp)
    if pre.problems:
        raise ConfigError("OpenAI would refuse the training file: " + "; ".join(pre.problems[:5]))
    folder = run.dir / "openai"
    folder.mkdir(exist_ok=True)
    files = {"training_file": folder / "train.jsonl"}
    _write_jsonl(files["training_file"], [chat_record(ex, template) for ex in train])
    if val:
        files["validation_file"] = folder / "validation.jsonl"
        _write_jsonl(files["validation_file"], [chat_record(ex, template) for ex in val])
    if not job.data:
        job.update(model=hp.model, run=run.id, train_tokens_per_epoch=pre.train_tokens,
                   n_epochs_estimate=pre.n_epochs, estimated_usd=pre.train_usd)
    set_state("running", "uploading the training data to OpenAI")
    for key, path in files.items():
        if job.get(key):
            continue  # uploaded by an earlier session of this run
        uploaded = call(lambda: client.files.create(file=(path.name, path.read_bytes()), purpose="fine-tune"),
                        f"uploading {path.name}")
        job.update(**{key: uploaded.id})
        events.write("log", level="info", message=f"uploaded {path.name} as {uploaded.id} ({path.stat().st_size:,} bytes)")
    existing = _find_job(client, run.id, job.get("training_file"))
    if existing is not None:
        events.write("log", level="info", message=f"found OpenAI job {existing.id} made for this run; following it")
        created = existing
    else:
        created = _create_job(run, client, hp, job, sleep, events)
    job.update(job_id=created.id, status=created.status, created_at=created.created_at)
    return created.id


def _create_job(run: Run, client: Any, hp: OpenAISettings, job: JobFile, sleep: Callable[[float], None],
                events: EventWriter) -> Any:
    """Create the job without ever making two: after a failure that may have reached OpenAI
    (timeout, dropped connection, 5xx), look for a job with this run's metadata first."""
    seed = hp.seed if hp.seed >= 0 else run.spec.split.seed
    hyper = {"n_epochs": hp.n_epochs, "batch_size": hp.batch_size,
             "learning_rate_multiplier": hp.learning_rate_multiplier}
    params: dict[str, Any] = {
        "model": hp.model, "training_file": job.get("training_file"), "seed": seed,
        "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
        "metadata": {"ftui_run": run.id},
    }
    if job.get("validation_file"):
        params["validation_file"] = job.get("validation_file")
    if hp.suffix:
        params["suffix"] = hp.suffix
    once = client.with_options(max_retries=0)
    delay, attempt = 1.0, 0
    while True:
        try:
            created = once.fine_tuning.jobs.create(**params)
            events.write("log", level="info", message=f"created OpenAI job {created.id} ({hp.model})")
            return created
        except Exception as exc:  # noqa: BLE001
            if is_training_not_available(exc):
                _delete_files(client, job)
                raise TrainingNotAvailable(
                    "OpenAI refused to start the fine-tuning job (HTTP 403 training_not_available). "
                    f"{WIND_DOWN} Nothing was trained or billed, and the uploaded files were deleted. "
                    "The same data trains on this machine with the local backend:\n  "
                    + local_command(run.spec)) from None
            if not is_transient(exc) or attempt >= hp.max_retries:
                raise ServiceError(explain(exc, "creating the fine-tuning job")) from exc
            # The request may still reach OpenAI after this: the follower cancels any second job
            # with this run's metadata that turns up until this deadline.
            job.update(duplicate_watch_until=time.time() + hp.request_timeout_s * 2 + 10)
            sleep(delay)
            delay = min(delay * 2, 30.0)
            found = _find_job(client, run.id, job.get("training_file"))
            if found is not None:
                events.write("log", level="info", message=(
                    f"the job creation that failed ({explain(exc, 'create')}) had reached OpenAI: following {found.id}"))
                return found
            attempt += 1


def _jobs_of_run(client: Any, run_id: str) -> list[Any]:
    """Jobs created for this run, oldest first (by metadata, checked again client-side)."""
    page = call(lambda: client.fine_tuning.jobs.list(metadata={"ftui_run": run_id}, limit=20),
                "looking for this run's job (to avoid creating it twice)")
    mine = [j for j in page.data if (j.metadata or {}).get("ftui_run") == run_id]
    return sorted(mine, key=lambda j: (j.created_at, j.id))


def _find_job(client: Any, run_id: str, training_file: str | None) -> Any | None:
    """The job created for this run, if there is one."""
    for j in _jobs_of_run(client, run_id):
        if training_file is None or j.training_file == training_file:
            return j
    return None


def _delete_files(client: Any, job: JobFile) -> None:
    for key in ("training_file", "validation_file"):
        file_id = job.get(key)
        if file_id:
            try:
                client.files.delete(file_id)
            except Exception:  # noqa: BLE001 - best effort: the refusal is what the user must see
                continue
            job.update(**{key: None, f"{key}_deleted": file_id})


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


# -- following ------------------------------------------------------------------------------------

class _Follower:
    def __init__(self, run: Run, client: Any, hp: OpenAISettings, job: JobFile, events: EventWriter,
                 sleep: Callable[[float], None]) -> None:
        self.run, self.client, self.hp, self.job, self.events, self.sleep = run, client, hp, job, events, sleep
        self.price = training_price(hp.model)
        self.seen: set[str] = set()
        self.last_step = 0
        self.total_steps = 0
        self.steps_seen: set[int] = set()
        for ev in read_events(run.events_path):  # what earlier sessions of this run recorded
            if isinstance(ev.get("remote_id"), str):
                self.seen.add(ev["remote_id"])
            if ev["type"] == "train":
                self.steps_seen.add(ev["step"])
                self.last_step = max(self.last_step, ev["step"])
                self.total_steps = ev["total_steps"]
        self.started_ts: float | None = job.get("started_ts")

    def warn(self, message: str) -> None:
        self.events.write("log", level="warning", message=message)

    def follow(self, job_id: str, should_stop: Callable[[], bool], set_state: Callable[..., None]) -> Outcome:
        last_status = None
        while True:
            if should_stop():
                return self._cancel(job_id, set_state)
            try:
                j = patiently(lambda: self.client.fine_tuning.jobs.retrieve(job_id), "reading the job",
                              limit_s=self.hp.outage_limit_s, on_retry=self.warn, should_stop=should_stop)
                self._pull_events(job_id, j, should_stop)
            except StopRequested:
                return self._cancel(job_id, set_state)
            self.job.update(status=j.status, trained_tokens=j.trained_tokens, estimated_finish=j.estimated_finish)
            self._cancel_duplicates(job_id)
            if j.status != last_status:
                last_status = j.status
                set_state("running", STATUS_TEXT.get(j.status, f"OpenAI job status: {j.status}"))
            if j.status == "succeeded":
                return self._finish(j)
            if j.status == "failed":
                err = j.error
                text = (err.message if err and err.message else "no reason given") + (
                    f" ({err.code})" if err and err.code else "")
                self.job.update(error={"code": err.code if err else None, "message": err.message if err else None})
                raise ServiceError(f"the OpenAI job {job_id} failed: {text}")
            if j.status == "cancelled":
                return Outcome("cancelled", f"the OpenAI job {job_id} was cancelled; OpenAI cannot continue a "
                                            f"cancelled job: start a new run to train again")
            waited = 0.0
            while waited < self.hp.poll_interval_s and not should_stop():
                step = min(0.2, self.hp.poll_interval_s - waited)
                self.sleep(step)
                waited += step

    def _cancel_duplicates(self, job_id: str) -> None:
        """A create request that timed out may still have made a job: cancel any job of this
        run other than the one followed, until the window for such late arrivals has passed."""
        until = self.job.get("duplicate_watch_until")
        if until is None:
            return
        for other in _jobs_of_run(self.client, self.run.id):
            if other.id != job_id and other.status in ("validating_files", "queued", "running"):
                call(lambda: self.client.fine_tuning.jobs.cancel(other.id), f"cancelling duplicate job {other.id}")
                self.warn(f"cancelled {other.id}, a second job made by a create request that timed out; "
                          f"following {job_id}")
                self.job.update(duplicates_cancelled=[*self.job.get("duplicates_cancelled", []), other.id])
        if time.time() > until:
            self.job.update(duplicate_watch_until=None)

    # events
    def _pull_events(self, job_id: str, j: Any, should_stop: Callable[[], bool]) -> None:
        """New events of the job, oldest first. The API lists newest first; ``after`` pages back."""
        new: list[Any] = []
        after: str | None = None
        while True:
            kwargs = {"limit": 100, **({"after": after} if after else {})}
            page = patiently(lambda: self.client.fine_tuning.jobs.list_events(job_id, **kwargs),
                             "reading the job's events", limit_s=self.hp.outage_limit_s,
                             on_retry=self.warn, should_stop=should_stop)
            reached_known = False
            for ev in page.data:
                if ev.id in self.seen:
                    reached_known = True
                    break
                new.append(ev)
            if reached_known or not page.has_more or not page.data:
                break
            after = page.data[-1].id
        wrote_metrics = False
        for ev in reversed(new):
            wrote_metrics |= self._record(ev, j)
            self.seen.add(ev.id)
        if wrote_metrics:
            self._estimate_cost(j)

    def _record(self, ev: Any, j: Any) -> bool:
        data = ev.data if isinstance(ev.data, dict) else None
        if ev.type != "metrics" or data is None:
            level = {"warn": "warning"}.get(ev.level, ev.level or "info")
            self.events.write("log", level=level, message=f"OpenAI: {ev.message}", remote_id=ev.id)
            if self.started_ts is None and j.status == "running":
                self.started_ts = float(ev.created_at)
                self.job.update(started_ts=self.started_ts)
            return False
        try:
            step = int(data["step"])
            total = int(data.get("total_steps") or step)
            train_loss = _num(data.get("train_loss"))
            valid_loss = _num(data.get("full_valid_loss", data.get("valid_loss")))
            valid_acc = _num(data.get("full_valid_mean_token_accuracy", data.get("valid_mean_token_accuracy")))
            train_acc = _num(data.get("train_mean_token_accuracy"))
        except (KeyError, TypeError, ValueError):
            self.warn(f"OpenAI sent a metrics event this version cannot read ({ev.id}); skipped")
            return False
        if step in self.steps_seen:
            return False
        if self.started_ts is None:
            self.started_ts = float(ev.created_at)
            self.job.update(started_ts=self.started_ts)
        epochs = self._epochs(j)
        tokens = round(self._total_tokens(j) * step / total) if total else 0
        elapsed = float(ev.created_at) - self.started_ts
        rate = tokens / elapsed if elapsed > 0 else 0.0
        if train_loss is not None:
            self.events.write("train", step=step, total_steps=total, epoch=round(epochs * step / total, 4),
                              loss=train_loss, lr=None, tokens=int(tokens), tokens_per_s=round(rate, 2),
                              token_accuracy=train_acc, remote_id=ev.id)
            self.steps_seen.add(step)
            self.last_step = max(self.last_step, step)
            self.total_steps = total
        if valid_loss is not None:
            self.events.write("val", step=step, loss=valid_loss, token_accuracy=valid_acc, remote_id=ev.id)
        return True

    def _epochs(self, j: Any) -> int:
        n = getattr(getattr(j, "hyperparameters", None), "n_epochs", None)
        if not isinstance(n, int):
            method = getattr(j, "method", None)
            sup = getattr(method, "supervised", None) if method else None
            n = getattr(getattr(sup, "hyperparameters", None), "n_epochs", None) if sup else None
        return n if isinstance(n, int) and n > 0 else int(self.job.get("n_epochs_estimate") or 1)

    def _total_tokens(self, j: Any) -> int:
        return int(self.job.get("train_tokens_per_epoch") or 0) * self._epochs(j)

    def _estimate_cost(self, j: Any) -> None:
        if self.price is None or not self.steps_seen:
            return
        total = self._total_tokens(j)
        done = total * self.last_step / self.total_steps if self.total_steps else 0
        self.events.write("cost", usd=round(done * self.price / 1e6, 6), projected_usd=round(total * self.price / 1e6, 6),
                          basis=f"estimate: {total:,} tokens ({self._epochs(j)} epoch(s)) x ${self.price:g} per 1M "
                                f"training tokens ({self.hp.model}, OpenAI prices {PRICES_AS_OF})")

    # the end
    def _finish(self, j: Any) -> Outcome:
        self.job.update(fine_tuned_model=j.fine_tuned_model, trained_tokens=j.trained_tokens,
                        finished_at=j.finished_at, result_files=list(j.result_files or []),
                        hyperparameters=_plain(j.hyperparameters))
        self._checkpoints(j.id)
        self._result_file(j)
        if j.trained_tokens is not None and self.price is not None:
            billed = j.trained_tokens * self.price / 1e6
            self.job.update(billed_usd=round(billed, 6))
            self.events.write("cost", usd=round(billed, 6), projected_usd=round(billed, 6),
                              basis=f"billed: {j.trained_tokens:,} trained tokens reported by the job x "
                                    f"${self.price:g} per 1M ({self.hp.model}, OpenAI prices {PRICES_AS_OF})")
        return Outcome("succeeded", f"fine-tuned model {j.fine_tuned_model}")

    def _checkpoints(self, job_id: str) -> None:
        try:
            page = call(lambda: self.client.fine_tuning.jobs.checkpoints.list(job_id, limit=100),
                        "listing the job's checkpoints")
        except ServiceError as exc:
            self.warn(f"{exc} (the fine-tuned model itself is fine)")
            return
        found = sorted(page.data, key=lambda c: c.step_number)
        recorded = {e["path"] for e in read_events(self.run.events_path) if e["type"] == "checkpoint"}
        self.job.update(checkpoints=[{"id": c.id, "step": c.step_number, "model": c.fine_tuned_model_checkpoint}
                                     for c in found])
        for c in found:
            if c.fine_tuned_model_checkpoint not in recorded:
                self.events.write("checkpoint", step=int(c.step_number), path=c.fine_tuned_model_checkpoint)

    def _result_file(self, j: Any) -> None:
        """Save the job's result file (per-step metrics) and fill steps the event feed missed."""
        if not j.result_files:
            return
        file_id = j.result_files[0]
        try:
            text = call(lambda: self.client.files.content(file_id).text, "reading the job's result file")
        except ServiceError as exc:
            self.warn(str(exc))
            return
        (self.run.dir / "openai").mkdir(exist_ok=True)
        (self.run.dir / "openai" / "result.csv").write_text(text, encoding="utf-8")
        try:
            rows = list(csv.DictReader(io.StringIO(text)))
            steps = [(int(r["step"]), _num(r.get("train_loss"))) for r in rows if r.get("step")]
        except (KeyError, ValueError, csv.Error):
            self.warn("the job's result file is not the CSV expected; kept as openai/result.csv")
            return
        missing = [(s, loss) for s, loss in steps if s not in self.steps_seen and loss is not None]
        if not missing:
            return
        total = max(s for s, _ in steps)
        tokens = self._total_tokens(j)
        for s, loss in missing:
            self.events.write("train", step=s, total_steps=total, epoch=round(self._epochs(j) * s / total, 4),
                              loss=loss, lr=None, tokens=round(tokens * s / total), tokens_per_s=0.0)
            self.steps_seen.add(s)
        self.events.write("log", level="info", message=f"{len(missing)} step(s) filled from the job's result file")

    def _cancel(self, job_id: str, set_state: Callable[..., None]) -> Outcome:
        set_state("running", "cancelling the OpenAI job")
        self.job.update(cancel_requested=time.time())
        try:
            j = call(lambda: self.client.fine_tuning.jobs.cancel(job_id), "cancelling the job")
        except ServiceError as exc:
            self.warn(str(exc))
            j = call(lambda: self.client.fine_tuning.jobs.retrieve(job_id), "reading the job")
        deadline = time.monotonic() + CANCEL_WAIT_S
        while j.status not in ("cancelled", "succeeded", "failed") and time.monotonic() < deadline:
            self.sleep(min(1.0, self.hp.poll_interval_s))
            j = call(lambda: self.client.fine_tuning.jobs.retrieve(job_id), "reading the job")
        self.job.update(status=j.status)
        if j.status == "succeeded":
            return self._finish(j)
        if j.status not in ("cancelled", "failed"):
            raise ServiceError(f"asked OpenAI to cancel job {job_id}, but it is still {j.status}; "
                               f"check it on the platform")
        return Outcome("cancelled", f"the OpenAI job {job_id} was cancelled; OpenAI cannot continue a "
                                    f"cancelled job: start a new run to train again")


def _num(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a metric")
    return float(value)


def _plain(obj: Any) -> Any:
    if obj is None:
        return None
    dump = getattr(obj, "model_dump", None)
    return dump(mode="json") if dump else obj
