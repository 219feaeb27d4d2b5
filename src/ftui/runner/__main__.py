"""Entry point of the detached runner (started by ``ftui.runner.launch``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ftui.core.runs import Run
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

        return load_backend(run.spec.backend).train_worker(run, resume=args.resume)
    return Runner(run).main(resume=args.resume, eval_only=args.eval_only, variants=args.variants, limit=args.limit,
                            heldout=args.heldout)


if __name__ == "__main__":
    raise SystemExit(main())
