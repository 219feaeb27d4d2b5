"""The command line (DESIGN.md, Command line). Each subcommand is a thin call into the core.

Exit codes: 0 success, 1 the work failed, 2 bad input (one paragraph, no traceback).
Nothing heavy is imported at module level, so ``ftui --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from ftui import __version__
from ftui.core.backends import backend, backend_names, default_backend
from ftui.core.errors import FtuiError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ftui",
        description="From a dataset to a measured fine-tuned model. Without a command: the TUI.",
    )
    p.add_argument("--version", action="version", version=f"ftui {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="start a fine-tuning run", epilog=_settings_epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_arguments(t)
    t.add_argument("--backend", choices=backend_names(), default=default_backend(),
                   help="where to train (default: %(default)s)")
    t.add_argument("--model", help="the base model: a hub id, a local folder, or smollm2-135m (the embedded "
                                   "model); for openai a model id (default: the preset's)")
    t.add_argument("--epochs", type=float, help="passes over the training split (default: the preset's; openai: "
                                                "whole numbers)")
    t.add_argument("--max-steps", type=int, help="stop after N optimizer steps (default: the epochs decide)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="any setting below, repeatable; eval.KEY, split.KEY and report.KEY say which section")
    t.add_argument("--detach", action="store_true", help="return at once; the run goes on")
    t.add_argument("--yes", action="store_true", help="openai: start even when the estimate is above budget_usd")
    t.add_argument("--json", action="store_true")

    e = sub.add_parser("eval", help="evaluate a run on its held-out split")
    e.add_argument("run", metavar="RUN")
    e.add_argument("--variant", choices=("base", "kshot", "finetuned"))
    e.add_argument("--limit", type=int, help="the first N held-out examples")
    e.add_argument("--data", type=Path, metavar="FILE|FOLDER",
                   help="evaluate on another held-out file (a folder: its test split) instead of the run's "
                        "test split; results go to eval/VARIANT@NAME/, NAME from the file's name")
    e.add_argument("--field", action="append", default=[], metavar="NAME=COLUMN", dest="fields",
                   help="with --data: read a task field from another column, as for train")
    e.add_argument("--json", action="store_true")

    r = sub.add_parser("runs", help="list runs")
    r.add_argument("--json", action="store_true")

    s = sub.add_parser("show", help="one run: status, settings, metrics")
    s.add_argument("run", metavar="RUN", help="id, unique prefix, or 'latest'")
    s.add_argument("--json", action="store_true")

    for name, text in (("attach", "watch a run's progress"), ("resume", "continue a stopped run"),
                       ("cancel", "stop a run (it saves a checkpoint first)")):
        a = sub.add_parser(name, help=text)
        a.add_argument("run", metavar="RUN")
        if name == "resume":
            a.add_argument("--detach", action="store_true", help="return at once; the run goes on")
        if name == "attach":
            a.add_argument("--plain", action="store_true",
                           help="print progress lines instead of opening the TUI (the default off a terminal)")

    tr = sub.add_parser("try", help="the Playground: your own input to the base, k-shot and fine-tuned models")
    tr.add_argument("run", metavar="RUN", help="id, unique prefix, or 'latest'")

    x = sub.add_parser("export", help="write summary.md, summary.json, predictions.csv, loss.png; "
                                      "or with --model the trained model (adapter, merged, GGUF)")
    x.add_argument("run", metavar="RUN")
    x.add_argument("--format", choices=("md", "json", "csv"))
    x.add_argument("--model", choices=("adapter", "merged", "gguf"),
                   help="the model instead of the summary: the adapter with its card, the adapter merged into "
                        "its base (a transformers folder), or that as GGUF; each with an Ollama Modelfile and the "
                        "vLLM/llama.cpp commands in its README.md")
    x.add_argument("--gguf-type", action="append", choices=("f16", "q8_0", "f32"), dest="gguf_types",
                   help="with --model gguf: the tensor type, repeatable (default: f16)")
    x.add_argument("--out", type=Path, help="a file with --format, else a folder (default: the run; with --model: "
                                            "RUN/export/KIND)")

    d = sub.add_parser("data", help="check a dataset")
    dsub = d.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    c = dsub.add_parser("check", help="counts, per-line errors, duplicates, tokens, split sizes")
    c.add_argument("file", nargs="?", type=Path, metavar="FILE",
                   help="a data file or a folder of split files (the same as --data)")
    _data_arguments(c)
    c.add_argument("--model", help="tokenizer for token counts (default: the preset's model); 'none' to skip")
    c.add_argument("--max-length", type=int, help="tokens per example (default: the preset's)")
    c.add_argument("--backend", choices=backend_names(), default=default_backend(),
                   help="openai: also the pre-flight (chat format, token counts, epochs, cost)")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="split sizes as for train (val, test, seed); with --backend openai also its "
                        "settings (model, n_epochs, budget_usd)")
    c.add_argument("--json", action="store_true")

    sc = sub.add_parser("score", help="score predictions made elsewhere: a JSONL, or one per line against a held-out file")
    sc.add_argument("file", nargs="?", type=Path, metavar="FILE",
                    help="a JSONL whose lines hold prediction, reference and the task's inputs")
    g = sc.add_mutually_exclusive_group(required=True)
    g.add_argument("--task", help="sql, funcrep, json or text")
    g.add_argument("--preset", help="use a preset's task and its options (allowed lists, schema)")
    sc.add_argument("--data", type=Path, metavar="HELDOUT",
                    help="instead of FILE: the held-out rows (JSONL, JSON list, CSV, Parquet), or with "
                         "--preset a folder of split files (its test split)")
    sc.add_argument("--predictions", type=Path, metavar="PREDS",
                    help="with --data: plain text, one prediction per line in the order of its rows "
                         "(a final newline is fine; a blank line is an empty prediction)")
    sc.add_argument("--field", action="append", default=[], metavar="NAME=COLUMN", dest="fields",
                    help="with --data: read a task field (or the column the preset expects) from another column, e.g. --field reference=mr")
    sc.add_argument("--rows", type=Path, metavar="OUT.jsonl",
                    help="write every row's verdicts and reason, one JSON object per line")
    sc.add_argument("--show-failures", type=int, default=0, metavar="N",
                    help="print the first N rows that are not correct (line, why, prediction, reference)")
    sc.add_argument("--json", action="store_true")

    st = sub.add_parser("study", help="compare backends and models on the same data and held-out split")
    st.add_argument("study", nargs="?", metavar="STUDY", help="pick up an earlier study (id, prefix or latest)")
    _data_arguments(st)
    st.add_argument("--backends", default=default_backend(),
                    help=f"comma-separated: {', '.join(backend_names())} (default: %(default)s)")
    st.add_argument("--models", default="", help="comma-separated backend:model (or bare models for one backend)")
    st.add_argument("--methods", default="", metavar="M,M,...",
                    help="one run per training method, the same split and settings otherwise ("
                         + "; ".join(f"{b}: {', '.join(backend(b).methods)}" for b in backend_names()
                                     if backend(b).methods) + "); base and k-shot are evaluated once")
    st.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="a sweep: one local run per combination of the values (repeatable: the cartesian "
                         "product); any local or eval setting, checked as --set checks it; the runs are "
                         "compared on their validation rows, and only the best is evaluated on the test split; a list "
                         "setting joins its items with + (target_modules=q_proj+v_proj,q_proj+k_proj+v_proj)")
    st.add_argument("--budget-minutes", type=float, metavar="N",
                    help="with --grid: launch no run that would end past N minutes of the sweep's training "
                         "and evaluation (estimated from its runs so far; the first always starts)")
    st.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                    help="settings for every run; local.KEY=... or openai.KEY=... for one backend")
    st.add_argument("--yes", action="store_true", help="openai: start even when the estimate is above budget_usd")
    st.add_argument("--out", type=Path, help="folder for table.md/json/csv (default: the study's folder)")
    st.add_argument("--detach", action="store_true",
                    help="return at once: the study goes on in the background (log: study.log in its folder)")
    st.add_argument("--json", action="store_true")

    rm = sub.add_parser("rm", help="remove runs (or studies) and everything in their folders")
    rm.add_argument("refs", nargs="+", metavar="RUN", help="id, unique prefix, or 'latest'; several at once")
    rm.add_argument("--study", action="store_true", help="the ids are studies: remove those (their runs stay)")

    from ftui.cli.predict import add_parser as add_predict

    add_predict(sub)

    pr = sub.add_parser("presets", help="list the shipped presets")
    pr.add_argument("--json", action="store_true")
    return p


def _settings_epilog() -> str:
    """The --set keys, per backend and for eval and split, and a few examples."""
    import dataclasses
    import textwrap

    from ftui.core.backends import settings_sections
    from ftui.core.config import EvalSettings, ReportSettings, SplitSpec

    sections = {**settings_sections(), "eval": EvalSettings, "split": SplitSpec, "report": ReportSettings}
    lines = ["settings (--set KEY=VALUE; unknown keys and bad values are refused before a run exists;",
             "max_steps=-1: the epochs decide; price_per_hour=None: the GPU's listed price, $0 on a CPU;",
             "lr_scheduler: linear, cosine or constant after warmup_steps (< 1: a fraction of the steps);",
             "early_stop_patience=N: stop when N validation passes (every eval_every steps) bring no lower",
             "loss, 0: never; keep_best: the result is the lowest validation loss's weights, not the last;",
             "report_to: experiment trackers, any of tensorboard,mlflow,wandb, for either backend;",
             "val_rows=N: each validation pass on N rows drawn once by the seed, 0 or all: every row):"]
    for name, cls in sections.items():
        keys = ", ".join(f"{f.name}={_default(f)}" for f in dataclasses.fields(cls))
        lines += textwrap.wrap(f"{name}: {keys}", width=100, initial_indent="  ", subsequent_indent="    ")
    lines += ["", "examples:", "  ftui train --preset demo",
              "  ftui train --preset spider --data ./spider-intersect/ --epochs 2 --set lora_r=16 --detach",
              "  ftui train --data mine.jsonl --task json --set max_steps=200 --set eval.limit=50",
              "  ftui train --preset demo --set report_to=tensorboard,mlflow"]
    return "\n".join(lines)


def _default(f) -> str:
    import dataclasses

    value = f.default if f.default is not dataclasses.MISSING else (
        f.default_factory() if f.default_factory is not dataclasses.MISSING else "")
    return ",".join(value) if isinstance(value, tuple) else str(value)


def _data_arguments(p: argparse.ArgumentParser) -> None:
    """Where the data comes from: the same flags for train, study and data check."""
    p.add_argument("--preset", help="a shipped preset (see `ftui presets`): task, prompt, splits, settings")
    p.add_argument("--data", type=Path, metavar="FILE|FOLDER",
                   help="a data file (JSONL, JSON list, CSV, Parquet) or a folder of split files "
                        "(train / validation|valid|val|dev / test, as names or suffixes); with --preset, "
                        "a local copy of the preset's dataset, read for its published splits")
    p.add_argument("--hub", action="store_true", help="with --preset: read its hub dataset, not its offline sample")
    p.add_argument("--task", help="task of --data without a preset: sql, funcrep, json, text (default text)")
    p.add_argument("--field", action="append", default=[], metavar="NAME=COLUMN", dest="fields",
                   help="read a task field (or the column the preset expects) from another column, "
                        "e.g. --field meaning_representation=mr --field target=ref; repeatable")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    if words and not words[0].startswith("-") and words[0] not in _HANDLERS and words[0] != "data":
        import difflib

        known = sorted({*(k.split()[0] for k in _HANDLERS)})
        close = difflib.get_close_matches(words[0], known, n=1)
        hint = f"; did you mean `ftui {close[0]}`?" if close else f"; commands: {', '.join(known)}"
        print(f"ftui: error: unknown command '{words[0]}'{hint}", file=sys.stderr)
        return EXIT_BAD_INPUT
    args = parser.parse_args(words)
    try:
        if args.command is None:
            from ftui.tui.app import run_app  # textual only for the TUI

            return run_app()
        handler = _HANDLERS[args.command if args.command != "data" else "data " + args.data_command]
        return handler(args)
    except FtuiError as exc:
        print(f"ftui: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ftui runs | head`
        return EXIT_OK


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def _cmd_train(args: argparse.Namespace) -> int:
    from ftui.core.backends import spend_gate
    from ftui.core.request import RunRequest, prepare_run, resolve_request
    from ftui.runner.launch import launch

    if args.preset is None and args.data is None:
        raise FtuiError("train: give --preset NAME, --data FILE|FOLDER, or both (a preset read from a local copy)")
    if args.max_steps is not None and args.max_steps < 1:
        raise FtuiError(f"--max-steps must be 1 or more, got {args.max_steps} (leave it out to let the epochs decide)")
    req = RunRequest(preset=args.preset, data=args.data, task=args.task, backend=args.backend,
                     model=args.model, epochs=args.epochs, max_steps=args.max_steps, overrides=args.overrides,
                     hub=args.hub, fields=tuple(args.fields))
    resolved = resolve_request(req)
    spend_gate(resolved, confirm=lambda question: args.yes or _confirm(question))  # asks before spending
    run = prepare_run(req, resolved)
    launch(run)
    return _after_launch(run, detach=args.detach, as_json=args.json, verb="started")


def _confirm(question: str) -> bool:
    """Ask on the terminal; without one (a script, a pipe) the answer is no."""
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _after_launch(run, *, detach: bool, as_json: bool, verb: str) -> int:
    from ftui.cli.follow import follow

    if detach:
        if as_json:
            _print_json(run.summary())
        else:
            print(f"{verb} run {run.id} (it keeps running after this terminal closes)\n"
                  f"  watch: ftui attach {run.id}\n  stop:  ftui cancel {run.id}")
        return EXIT_OK
    if not as_json:
        print(f"{verb} run {run.id}; Ctrl-C leaves it running (ftui attach {run.id} to come back)")
    try:
        state = follow(run, quiet=as_json)
    except KeyboardInterrupt:
        print(f"\ndetached; run {run.id} goes on", file=sys.stderr)
        return EXIT_OK
    if as_json:
        _print_json(run.summary())
    return EXIT_OK if state in ("succeeded", "cancelled") else EXIT_FAILED


def _cmd_eval(args: argparse.Namespace) -> int:
    from ftui.core.runs import resolve_run
    from ftui.core.runs import is_active
    from ftui.runner.launch import launch

    run = resolve_run(args.run)
    if is_active(run.status()["state"]):
        raise FtuiError(f"run {run.id} is still {run.status()['state']}; it evaluates when training ends")
    if args.limit is not None and args.limit < 1:
        raise FtuiError(f"--limit must be >= 1, got {args.limit}")
    has_adapter = run.finetuned_ready()
    if args.variant == "finetuned" and not has_adapter:
        raise FtuiError(f"run {run.id} has no fine-tuned model yet: train it first (ftui resume {run.id})")
    variants = [args.variant] if args.variant else ["base", "kshot"] + (["finetuned"] if has_adapter else [])
    heldout = ""
    if args.data is not None:
        from ftui.cli.commands import freeze_heldout

        heldout, n = freeze_heldout(run, args.data, fields=args.fields)
        print(f"held-out set '{heldout}': {n} examples from {args.data} (results in eval/VARIANT@{heldout}/)",
              file=sys.stderr)
    elif args.fields:
        raise FtuiError("--field maps the columns of --data; give the held-out file with --data")
    launch(run, eval_only=True, variants=variants, limit=args.limit, heldout=heldout)
    return _after_launch(run, detach=False, as_json=args.json, verb="evaluating")


def _cmd_attach(args: argparse.Namespace) -> int:
    from ftui.core.runs import resolve_run

    run = resolve_run(args.run)
    if not args.plain and sys.stdin.isatty() and sys.stdout.isatty():
        from ftui.tui.app import run_app  # textual only for the TUI

        return run_app(attach=run)
    from ftui.cli.follow import follow

    try:
        state = follow(run)
    except KeyboardInterrupt:
        return EXIT_OK
    print(f"run {run.id}: {state}")
    return EXIT_OK


def _cmd_try(args: argparse.Namespace) -> int:
    from ftui.core.errors import ConfigError
    from ftui.core.runs import resolve_run

    run = resolve_run(args.run)
    if not run.finetuned_ready():
        from ftui.core.playground import refusal

        raise ConfigError(refusal(run))
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ConfigError("ftui try opens the Playground in the TUI: run it in a terminal")
    from ftui.tui.app import run_app

    return run_app(playground=run)


def _cmd_resume(args: argparse.Namespace) -> int:
    from ftui.core.runs import resolve_run
    from ftui.core.runs import is_active
    from ftui.runner.launch import launch

    run = resolve_run(args.run)
    state = run.status()["state"]
    if is_active(state):
        raise FtuiError(f"run {run.id} is {state}, not stopped: nothing to resume (ftui attach {run.id})")
    if state == "succeeded":
        raise FtuiError(f"run {run.id} has succeeded: nothing to resume")
    launch(run, resume=True)
    return _after_launch(run, detach=args.detach, as_json=False, verb="resumed")


def _cmd_cancel(args: argparse.Namespace) -> int:
    from ftui.core.runs import resolve_run
    from ftui.core.runs import is_active
    from ftui.runner.launch import request_stop

    run = resolve_run(args.run)
    state = run.status()["state"]
    if not is_active(state):
        raise FtuiError(f"run {run.id} is {state}: nothing to cancel")
    if state == "queued":  # waiting for the machine's devices: it leaves the line, nothing loaded
        print(f"taking run {run.id} out of the queue...", file=sys.stderr)
    else:
        print(f"stopping run {run.id} after its current step...", file=sys.stderr)
    state = request_stop(run)
    print(f"run {run.id}: {state}")
    return EXIT_OK if state == "cancelled" else EXIT_FAILED


def _cmd_presets(args: argparse.Namespace) -> int:
    from ftui.cli.commands import presets_table

    rows = presets_table()
    if args.json:
        _print_json(rows)
        return EXIT_OK
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        rows = f"{r['rows']:>6} rows" if r["rows"] is not None else "   hub only"
        print(f"{r['name']:<{width}}  {r['task']:<8} {rows}  {r['title']}")
    return EXIT_OK


def _cmd_data_check(args: argparse.Namespace) -> int:
    from ftui.cli.commands import data_check, format_report
    from ftui.core.backends import backend

    if args.file is not None and args.data is not None:
        raise FtuiError(f"data check: give the data once, as FILE or --data (got {args.file} and {args.data})")
    data = args.file if args.file is not None else args.data
    facts = backend(args.backend)
    report = data_check(file=data, task=args.task, preset=args.preset, hub=args.hub,
                        model=facts.data_check_options.get("tokenizer", args.model), max_length=args.max_length,
                        fields=args.fields, overrides=args.overrides)
    from ftui.cli.commands import memory_fit

    fit = memory_fit(facts, preset=args.preset, model=args.model, overrides=args.overrides, report=report)
    pre = None
    if facts.spend_check is not None and report.ok and not report.issues:
        from ftui.cli.commands import spend_preflight

        pre = spend_preflight(facts, file=data, task=args.task, preset=args.preset, hub=args.hub,
                              model=args.model, overrides=args.overrides, fields=args.fields)
    if args.json:
        memory = None if fit is None else {
            "method": fit.method, "trainable_params": fit.trainable_params, "total_bytes": fit.total,
            "available_bytes": fit.available, "device": fit.device, "fits": fit.fits}
        _print_json({**report.to_dict(), **({facts.name: dict(pre.details)} if pre else {}),
                     **({"memory": memory} if memory else {})})
    else:
        print(format_report(report))
        if fit is not None:
            from ftui.core.machine import trainable_text

            print(f"  memory ({fit.method}, {trainable_text(fit.trainable_params, None)} trainable, "
                  f"batches of the longest example): " + "; ".join(fit.lines()))
        if pre:
            print(f"\n{facts.title}: pre-flight\n" + "\n".join("  " + line for line in pre.lines))
    if pre and pre.problems:
        if not args.json:
            print(f"ftui: error: {report.source}: {facts.title} would refuse this training data "
                  f"({len(pre.problems)} problem(s) listed above)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if report.issues:
        if not args.json:
            print(f"ftui: error: {report.source}: {len(report.issues)} bad row(s), listed above "
                  "by line; fix them or remove them.", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK if report.ok else EXIT_BAD_INPUT


def _cmd_score(args: argparse.Namespace) -> int:
    from ftui.cli.commands import format_failures, score_file
    from ftui.core.errors import ConfigError

    if args.show_failures < 0:
        raise ConfigError(f"--show-failures: expected a count of rows (0 or more), got {args.show_failures}")
    result = score_file(args.file, task=args.task, preset=args.preset, data=args.data,
                        predictions=args.predictions, fields=args.fields, rows=args.rows)
    summary = result.summary
    if args.json:
        _print_json(summary)
    else:
        print(f"{summary['task']}: {summary['n']} predictions")
        left_out = summary["n"] - summary["n_scorable"]
        if left_out:
            print(f"  {left_out} not scored: the reference query cannot run on its context; "
                  f"rates but valid are over the other {summary['n_scorable']}")
        for k, v in summary["metrics"].items():
            print(f"  {k:<20} {v:7.1%}")
        if "rows" in summary:
            print(f"every row: {summary['rows']}")
    if args.show_failures:
        # With --json, stdout holds the JSON document alone, so the rows go to stderr.
        print(format_failures(result.records, args.show_failures), file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK


def _cmd_runs(args: argparse.Namespace) -> int:
    from ftui.core.runs import list_runs

    rows = [r.summary() for r in list_runs()]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    if not rows:
        print("no runs yet: start one with `ftui train --preset demo` or the TUI (`ftui`).")
        return EXIT_OK
    from ftui.core.study import PRIMARY

    print(f"{'run':<36} {'status':<10} {'backend':<8} {'model':<24} results (the task's headline metric)")
    for r in sorted(rows, key=lambda r: (r["created"] or 0, r["id"]), reverse=True):  # newest first, as the Runs screen
        key = PRIMARY.get(r["task"] or "", "exact")
        results = ", ".join(f"{v} {key} {m.get(key, 0):.0%}" for v, m in r["eval"].items())
        if r["queue"] is not None:  # waiting for the machine's devices: where it stands instead
            results = r["message"]
        print(f"{r['id']:<36} {r['status']:<10} {r['backend'] or '':<8} {r['model'] or '':<24} {results}")
    return EXIT_OK


def _cmd_show(args: argparse.Namespace) -> int:
    from ftui.core.early_stopping import describe
    from ftui.core.machine import trainable_text
    from ftui.core.runs import resolve_run

    run = resolve_run(args.run)
    info = run.summary()
    if args.json:
        _print_json(info)
        return EXIT_OK
    lines = {"trainable_params": ("trainable", lambda v: trainable_text(v, info["total_params"])),
             "peak_mem_bytes": ("peak memory", lambda v: f"{v / 2**30:.2f} GiB"),
             "peak_rss": ("peak RSS", lambda v: f"{v / 2**30:.2f} GiB (the training process's resident memory)")}
    for k, v in info.items():
        if k in ("created", "ended") and isinstance(v, (int, float)):
            v = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(v))  # --json keeps the timestamp
        if k in ("preset", "method") and v is None:
            continue  # a run on a file has no preset (its data line says where the rows came from)
        if k in lines:  # a line of its own, under another name, when the run has the value
            if v is not None:
                label, text = lines[k]
                print(f"{label:<12} {text(v)}")
            continue
        if k == "tokens_per_s":
            if v:  # (an OpenAI job's replayed steps carry no rate: 0)
                print(f"{'speed':<12} {_speed_text(v, info['mfu'], run)}")
            continue
        if k == "val_rows":
            if v is not None:
                from ftui.core.validation import describe as describe_val

                print(f"{'val rows':<12} {describe_val(v, info['val_split_rows'])} each pass")
            continue
        if k in ("mfu", "val_split_rows"):
            continue  # on the speed and val rows lines
        if k == "duration_s":
            print(f"{'time':<12} {_time_text(info)}")
            continue
        if k in ("train_s", "eval_s"):
            continue  # on the time line
        if k == "stopped_early_at":  # one line with kept_step and best_val_loss
            note = describe(stopped_early_at=v, kept_step=info["kept_step"], best_loss=info["best_val_loss"],
                            patience=getattr(run.spec.hyperparameters, "early_stop_patience", 0))
            if note:
                print(f"{'validation':<12} {note}")
            continue
        if k in ("kept_step", "best_val_loss"):
            continue  # on the validation line
        if k == "status" and info["queue"] is not None:  # "queued, 2nd in line behind RUN, for cpu"
            print(f"{k:<12} {v}, {info['message']}")
            continue
        if k == "message" and info["queue"] is not None or k in ("queue", "threads"):
            continue  # on the status and devices lines
        if k == "devices":
            if v is not None:
                threads = info["threads"]
                print(f"{k:<12} {v}" + (f", {threads} compute thread{'s' if threads != 1 else ''}"
                                        if threads else ""))
            continue
        if k == "report_to":
            from ftui.core.trackers import destinations

            where = destinations(run.dir, v)
            lines = [f"{name}: {place}" for name, place in where.items()] or ["none"]
            print(f"{'report to':<12} " + f"\n{'':<12} ".join(lines))
            continue
        if k not in ("eval", "eval_progress", "total_params"):
            print(f"{k:<12} {'' if v is None else v}")
    spec = run.spec
    sizes = ", ".join(f"{k} {v}" for k, v in spec.split_sizes.items())
    print(f"{'data':<12} {spec.data.source} ({spec.data.used} examples; split {sizes})")
    print(f"{'settings':<12} " + " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                                          for k, v in spec.used_settings().items()))
    unrecorded = [k for k in spec.unrecorded_settings if k not in ("model", *spec.unused_settings())]
    if unrecorded:  # made before these existed: today's defaults are not what it ran with
        print(f"{'':<12} not set (older run): {', '.join(unrecorded)}")
    for label, path in run.where():  # where the model is: trained weights, model exports
        print(f"{label:<12} {path}")
    for variant, metrics in info["eval"].items():
        print(f"eval {variant}: " + ", ".join(f"{k} {v:.1%}" for k, v in metrics.items()))
    if info["eval_progress"] is not None:
        from ftui.cli.follow import eval_progress_line

        print(eval_progress_line(info["eval_progress"]))
    return EXIT_OK


def _speed_text(tokens_per_s: float, mfu: float | None, run: Any) -> str:
    """``1,234 tok/s, MFU 41.2% (NVIDIA H100 80GB HBM3, 989 TFLOP/s bf16 peak)``; tok/s alone on a
    CPU or a GPU without a known peak."""
    from ftui.core.events import read_events
    from ftui.core.mfu import gpu_peak_flops, mfu_text

    text = f"{tokens_per_s:,.0f} tok/s"
    if mfu is None:
        return text
    hw = [e for e in read_events(run.events_path) if e["type"] == "hw"]
    name = hw[-1].get("gpu_name") if hw else None
    peak = gpu_peak_flops(name)
    processes = (hw[-1].get("processes") or 1) if hw else 1
    per = f"{processes} x " if processes > 1 else ""
    return f"{text}, {mfu_text(mfu)} of {per}{name}'s {peak / 1e12:,.0f} TFLOP/s bf16 peak" if peak else text


def _time_text(info: dict) -> str:
    """``training 4m 12s, evaluation 1m 30s (38m 02s from created to ended, pauses included)``."""
    from ftui.tui.fmt import duration  # a pure module: no Textual is loaded

    if info["train_s"] is None:
        work = "no runner has worked on it yet"
    else:
        work = f"training {duration(info['train_s'])}" + (
            f", evaluation {duration(info['eval_s'])}" if info["eval_s"] else "")
    if info["duration_s"] is None:
        return work
    return f"{work} ({duration(info['duration_s'])} from created to ended, pauses included)"


def _cmd_export(args: argparse.Namespace) -> int:
    from ftui.core.export import export
    from ftui.core.runs import resolve_run

    if args.model and args.format:
        raise FtuiError("export: --format writes the summary, --model the trained model; give one of them")
    if args.gguf_types and args.model != "gguf":
        raise FtuiError("export: --gguf-type goes with --model gguf")
    run = resolve_run(args.run)
    if args.model:
        return _export_model(run, args.model, out=args.out, gguf_types=args.gguf_types or ["f16"])
    for path in export(run, fmt=args.format, out=args.out):
        print(path)
    return EXIT_OK


def _export_model(run: Any, kind: str, *, out: Path | None, gguf_types: list[str]) -> int:
    """``ftui export RUN --model KIND``: the backend writes it; the paths on stdout, sizes and time on stderr."""
    from ftui.backends.base import load_backend
    from ftui.runner.quiet import quiet_libraries

    quiet_libraries()  # the libraries' deprecation warnings are not the user's business here
    impl = load_backend(run.spec.backend)
    if not hasattr(impl, "export_model"):
        raise FtuiError(f"run {run.id}: backend {run.spec.backend} cannot export a model")
    print(f"exporting run {run.id} as {kind}"
          + (f" ({', '.join(gguf_types)})" if kind == "gguf" else "") + "…", file=sys.stderr)
    began = time.perf_counter()
    written = impl.export_model(run, kind, out=out, gguf_types=gguf_types)
    for path in written:
        print(path)
    size = sum(p.stat().st_size for p in written if p.is_file())
    folder = written[0].parent if written else out
    print(f"wrote {kind} to {folder}: {len(written)} file(s), {size / 2**20:.1f} MiB in "
          f"{time.perf_counter() - began:.1f} s; README.md says how to load and serve it", file=sys.stderr)
    return EXIT_OK


def _cmd_study(args: argparse.Namespace) -> int:
    from ftui.core.study import export_study, render_text, resolve_study, study_table
    from ftui.runner.study_driver import detach_study, run_study, start_study

    if args.study:
        if args.preset or args.data:
            raise FtuiError("study: give STUDY to pick one up, or --preset/--data to start one, not both")
        if args.grid or args.budget_minutes is not None:
            raise FtuiError("study STUDY picks a study up as it was made: --grid and --budget-minutes start a new one")
        study = resolve_study(args.study)
    elif args.preset or args.data:
        study = start_study(preset=args.preset, data=args.data, task=args.task, hub=args.hub,
                            fields=args.fields,
                            backends=[b.strip() for b in args.backends.split(",") if b.strip()],
                            models=[m.strip() for m in args.models.split(",") if m.strip()],
                            methods=[m.strip() for m in args.methods.split(",") if m.strip()],
                            grid=args.grid, budget_minutes=args.budget_minutes,
                            overrides=args.overrides,
                            confirm=lambda q: args.yes or _confirm(q))
    else:
        raise FtuiError("study: give --preset NAME (or --data FILE) to start one, or STUDY to pick one up")
    if args.detach:
        pid = detach_study(study, out=args.out)
        if args.json:
            _print_json({"id": study.id, "dir": str(study.dir), "runs": study.info["runs"], "pid": pid})
        else:
            print(study.id)
            print(f"study {study.id}: {len(study.runs())} run(s) go on in the background (log: "
                  f"{study.dir / 'study.log'}); `ftui study {study.id}` waits for them", file=sys.stderr)
        return EXIT_OK
    print(f"study {study.id}: {len(study.runs())} run(s); Ctrl-C stops waiting, not the runs "
          f"(ftui study {study.id} picks it up again)", file=sys.stderr)
    try:
        states = run_study(study)
    except KeyboardInterrupt:
        print(f"\nstopped waiting; the runs go on: ftui study {study.id}", file=sys.stderr)
        return EXIT_OK
    paths = export_study(study, out=args.out)
    data = study_table(study)
    if args.json:
        _print_json({"id": study.id, "dir": str(study.dir), "states": states, **data})
    else:
        print(render_text(data))
        for path in paths:
            print(path)
    skipped = study.sweep.skipped if study.sweep else {}  # left out by the budget, as asked
    return EXIT_OK if all(s == "succeeded" for r, s in states.items() if r not in skipped) else EXIT_FAILED


def _cmd_predict(args: argparse.Namespace) -> int:
    from ftui.cli.predict import cmd_predict

    return cmd_predict(args)


def _cmd_rm(args: argparse.Namespace) -> int:
    from ftui.core.runs import delete_run, refuse_removal, resolve_run
    from ftui.core.study import delete_study, resolve_study

    # Every reference is checked before anything is removed: a typo removes nothing.
    if args.study:
        studies = [resolve_study(ref) for ref in args.refs]
        for study in studies:
            delete_study(study)
            print(f"removed study {study.id}")
        return EXIT_OK
    runs = [resolve_run(ref) for ref in args.refs]
    for run in runs:
        refuse_removal(run)
    for run in runs:
        delete_run(run)
        print(f"removed run {run.id}")
    return EXIT_OK


_HANDLERS = {
    "train": _cmd_train,
    "eval": _cmd_eval,
    "attach": _cmd_attach,
    "try": _cmd_try,
    "resume": _cmd_resume,
    "cancel": _cmd_cancel,
    "runs": _cmd_runs,
    "show": _cmd_show,
    "export": _cmd_export,
    "data check": _cmd_data_check,
    "score": _cmd_score,
    "presets": _cmd_presets,
    "rm": _cmd_rm,
    "study": _cmd_study,
    "predict": _cmd_predict,
}


if __name__ == "__main__":
    raise SystemExit(main())
