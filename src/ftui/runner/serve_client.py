"""Starting, asking and stopping the Playground's inference process (``ftui.runner.serve``)
from a viewer; stdlib and core only, so the TUI can use it without loading torch.

The protocol is JSON lines over the process's pipes.

Requests (viewer -> server, on its stdin):
  ``{"op": "generate", "id": N, "prompts": {VARIANT: [chat messages], ...}, "max_new_tokens": M}``
      answer each prompt in turn, in the order given; a newer request ends this one;
  ``{"op": "prime", "id": N, "prompts": {...}}`` the same, unreported, one token each: warms the
      models up and keeps the prompts' beginning (system message, shots) cached; then ``primed``;
  ``{"op": "stop"}`` end the answer in progress; ``{"op": "quit"}``.
Events (server -> viewer, on its stdout):
  ``{"event": "ready", "variants": [...], "describe": "...", "load_s": s, "import_s": s}``
      the models are loaded (``load_s``: the weights; ``import_s``: start-up and libraries);
  ``{"event": "failed", "message": "..."}`` the models could not be loaded (the process ends);
  ``{"event": "partial", "id": N, "variant": V, "text": "the answer so far"}`` after each token;
  ``{"event": "done", "id": N, "variant": V, "text": "...", "tokens": n, "first_token_s": s,
  "total_s": s}``; ``{"event": "error", "id": N, "variant": V, "message": "..."}``;
  ``{"event": "stopped", "id": N}`` a newer request or a stop ended request N;
  ``{"event": "primed", "id": N, "total_s": s}``.
Closing the server's stdin ends it; so does the viewer's death (the kernel closes the pipe).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping, Sequence

from ftui.core.runs import Run
from ftui.runner.launch import child_env

LOG_NAME = "playground.log"
"""The server's stderr (library warnings, a traceback), in the run's folder."""
CLOSE_WAIT_S = 3.0


def serve_command(run: Run) -> list[str]:
    return [sys.executable, "-m", "ftui.runner.serve", str(run.dir)]


class InferenceServer:
    """One ``ftui.runner.serve`` process for ``run``; ``on_event`` gets each event it writes
    (from a reader thread), then ``{"event": "exited", "code": rc}`` when it ends."""

    def __init__(self, run: Run, on_event: Callable[[dict[str, Any]], None], *,
                 command: Sequence[str] | None = None) -> None:
        self.run = run
        self.on_event = on_event
        self.command = list(command) if command is not None else serve_command(run)
        self.proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        log_path: Path = self.run.dir / LOG_NAME
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                         close_fds=True, cwd=self.run.dir, env=child_env())
        threading.Thread(target=self._read, args=(self.proc,), daemon=True, name="ftui-serve-reader").start()

    def generate(self, rid: int, prompts: Mapping[str, Sequence[Mapping[str, Any]]], *, max_new_tokens: int) -> bool:
        """Ask for every prompt's answer (a request in progress ends); False when the server is gone."""
        return self._send({"op": "generate", "id": rid, "prompts": {k: list(v) for k, v in prompts.items()},
                           "max_new_tokens": max_new_tokens})

    def prime(self, rid: int, prompts: Mapping[str, Sequence[Mapping[str, Any]]]) -> bool:
        return self._send({"op": "prime", "id": rid, "prompts": {k: list(v) for k, v in prompts.items()}})

    def stop(self) -> bool:
        return self._send({"op": "stop"})

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """End the server: close its stdin (it exits at once, even mid-answer), kill it if it has not
        gone within ``wait_s``."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _send(self, request: dict[str, Any]) -> bool:
        proc = self.proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            return False
        with self._lock:
            try:
                proc.stdin.write((json.dumps(request, ensure_ascii=False) + "\n").encode("utf-8"))
                proc.stdin.flush()
            except (OSError, ValueError):  # a closed pipe: the server is gone
                return False
        return True

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for event in json_objects(proc.stdout):
            self.on_event(event)
        self.on_event({"event": "exited", "code": proc.wait()})


def json_objects(stream: IO) -> Iterator[dict]:
    """The protocol's messages, one JSON object a line, in either direction; other lines are
    skipped (a library's stray print on the server's stdout)."""
    for line in stream:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            yield message
