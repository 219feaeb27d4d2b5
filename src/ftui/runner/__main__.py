"""Entry point of the detached runner (started by ``ftui.runner.launch``)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from ftui.core.events import LOST
from ftui.core.runs import Run, is_active
from ftui.runner.quiet import quiet_libraries
from ftui.runner.runner import Runner


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m ftui.runner")
    p.add_argument("run_dir")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--eval-only", action="store_true")
    p.add_argument("--variant", action="append", dest="variants")
    p.add_argument("--limit", type=int)
    p.add_argument("--heldout", default="", help="evaluate on data/heldout-NAME.jsonl (ftui eval --data)")
    args = p.parse_args()
    quiet_libraries()
    run = Run(Path(args.run_dir).resolve())
    if int(os.environ.get("RANK", "0")) != 0:  # one of several training processes (torchrun)
        from ftui.backends.base import load_backend

        if not _rank0_started(run):
            return 0  # cancelled (or failed) before it left the queue
        return load_backend(run.spec.backend).train_worker(run, resume=args.resume)
    return Runner(run).main(resume=args.resume, eval_only=args.eval_only, variants=args.variants, limit=args.limit,
                            heldout=args.heldout)


def _rank0_started(run: Run, poll_s: float = 0.5) -> bool:
    """Wait (loading nothing) while rank 0 waits in the machine-wide queue; True once it holds
    the devices and starts, False when it ended first. Only states written since torchrun (this
    process's parent) started count: status.json may still hold the previous session's last one."""
    import psutil  # small; the parent's start time

    since = psutil.Process(os.getppid()).create_time() - 0.5
    while True:
        st = run.status()
        fresh = isinstance(st.get("updated"), (int, float)) and st["updated"] >= since
        if fresh and st.get("state") not in ("queued", LOST):
            return is_active(st["state"])
        time.sleep(poll_s)


if __name__ == "__main__":
    raise SystemExit(main())
