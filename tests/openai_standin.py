"""A local stand-in for the OpenAI endpoints ftui uses, for tests (never the real service).

It speaks files (upload, content, delete), fine-tuning jobs (create, list with a metadata
filter, retrieve, cancel), job events (newest first, paged with ``after``), checkpoints
and chat completions, with the real API's body shapes and error bodies. A job advances
each time it is retrieved: validating_files -> queued -> running (``steps_per_poll``
steps per retrieve, each a ``metrics`` event) -> succeeded, with a result file, checkpoints
and ``trained_tokens``.

Faults are injected per route: an HTTP status with OpenAI's error body, a delay (for
timeouts), a dropped connection, or a truncated / malformed JSON body.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlparse

API_KEY = "sk-test-STANDIN-secret-4f9c2b7e0d1a"


@dataclass
class Fault:
    method: str
    path: str
    """A regular expression matched against the path (``/v1/fine_tuning/jobs$``)."""
    kind: str
    """``status``, ``delay``, ``drop``, ``truncated`` or ``malformed``."""
    times: int = 1
    status: int = 500
    code: str | None = None
    message: str = "The server had an error while processing your request."
    delay_s: float = 0.0


def _error(status: int, message: str, code: str | None = None, kind: str = "invalid_request_error") -> tuple[int, dict]:
    return status, {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _count(text: str) -> int:
    return max(1, len(text) // 4)


def default_answer(model: str, messages: list[dict[str, Any]], answers: dict[str, str]) -> str:
    """A fine-tuned model answers the reference; the base model zero-shot chats around the
    answer (invalid); with examples in the prompt it answers a valid but wrong query."""
    user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    if model.startswith("ft:"):
        return answers.get(user, "SELECT 1")
    if sum(1 for m in messages if m.get("role") == "user") > 1:
        return "SELECT 1"
    return "Sure! Here is a query that should answer it: SELECT"


class StandIn:
    def __init__(self, *, steps_per_poll: int = 10, batch_size: int = 4) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.job_events: dict[str, list[dict[str, Any]]] = {}
        self.checkpoints: dict[str, list[dict[str, Any]]] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.bad_auth = 0
        self.steps_per_poll = steps_per_poll
        self.batch_size = batch_size
        self.fail_at_step: int | None = None
        self.fail_error = {"code": "invalid_training_file", "message": "The job failed due to an internal error."}
        self.hold_running = False
        """While true, a running job does not advance (to kill or stop a runner mid-job)."""
        self.answers: dict[str, str] = {}
        self.answer: Callable[[str, list[dict[str, Any]], dict[str, str]], str] = default_answer
        self.completions = 0
        self._lock = threading.RLock()
        self._n = 0
        self._server: ThreadingHTTPServer | None = None

    # -- life ---------------------------------------------------------------------------------
    def start(self) -> "StandIn":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

            def do_DELETE(self) -> None:
                standin._handle(self, "DELETE")

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up is part of the tests

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def env(self) -> dict[str, str]:
        return {"OPENAI_BASE_URL": self.url, "OPENAI_API_KEY": API_KEY}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def add_fault(self, method: str, path: str, kind: str, **kw: Any) -> None:
        with self._lock:
            self.faults.append(Fault(method, path, kind, **kw))

    def created_jobs(self) -> list[dict[str, Any]]:
        return list(self.jobs.values())

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for m, p in self.requests if m == method and re.search(pattern, p))

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n:06d}"

    # -- dispatch -------------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        path = url.path
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self._lock:
            self.requests.append((method, path))
            fault = next((f for f in self.faults if f.method == method and re.search(f.path, path) and f.times > 0), None)
            if fault is not None:
                fault.times -= 1
        if fault is not None:
            if fault.kind == "delay":
                time.sleep(fault.delay_s)
            elif fault.kind == "drop":
                h.close_connection = True
                h.wfile.flush()
                h.connection.shutdown(2)
                return
            elif fault.kind == "status":
                status, obj = _error(fault.status, fault.message, fault.code,
                                     "server_error" if fault.status >= 500 else "invalid_request_error")
                self._send(h, status, obj, extra={"retry-after-ms": "20"} if fault.status == 429 else None)
                return
            elif fault.kind in ("truncated", "malformed"):
                raw = b'{"id": "ftjob-' if fault.kind == "truncated" else b"<html>Bad gateway</html>"
                h.send_response(200)
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(raw)))
                h.end_headers()
                h.wfile.write(raw)
                return
        if h.headers.get("Authorization") != f"Bearer {API_KEY}":
            self.bad_auth += 1
            got = (h.headers.get("Authorization") or "").removeprefix("Bearer ")
            self._send(h, *_error(401, f"Incorrect API key provided: {got[:3]}***{got[-4:]}.", "invalid_api_key"))
            return
        try:
            result = self._route(method, path, parse_qs(url.query), body, h.headers.get("Content-Type", ""))
        except Exception as exc:  # a bug here must show up as a 500, not a hung test
            result = _error(500, f"stand-in error: {exc!r}", None, "server_error")
        if isinstance(result, bytes):
            h.send_response(200)
            h.send_header("Content-Type", "application/octet-stream")
            h.send_header("Content-Length", str(len(result)))
            h.end_headers()
            h.wfile.write(result)
            return
        self._send(h, *result)

    def _send(self, h: BaseHTTPRequestHandler, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        raw = json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(raw)))
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(raw)

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes, ctype: str) -> Any:
        with self._lock:
            if method == "POST" and path == "/v1/files":
                return self._upload(body, ctype)
            m = re.fullmatch(r"/v1/files/([\w-]+)(/content)?", path)
            if m:
                f = self.files.get(m.group(1))
                if f is None or f.get("deleted"):
                    return _error(404, f"No such File object: {m.group(1)}", None)
                if method == "DELETE":
                    f["deleted"] = True
                    return 200, {"id": m.group(1), "object": "file", "deleted": True}
                return f["content"] if m.group(2) else (200, f["meta"])
            if path == "/v1/fine_tuning/jobs":
                if method == "POST":
                    return self._create_job(json.loads(body))
                return self._list_jobs(query)
            m = re.fullmatch(r"/v1/fine_tuning/jobs/([\w-]+)(/events|/checkpoints|/cancel)?", path)
            if m:
                job = self.jobs.get(m.group(1))
                if job is None:
                    return _error(404, f"Could not find fine-tune: {m.group(1)}", "fine_tune_not_found")
                part = m.group(2)
                if part is None:
                    self._advance(job)
                    return 200, job
                if part == "/events":
                    return self._list_events(job["id"], query)
                if part == "/checkpoints":
                    data = list(reversed(self.checkpoints.get(job["id"], [])))
                    return 200, {"object": "list", "data": data, "has_more": False,
                                 "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}
                return self._cancel(job)
            if method == "POST" and path == "/v1/chat/completions":
                return self._chat(json.loads(body))
            return _error(404, f"Invalid URL ({method} {path})", None)

    # -- files -------------------------------------------------------------------------------
    def _upload(self, body: bytes, ctype: str) -> tuple[int, dict]:
        msg = BytesParser(policy=email_policy).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        fields: dict[str, Any] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = (part.get_filename(), part.get_payload(decode=True))
        if "file" not in fields or fields.get("purpose", (None, b""))[1] != b"fine-tune":
            return _error(400, "'file' and purpose 'fine-tune' are required", None)
        filename, content = fields["file"]
        lines = [ln for ln in content.decode("utf-8").splitlines() if ln.strip()]
        for i, line in enumerate(lines, 1):
            try:
                if "messages" not in json.loads(line):
                    raise ValueError
            except ValueError:
                return _error(400, f"Invalid file format: line {i} is not a chat example", "invalid_file_format")
        fid = self._id("file-")
        meta = {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                "filename": filename, "purpose": "fine-tune", "status": "processed", "expires_at": None,
                "status_details": None}
        self.files[fid] = {"meta": meta, "content": content, "lines": lines}
        return 200, meta

    # -- jobs --------------------------------------------------------------------------------
    def _create_job(self, req: dict[str, Any]) -> tuple[int, dict]:
        tf = self.files.get(req.get("training_file", ""))
        if tf is None or tf.get("deleted"):
            return _error(400, f"invalid training_file: {req.get('training_file')}", "invalid_training_file")
        hyper = ((req.get("method") or {}).get("supervised") or {}).get("hyperparameters") or {}
        n = len(tf["lines"])
        epochs = hyper.get("n_epochs", "auto")
        epochs = 3 if epochs == "auto" else int(epochs)
        batch = hyper.get("batch_size", "auto")
        batch = self.batch_size if batch == "auto" else int(batch)
        lrm = hyper.get("learning_rate_multiplier", "auto")
        lrm = 1.8 if lrm == "auto" else float(lrm)
        jid = self._id("ftjob-")
        tokens = sum(_count(line) for line in tf["lines"])
        job = {
            "object": "fine_tuning.job", "id": jid, "model": req["model"], "created_at": int(time.time()),
            "finished_at": None, "fine_tuned_model": None, "organization_id": "org-standin", "result_files": [],
            "status": "validating_files", "validation_file": req.get("validation_file"),
            "training_file": req["training_file"], "hyperparameters": {
                "n_epochs": epochs, "batch_size": batch, "learning_rate_multiplier": lrm},
            "trained_tokens": None, "error": None, "seed": req.get("seed", 0), "estimated_finish": None,
            "integrations": [], "metadata": req.get("metadata"), "user_provided_suffix": req.get("suffix"),
            "method": {"type": "supervised", "supervised": {"hyperparameters": {
                "n_epochs": epochs, "batch_size": batch, "learning_rate_multiplier": lrm}}},
            "_total_steps": math.ceil(n * epochs / batch), "_step": 0, "_tokens_per_epoch": tokens,
        }
        self.jobs[jid] = job
        self.job_events[jid] = []
        self._event(jid, f"Validating training file: {req['training_file']}")
        self._event(jid, "Created fine-tuning job: " + jid)
        return 200, self._public(job)

    def _public(self, job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    def _list_jobs(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        wanted = {k[len("metadata["):-1]: v[0] for k, v in query.items() if k.startswith("metadata[")}
        jobs = [self._public(j) for j in reversed(list(self.jobs.values()))
                if all((j.get("metadata") or {}).get(k) == v for k, v in wanted.items())]
        return 200, {"object": "list", "data": jobs, "has_more": False}

    def _event(self, jid: str, message: str, *, level: str = "info", data: dict | None = None) -> None:
        self.job_events[jid].append({"object": "fine_tuning.job.event", "id": f"ftevent-{jid[6:]}-{len(self.job_events[jid]):05d}",
                                     "created_at": int(time.time()), "level": level, "message": message,
                                     "data": data or {}, "type": "metrics" if data else "message"})

    def _advance(self, job: dict[str, Any]) -> None:
        jid, status = job["id"], job["status"]
        if status == "validating_files":
            job["status"] = "queued"
            self._event(jid, "Files validated, moving job to queued state")
        elif status == "queued":
            job["status"] = "running"
            self._event(jid, "Fine-tuning job started")
        elif status == "running" and not self.hold_running:
            total = job["_total_steps"]
            for _ in range(self.steps_per_poll):
                job["_step"] += 1
                step = job["_step"]
                if self.fail_at_step is not None and step >= self.fail_at_step:
                    job["status"], job["error"] = "failed", dict(self.fail_error, param=None)
                    job["finished_at"] = int(time.time())
                    self._event(jid, f"Fine-tuning job failed: {self.fail_error['message']}", level="error")
                    return
                loss = round(2.5 * math.exp(-step / (total / 3)) + 0.1, 4)
                data = {"step": step, "train_loss": loss, "train_mean_token_accuracy": round(1 - loss / 3, 4),
                        "total_steps": total}
                if step % 10 == 0 or step == total:
                    data.update(valid_loss=round(loss * 1.1, 4), valid_mean_token_accuracy=round(1 - loss / 2.8, 4))
                if step == total:
                    data.update(full_valid_loss=round(loss * 1.12, 4), full_valid_mean_token_accuracy=round(1 - loss / 2.7, 4))
                self._event(jid, f"Step {step}/{total}: training loss={loss:.4f}", data=data)
                epochs = job["hyperparameters"]["n_epochs"]
                if step % max(1, total // epochs) == 0 or step == total:
                    ck = {"object": "fine_tuning.job.checkpoint", "id": self._id("ftckpt_"), "created_at": int(time.time()),
                          "fine_tuned_model_checkpoint": f"ft:{job['model']}:org-standin:ftui:{jid[-6:]}:ckpt-step-{step}",
                          "step_number": step, "fine_tuning_job_id": jid,
                          "metrics": {"step": step, "train_loss": loss}}
                    self.checkpoints.setdefault(jid, []).append(ck)
                    self._event(jid, f"Checkpoint created at step {step}")
                if step >= total:
                    self._succeed(job)
                    return

    def _succeed(self, job: dict[str, Any]) -> None:
        jid = job["id"]
        job["status"] = "succeeded"
        job["fine_tuned_model"] = f"ft:{job['model']}:org-standin:{job.get('user_provided_suffix') or ''}:{jid[-6:]}"
        job["finished_at"] = int(time.time())
        job["trained_tokens"] = job["_tokens_per_epoch"] * job["hyperparameters"]["n_epochs"]
        rows = ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"]
        for ev in self.job_events[jid]:
            d = ev["data"]
            if d:
                rows.append(f"{d['step']},{d['train_loss']},{d['train_mean_token_accuracy']},"
                            f"{d.get('valid_loss', '')},{d.get('valid_mean_token_accuracy', '')}")
        fid = self._id("file-")
        content = ("\n".join(rows) + "\n").encode()
        self.files[fid] = {"meta": {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                                    "filename": "step_metrics.csv", "purpose": "fine-tune-results", "status": "processed"},
                           "content": content, "lines": rows}
        job["result_files"] = [fid]
        self._event(jid, f"New fine-tuned model created: {job['fine_tuned_model']}")
        self._event(jid, "The job has successfully completed")

    def _list_events(self, jid: str, query: dict[str, list[str]]) -> tuple[int, dict]:
        events = list(reversed(self.job_events[jid]))  # newest first, as the API lists them
        after = query.get("after", [None])[0]
        if after:
            ids = [e["id"] for e in events]
            events = events[ids.index(after) + 1:] if after in ids else []
        limit = int(query.get("limit", ["20"])[0])
        return 200, {"object": "list", "data": events[:limit], "has_more": len(events) > limit}

    def _cancel(self, job: dict[str, Any]) -> tuple[int, dict]:
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return _error(400, f"Job {job['id']} has already completed with status {job['status']}.", None)
        job["status"] = "cancelled"
        job["finished_at"] = int(time.time())
        self._event(job["id"], "Fine-tuning job cancelled")
        return 200, self._public(job)

    # -- inference -------------------------------------------------------------------------
    def _chat(self, req: dict[str, Any]) -> tuple[int, dict]:
        model = req.get("model", "")
        known = {j["fine_tuned_model"] for j in self.jobs.values() if j["fine_tuned_model"]}
        if model.startswith("ft:") and model not in known:
            return _error(404, f"The model `{model}` does not exist or you do not have access to it.", "model_not_found")
        messages = req.get("messages") or []
        text = self.answer(model, messages, self.answers)
        self.completions += 1
        prompt = sum(_count(str(m.get("content", ""))) + 3 for m in messages) + 3
        return 200, {
            "id": self._id("chatcmpl-"), "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": _count(text), "total_tokens": prompt + _count(text)},
            "system_fingerprint": "fp_standin",
        }
