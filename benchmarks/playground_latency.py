#!/usr/bin/env python
"""The Playground's latency on the embedded model: start-up, model load, first token.

    .venv/bin/python benchmarks/playground_latency.py [--quick]

A demo run on the embedded model (SmolLM2-135M-Instruct, cached safetensors) with a LoRA
adapter (peft's initialisation, not trained: the cost is the same) is served as the Playground
serves it: ``python -m ftui.runner.serve RUN_DIR`` through ``InferenceServer``. Measured: the
process's start (interpreter and libraries), the model load (base plus adapter), the priming
pass the screen sends when the models are ready, then for held-out examples (their own
questions, as a person would start) the time to each variant's first token and the decoding
rate. Targets (issue 16): first token < 1 s after the model is loaded; model load < 3 s.

The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, print_table, rounded, scratch_home  # noqa: E402


def make_run() -> Any:
    import json

    from ftui.core.examples import Example
    from ftui.core.presets import load_preset, sample_path
    from ftui.core.runs import create_run

    demo = load_preset("demo")
    with open(sample_path(demo), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    examples = [Example(fields={"question": r["question"], "context": r["context"]}, reference=r["answer"], line=i + 1)
                for i, r in enumerate(rows)]
    spec = {"preset": "demo", "task": "sql", "task_options": {},
            "prompt": {"system": demo.prompt.system, "user": demo.prompt.user},
            "split": {"seed": 7, "val": 0, "test": 10}, "backend": "local", "model": "smollm2-135m",
            "hyperparameters": {"quantization": "none"},
            "eval": {"max_new_tokens": demo.eval.max_new_tokens, "k": demo.eval.k, "limit": 0, "batch_size": 4}}
    run = create_run(label="bench-play", spec=spec, splits={"train": examples[100:140], "val": [], "test": examples[:10]})
    import peft

    from ftui.backends.local.models import load_model

    model = load_model("smollm2-135m")
    peft.get_peft_model(model, peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
                        ).save_pretrained(run.dir / "adapter")
    run.write_status("succeeded", message="benchmark")
    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 held-out examples instead of 5")
    args = p.parse_args(argv)
    with scratch_home():
        from ftui.core.playground import playground_plan, prompts
        from ftui.runner.serve_client import InferenceServer

        run = make_run()
        plan = playground_plan(run)
        events: queue.Queue[dict[str, Any]] = queue.Queue()
        began = time.perf_counter()
        server = InferenceServer(run, events.put)
        server.start()
        try:
            ready = events.get(timeout=300)
            spawn_to_ready = time.perf_counter() - began
            if ready.get("event") != "ready":
                print(f"the server did not start: {ready}", file=sys.stderr)
                return 1
            primed_at = time.perf_counter()
            server.prime(0, prompts(plan, plan.examples[0]))
            primed = events.get(timeout=300)
            prime_s = time.perf_counter() - primed_at
            rows, firsts = [], {v: [] for v in ("base", "kshot", "finetuned")}
            rates: list[float] = []
            for rid, example in enumerate(plan.examples[1:3 if args.quick else 6], start=1):
                server.generate(rid, prompts(plan, example), max_new_tokens=plan.settings.max_new_tokens)
                finished = 0
                while finished < 3:
                    event = events.get(timeout=300)
                    if event["event"] == "done":
                        finished += 1
                        firsts[event["variant"]].append(event["first_token_s"])
                        if event["tokens"] > 1:
                            rates.append((event["tokens"] - 1) / (event["total_s"] - event["first_token_s"]))
                        rows.append((f"#{rid} {event['variant']}", event["tokens"], rounded(event["first_token_s"]),
                                     rounded(event["total_s"])))
                    elif event["event"] in ("error", "exited"):
                        print(f"failed: {event}", file=sys.stderr)
                        return 1
        finally:
            server.close()
    print(f"start-up (interpreter, libraries) {ready['import_s']:.2f} s; model load {ready['load_s']:.2f} s; "
          f"spawn to ready {spawn_to_ready:.2f} s; priming {prime_s:.2f} s ({primed.get('event')})")
    print_table(("answer", "tokens", "first token s", "total s"), rows)
    figures = {
        "benchmark": "playground_latency", **machine(),
        "import_s": ready["import_s"], "load_s": ready["load_s"], "spawn_to_ready_s": rounded(spawn_to_ready),
        "prime_s": rounded(prime_s),
        "first_token_s": {v: {"median": rounded(statistics.median(xs)), "max": rounded(max(xs))}
                          for v, xs in firsts.items() if xs},
        "tokens_per_s": rounded(statistics.median(rates)) if rates else None,
    }
    emit(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
