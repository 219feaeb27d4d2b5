"""The Playground's inference process: ``python -m ftui.runner.serve RUN_DIR``.

It loads the run's models once (the backend's ``player``) and answers prompts token by token,
speaking JSON lines: requests on its stdin, events on its stdout (``ftui.runner.serve_client``
is the other end; the protocol is described there). Anything a library prints goes to stderr.

It lives only as long as the viewer that started it: it exits at the end of its stdin (the
viewer closed the pipe, exited or was killed, SIGKILL included: the kernel closes the pipe),
and when its parent process is gone. A new request (or ``stop``) ends the answer in progress
at its next token.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable

PARENT_POLL_S = 1.0


def main(argv: list[str] | None = None) -> int:
    began = time.perf_counter()
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ftui.runner.serve RUN_DIR", file=sys.stderr)
        return 2
    # The protocol owns the real stdout; whatever else writes to fd 1 lands in stderr.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    requests: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=_read_requests, args=(sys.stdin.buffer, requests), daemon=True,
                     name="ftui-serve-stdin").start()
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True, name="ftui-serve-parent").start()

    from ftui.runner.quiet import quiet_libraries

    quiet_libraries()
    send = _Sender(out)
    try:
        from ftui.backends.base import load_backend
        from ftui.core.runs import Run

        run = Run(Path(args[0]).resolve())
        loading = time.perf_counter()
        player = load_backend(run.spec.backend).player(run)
        loaded = time.perf_counter()
    except Exception as exc:  # noqa: BLE001 - the viewer shows why; the traceback goes to stderr
        import traceback

        traceback.print_exc()
        send(event="failed", message=_message(exc))
        return 1
    import_s = float(getattr(player, "import_s", 0.0))
    send(event="ready", variants=list(player.variants), describe=player.describe(),
         load_s=round(loaded - loading - import_s, 3), import_s=round(loading - began + import_s, 3))
    while True:
        request = requests.get()
        if request.get("op") == "generate":
            _generate(player, request, requests, send)
        elif request.get("op") == "prime":
            # The first token of each prompt, unreported: warms the model up and leaves the
            # prompts' beginning (system message, shots) in the cache for the next request.
            began = time.perf_counter()
            _generate(player, {**request, "max_new_tokens": 1}, requests, lambda **event: None)
            send(event="primed", id=request.get("id"), total_s=round(time.perf_counter() - began, 3))
        elif request.get("op") == "quit":
            player.close()
            return 0


def _generate(player: Any, request: dict[str, Any], requests: queue.Queue, send: Callable[..., None]) -> None:
    rid = request.get("id")
    max_new_tokens = int(request.get("max_new_tokens") or 128)
    newer = lambda: not requests.empty()  # noqa: E731 - a newer request or a stop ends this one
    for variant, prompt in (request.get("prompts") or {}).items():
        if newer():
            send(event="stopped", id=rid)
            return
        began = time.perf_counter()
        first: float | None = None
        text, tokens = "", 0
        try:
            for text in player.stream(variant, prompt, max_new_tokens=max_new_tokens, should_stop=newer):
                tokens += 1
                if first is None:
                    first = time.perf_counter() - began
                send(event="partial", id=rid, variant=variant, text=text)
        except Exception as exc:  # noqa: BLE001 - one failed answer; the others still come
            import traceback

            traceback.print_exc()
            send(event="error", id=rid, variant=variant, message=_message(exc))
            continue
        if newer():
            send(event="stopped", id=rid)
            return
        send(event="done", id=rid, variant=variant, text=text, tokens=tokens,
             first_token_s=None if first is None else round(first, 4),
             total_s=round(time.perf_counter() - began, 4))


class _Sender:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.lock = threading.Lock()

    def __call__(self, **event: Any) -> None:
        line = (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8")
        with self.lock:
            try:
                self.out.write(line)
            except (BrokenPipeError, OSError):
                os._exit(0)  # nobody reads any more: the viewer is gone


def _read_requests(stream: BinaryIO, requests: queue.Queue) -> None:
    from ftui.runner.serve_client import json_objects

    for request in json_objects(stream):
        requests.put(request)
    os._exit(0)  # end of stdin: the viewer closed the pipe or is gone, even mid-answer


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(0)


def _message(exc: BaseException) -> str:
    from ftui.core.errors import FtuiError

    return str(exc) if isinstance(exc, FtuiError) else f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    raise SystemExit(main())
