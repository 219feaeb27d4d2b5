#!/usr/bin/env python
"""Eval throughput: ftui's batched greedy decoding against one ``generate`` call per prompt.

    .venv/bin/python benchmarks/eval_throughput.py --quick

The same model (the embedded SmolLM2-135M by default, in float32 as the runner evaluates), the
same prompts (the demo preset's held-out test split, as the ``base`` and ``kshot`` variants of
``ftui eval`` render them), the same ``max_new_tokens`` and batch size (the preset's). One side
is ``generate_one_at_a_time`` (``model.generate`` per prompt, no padding), the other
``generate_batched`` as ``ftui eval`` runs it: base and k-shot prompts in one running batch,
each variant a group with its own shared beginning. The outputs must be identical; only then
are examples per second and their ratio reported (exit status 1 otherwise). ``"ratio"`` in
the JSON line is over all the variants run; each variant's is under its name, its batched
seconds the sum of its examples' shares of the time.

The one-at-a-time side runs in two halves, before and after the batched side, so a machine
that gets busier or quieter during the run moves both alike.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, machine, print_table, rounded, use_source_tree  # noqa: E402

use_source_tree()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch  # heavy: the model

    from ftui.backends.local.evaluate import choose_shots
    from ftui.backends.local.models import load_model, load_tokenizer
    from ftui.core.data import load_preset_rows, split_examples
    from ftui.core.presets import load_preset
    from ftui.core.prompts import render_messages

    variants = [v.strip() for v in args.variant.split(",") if v.strip()]
    unknown = sorted(set(variants) - {"base", "kshot"})
    if unknown or not variants:
        print(f"--variant: choose from base, kshot (got {args.variant!r})", file=sys.stderr)
        return 2
    preset = load_preset("demo")
    splits = split_examples(load_preset_rows(preset).examples, preset.split)
    limit = args.limit or (32 if args.quick else len(splits["test"]))
    examples = splits["test"][:limit]
    shots = [splits["train"][i] for i in choose_shots(len(splits["train"]), preset.eval.k, seed=preset.split.seed)]
    max_new_tokens = args.max_new_tokens or preset.eval.max_new_tokens
    batch_size = args.batch_size or preset.eval.batch_size
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    model_id = args.model or preset.settings_for("local").model
    tokenizer = load_tokenizer(model_id)
    model = load_model(model_id, dtype=args.dtype, device=device).eval()

    figures: dict[str, Any] = {"benchmark": "eval_throughput", "device": device, "model": model_id,
                               "dtype": args.dtype, "variants": variants, "examples_per_variant": len(examples),
                               "batch_size": batch_size, "max_new_tokens": max_new_tokens}
    rows, total = [], {"batched": 0.0, "single": 0.0, "n": 0, "differing": 0}
    prompt_sets = {variant: [render_messages(ex, preset.prompt, shots=shots if variant == "kshot" else ())
                             for ex in examples] for variant in variants}
    measured = measure(model, tokenizer, prompt_sets, max_new_tokens=max_new_tokens, batch_size=batch_size)
    for variant, m in measured.items():
        for key in ("batched", "single", "n", "differing"):
            total[key] += m[key]
        identical = not m["differing"]
        figures[variant] = {
            "identical": identical, "differing": m["differing"], "prompt_tokens_mean": m["prompt_tokens_mean"],
            "output_tokens_mean": m["output_tokens_mean"], "outputs_at_max_new_tokens": m["at_max"],
            "batched_s": rounded(m["batched"], 2), "one_at_a_time_s": rounded(m["single"], 2),
            "ratio": rounded(m["single"] / m["batched"]) if identical else None,
        }
        rows.append([variant, rounded(m["n"] / m["single"]), rounded(m["n"] / m["batched"]),
                     f"{m['n'] - m['differing']}/{m['n']}", f"{m['single'] / m['batched']:.2f}x"])
        for i, (single, batched) in enumerate(m["mismatches"][:5]):
            print(f"\n{variant} prompt {i}:\n  one at a time: {single!r}\n  batched:       {batched!r}")
    identical = not total["differing"]
    figures.update(
        identical=identical, differing=total["differing"], examples=total["n"],
        batched_examples_per_s=rounded(total["n"] / total["batched"]) if identical else None,
        one_at_a_time_examples_per_s=rounded(total["n"] / total["single"]) if identical else None,
        batched_s=rounded(total["batched"], 2), one_at_a_time_s=rounded(total["single"], 2),
        ratio=rounded(total["single"] / total["batched"]) if identical else None,
        quick=args.quick, machine=machine(), torch=torch.__version__,
    )
    print(f"\n{model_id} ({args.dtype}) on {device}; {len(examples)} demo test prompts per variant, "
          f"max_new_tokens {max_new_tokens}, batch size {batch_size}\n")
    rows.append(["all", rounded(total["n"] / total["single"]), rounded(total["n"] / total["batched"]),
                 f"{total['n'] - total['differing']}/{total['n']}", f"{total['single'] / total['batched']:.2f}x"])
    print_table(["variant", "one at a time ex/s", "batched ex/s", "identical", "ratio"], rows)
    if identical:
        print(f"\nratio (batched / one at a time): {figures['ratio']:.2f}x examples per second, outputs identical\n")
    else:
        print(f"\n{total['differing']} output(s) differ, so no speed is reported\n")
    emit(figures)
    return 0 if identical else 1


def measure(model: Any, tokenizer: Any, prompt_sets: dict[str, list], *, max_new_tokens: int,
            batch_size: int) -> dict[str, dict[str, Any]]:
    """Both sides on each variant's prompts; per variant, their outputs and seconds."""
    from ftui.backends.local.generate import generate_batched, generate_one_at_a_time, prompt_token_ids

    labels = list(prompt_sets)
    prompts = [p for label in labels for p in prompt_sets[label]]
    of = [label for label in labels for _ in prompt_sets[label]]  # each prompt's variant
    # Warm-up (first-call allocations, lazy imports), outside the timing.
    generate_batched(model, tokenizer, prompts[:2], max_new_tokens=4, batch_size=2)
    generate_one_at_a_time(model, tokenizer, prompts[:1], max_new_tokens=4)
    # generate_batched sees all the prompts at once, as in `ftui eval` (waiting prompts join
    # the batch as rows finish); the one-at-a-time side runs in two halves around it (half of
    # each variant's prompts before, half after), so both sides are measured around the same
    # moments however busy the machine is.
    halves: tuple[list[int], list[int]] = ([], [])
    for label in labels:
        mine = [i for i in range(len(prompts)) if of[i] == label]
        cut = (len(mine) + 1) // 2
        halves[0].extend(mine[:cut])
        halves[1].extend(mine[cut:])
    single: dict[int, tuple[str, float]] = {}
    batched: dict[int, tuple[str, float]] = {}
    wall = {"batched": 0.0, "single": 0.0}
    for part in (halves[0], None, halves[1]):
        began = time.perf_counter()
        if part is None:
            out = generate_batched(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                   groups=[labels.index(label) for label in of])
            batched = dict(enumerate(out))
            wall["batched"] += time.perf_counter() - began
            print(f"... batched, {' and '.join(labels)} together: {wall['batched']:.1f} s", flush=True)
        elif part:
            out = generate_one_at_a_time(model, tokenizer, [prompts[i] for i in part], max_new_tokens=max_new_tokens)
            single.update(zip(part, out))
            wall["single"] += time.perf_counter() - began
            print(f"... one at a time {len(single)}/{len(prompts)}, {wall['single']:.1f} s", flush=True)

    def seconds(side: dict[int, tuple[str, float]], order: list[int], key: str) -> float:
        """The side's wall time, the variant's part of it as its examples' share of the latencies
        (the wall time also counts what no example's latency does: tokenizing, the shared
        beginnings' forwards)."""
        return wall[key] * sum(side[i][1] for i in order) / sum(latency for _, latency in side.values())

    figures = {}
    for label in labels:
        order = [i for i in range(len(prompts)) if of[i] == label]
        lengths = [len(ids) for ids in prompt_token_ids(tokenizer, [prompts[i] for i in order])]
        differing = [i for i in order if batched[i][0] != single[i][0]]
        out_tokens = [len(tokenizer(single[i][0], add_special_tokens=False)["input_ids"]) for i in order]
        figures[label] = {
            "batched": seconds(batched, order, "batched"), "single": seconds(single, order, "single"),
            "n": len(order), "differing": len(differing),
            "mismatches": [(single[i][0], batched[i][0]) for i in differing],
            "prompt_tokens_mean": rounded(sum(lengths) / len(lengths), 1),
            "output_tokens_mean": rounded(sum(out_tokens) / len(out_tokens), 1),
            "at_max": sum(n >= max_new_tokens for n in out_tokens)}
    return figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="32 prompts per variant: about 4 minutes on 2 CPU cores")
    p.add_argument("--limit", type=int,
                   help="the first N test prompts (default: the whole test split, the demo's 100; 32 with --quick)")
    p.add_argument("--variant", default="base,kshot",
                   help="comma-separated: base (zero-shot prompts), kshot (with the k training examples); "
                        "default both, as `ftui eval` runs them")
    p.add_argument("--model", help="default: the demo preset's model (the embedded smollm2-135m)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                   help="float32 (the runner's eval precision; bf16 outputs need not match)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--batch-size", type=int, help="default: the preset's eval batch size")
    p.add_argument("--max-new-tokens", type=int, help="default: the preset's")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
