"""Studies in the TUI: start one (a modal), pick an earlier one, and the Study screen.

A study starts through ``Services.start_study`` (``ftui study ... --detach``): its checks and
the driver that launches the runs live outside this process, like a run's runner. The Study
screen reads the runs' directories and builds the same table as ``ftui study`` (core only).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Checkbox, DataTable, Header, Input, Label, Select, Static

from ftui.core.backends import backend, backend_names, default_backend
from ftui.core.errors import FtuiError
from ftui.core.runs import Run, is_active
from ftui.core.study import (Study, by_method, export_study, list_studies, method_of, params, rate, size,
                             study_table, variant_label)
from ftui.core.sweep import grid_items, plot_axis, render_sweep_text
from ftui.tui import fmt
from ftui.tui.screens.modals import ConfirmModal
from ftui.tui.screens.training import state_text
from ftui.tui.widgets.keys import key_footer
from ftui.tui.widgets.run_table import RunTable
from ftui.tui.widgets.sweep_chart import SweepChart
from ftui.tui.widgets.tick import TickBox

CHART_MIN_HEIGHT = 36
"""Terminal rows below which the sweep's chart stays hidden: the table and its runs come first."""

REFRESH_S = 3.0
"""How often the Study screen re-reads its runs while one of them is still working."""


def states_line(states: Sequence[str]) -> str:
    """``2 succeeded · 1 running``: how many runs are in each state, most first."""
    return " · ".join(f"{n} {state}" for state, n in Counter(states).most_common()) or "no runs"


def training_methods() -> dict[str, str]:
    """Every registered backend's training methods (name -> one line), in registry order."""
    return {m: why for b in backend_names() for m, why in backend(b).methods.items()}


def preset_method(name: str) -> str | None:
    """The method a preset's runs train by without ``--methods`` (its first backend with methods)."""
    from ftui.core.presets import load_preset

    try:
        preset = load_preset(name)
    except (FtuiError, OSError):
        return None
    return next((getattr(preset.settings_for(b), "method", None) for b in backend_names() if backend(b).methods),
                None)


class StartStudyModal(ModalScreen["str | None"]):
    """Preset, backends, methods, models and settings of a new study; dismisses with its id."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "start", "Start")]

    def __init__(self, preset: str) -> None:
        super().__init__()
        self.preset = preset

    def compose(self) -> ComposeResult:
        from ftui.core.presets import preset_names

        names = preset_names()
        key = "; ".join(f.readiness() for f in map(backend, backend_names()) if f.readiness is not None)
        with Vertical(classes="dialog", id="study-dialog"):
            yield Label("Start a study: a run per backend, model and method, same held-out split",
                        classes="dialog-title")
            with Horizontal(classes="row"):
                yield Label("preset", classes="label")
                yield Select([(n, n) for n in names], value=self.preset if self.preset in names else names[0],
                             allow_blank=False, id="study-preset", compact=True)
            with Horizontal(classes="row"):
                yield Label("backends", classes="label")
                for name in backend_names():
                    yield TickBox(name, name == default_backend(), id=f"study-{name}", compact=True)
            yield Static(key, classes="hint", id="study-key")
            if training_methods():
                own = preset_method(self.preset if self.preset in names else names[0])
                with Horizontal(classes="row"):
                    yield Label("methods", classes="label")
                    for name, why in training_methods().items():
                        box = TickBox(name, name == own, id=f"study-method-{name}", compact=True)
                        box.tooltip = why
                        yield box
            with Horizontal(classes="row"):
                yield Label("models", classes="label")
                yield Input(placeholder="preset defaults, or local:MODEL,openai:MODEL", id="study-models",
                            compact=True)
            with Horizontal(classes="row"):
                yield Label("settings", classes="label")
                yield Input(placeholder="KEY=VALUE ..., e.g. local.max_steps=50 eval.limit=20", id="study-set",
                            compact=True)
            with Horizontal(classes="row"):
                yield Label("sweep grid", classes="label")
                yield Input(placeholder="e.g. learning_rate=2e-4,5e-4; lora_r=8,32", id="study-grid", compact=True)
                yield Label(" budget ", id="study-budget-label")
                yield Input(placeholder="minutes", id="study-budget", compact=True)
            yield Static("Local runs go one at a time, OpenAI at once; all go on after ftui quits.\n"
                         "OpenAI cost estimate: ftui data check --preset NAME --backend openai",
                         classes="hint", id="study-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start", variant="primary", id="study-start", compact=True)
                yield Button("Cancel", id="study-cancel", compact=True)
            yield Static("", id="study-error")
        yield key_footer()

    def on_mount(self) -> None:
        self.query_one("#study-preset", Select).focus()

    def _methods(self, preset: str, backends: Sequence[str]) -> list[str] | None:
        """The methods ticked, for ``--methods``: none when no chosen backend has methods or only
        the preset's own is ticked (its runs train by it anyway); None when none is ticked."""
        if not any(backend(b).methods for b in backends):
            return []
        ticked = [m for m in training_methods() if self.query_one(f"#study-method-{m}", Checkbox).value]
        if not ticked:
            return None
        return [] if ticked == [preset_method(preset)] else ticked

    def _say(self, text: str, *, error: bool = False) -> None:
        message = self.query_one("#study-error", Static)
        message.update(text)
        message.set_class(error, "error")

    @on(Input.Submitted)
    @on(Button.Pressed, "#study-start")
    def action_start(self) -> None:
        preset = str(self.query_one("#study-preset", Select).value)
        backends = [b for b in backend_names() if self.query_one(f"#study-{b}", Checkbox).value]
        if not backends:
            self._say(f"choose one or more of {', '.join(backend_names())}", error=True)
            return
        methods = self._methods(preset, backends)
        if methods is None:
            self._say(f"choose one or more methods: {', '.join(training_methods())}", error=True)
            return
        models = self.query_one("#study-models", Input).value.replace(",", " ").split()
        overrides = self.query_one("#study-set", Input).value.split()
        sweep: dict[str, Any] = {}  # only when asked for: a sweep (ftui study --grid, --budget-minutes)
        grid = grid_items(self.query_one("#study-grid", Input).value)
        budget = self.query_one("#study-budget", Input).value.strip()
        if grid:
            sweep["grid"] = grid
        if budget:
            try:
                sweep["budget_minutes"] = float(budget)
            except ValueError:
                self._say(f"budget: minutes, e.g. 15; got {budget!r}", error=True)
                return
        spending = [b for b in backends if backend(b).spend_check is not None]
        if not spending:
            self._start(preset, backends, models, methods, overrides, yes=False, **sweep)
            return

        def answered(ok: bool | None) -> None:
            if ok:  # the CLI's budget question, answered here: --yes
                self._start(preset, backends, models, methods, overrides, yes=True, **sweep)

        which = ", ".join(backend(b).title for b in spending)
        self.app.push_screen(ConfirmModal(
            f"This study may spend money on {which}: fine-tuning and evaluation are billed to your account "
            f"(estimate: `ftui data check --preset {preset} --backend {spending[0]}`). Start it?",
            yes=f"Start, spend on {which}", no="Go back"), answered)

    def _start(self, preset: str, backends: list[str], models: list[str], methods: list[str],
               overrides: list[str], *, yes: bool, **sweep: Any) -> None:
        self._say("checking the settings and creating the runs…")
        self.query_one("#study-start", Button).disabled = True
        self._run_start(preset=preset, backends=backends, models=models, methods=methods, overrides=overrides,
                        yes=yes, **sweep)

    @work(thread=True, exclusive=True, exit_on_error=False, group="start-study")
    def _run_start(self, **kwargs: Any) -> None:
        try:
            started = self.app.services.start_study(**kwargs)
        except (FtuiError, OSError) as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self._started, str(started["id"]))

    def _started(self, study_id: str) -> None:
        if self.app.screen is self:
            self.dismiss(study_id)
        else:  # closed while it was starting: the study goes on all the same
            self.app.notify(f"study {study_id} started; T on the Runs screen lists it", title="Study")

    def _failed(self, message: str) -> None:
        if self.is_attached:
            self._say(f"not started: {message}", error=True)
            self.query_one("#study-start", Button).disabled = False
        else:
            self.app.notify(f"study not started: {message}", severity="error")

    @on(Button.Pressed, "#study-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class StudiesModal(ModalScreen["str | None"]):
    """Earlier studies, newest first; enter opens one."""

    BINDINGS = [Binding("enter", "open", "Open", priority=True), Binding("escape", "cancel", "Close")]
    LIMIT = 30

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Studies, newest first", classes="dialog-title")
            yield DataTable(id="studies", cursor_type="row", zebra_stripes=True)
            yield Static("", id="studies-note", classes="hint")
        yield key_footer()

    def on_mount(self) -> None:
        table = self.query_one("#studies", DataTable)
        for name in ("study", "preset", "runs", "states"):
            table.add_column(name, key=name)
        table.focus()
        self._scan()

    @work(thread=True, exclusive=True, exit_on_error=False, group="studies")
    def _scan(self) -> None:
        rows = []
        for study in reversed(list_studies()[-self.LIMIT:]):
            try:
                info, runs = study.info, study.runs()
                rows.append((study.id, str(info.get("preset") or "—"), str(len(runs)),
                             states_line([r.status().get("state", "queued") for r in runs])))
            except (OSError, ValueError, KeyError):
                continue  # half-written or hand-edited: leave it out
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[tuple[str, str, str, str]]) -> None:
        table = self.query_one("#studies", DataTable)
        for row in rows:
            table.add_row(*row, key=row[0])
        self.query_one("#studies-note", Static).update(
            f"{len(rows)} {'study' if len(rows) == 1 else 'studies'}" if rows else
            "No studies yet: S on the Runs screen starts one, or `ftui study --preset demo --detach`.")

    @on(DataTable.RowSelected, "#studies")
    def action_open(self) -> None:
        table = self.query_one("#studies", DataTable)
        if table.row_count:
            self.dismiss(str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value))

    def action_cancel(self) -> None:
        self.dismiss(None)


class StudyScreen(Screen):
    """One study: the comparison table (as ``ftui study`` writes it) and its runs' states."""

    BINDINGS = [
        Binding("enter", "open", "Open", show=False, priority=True),
        Binding("o", "open", "Open run"),
        Binding("w", "write", "Write table"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, study: Study) -> None:
        super().__init__()
        self.study = study
        self.runs: list[Run] = []
        self.data: dict[str, Any] | None = None
        self.active = True
        self.written: list[Path] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"study {self.study.id}", id="study-head")
        sweep = Static("", id="study-sweep")
        sweep.display = False  # a sweep's runs by their validation metric, once it is one
        yield sweep
        chart = SweepChart(id="study-chart")
        chart.display = False  # where a swept setting has values enough for a trend
        yield chart
        yield RunTable(id="study-table", on_choose=self.action_open)
        yield Static("", id="study-runs")
        yield Static("", id="study-note")
        yield key_footer()

    def on_mount(self) -> None:
        self.sub_title = "study"
        self.query_one("#study-table", RunTable).focus()
        self._load()
        self.set_interval(REFRESH_S, self._tick)

    def on_screen_resume(self) -> None:
        self._load()

    def _tick(self) -> None:
        if self.is_current and self.active:
            self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="study")
    def _load(self) -> None:
        preset = self.study.info.get("preset")
        runs = self.study.runs()
        infos = {r.id: r.summary() for r in runs}
        data = study_table(self.study)
        self.app.call_from_thread(self._show, preset, runs, data, infos)

    def _show(self, preset: str | None, runs: list[Run], data: dict[str, Any],
              infos: Mapping[str, Mapping[str, Any]]) -> None:
        self.runs, self.data = runs, data
        self.active = any(is_active(i["status"]) for i in infos.values())
        self.query_one("#study-head", Static).update(Text.assemble(
            (f"study {self.study.id}", "bold"), f" · {preset or data['task'] or 'custom data'} · "
            f"{states_line([i['status'] for i in infos.values()])}"))
        self._fill_table(data, infos)
        if data.get("sweep"):  # fills as the runs end: their validation metric, best first
            panel = self.query_one("#study-sweep", Static)
            panel.update(Text("\n", no_wrap=True).join(Text(line) for line in render_sweep_text(data["sweep"])))
            panel.display = True
            axis = plot_axis(data["sweep"]) if self.size.height >= CHART_MIN_HEIGHT else None
            chart = self.query_one("#study-chart", SweepChart)
            chart.display = axis is not None
            if axis is not None:
                chart.show(axis[0], data["sweep"]["metric"], axis[1])
        lines = []
        method = {r.id: method_of(r) for r in runs} if by_method(data) else {}
        for rid, i in infos.items():  # one line each at 80 columns: state, backend, model, step, id
            state = state_text(i["status"])
            state.pad_right(10 - len(state))
            step = f"{i['step']}/{i['total_steps']}" if i.get("step") else ""
            model = f"{fmt.short(str(i['model'] or ''), 22):<22}"
            if rid in method:  # a study of methods: which one this run trains by
                model = f"{fmt.short(str(i['model'] or ''), 13):<13} {method[rid] or '':<6}"
            lines.append(Text.assemble(state, f" {i['backend'] or '':<6} {model} "
                                       f"{step:>7}  ", (rid, "dim"), no_wrap=True, overflow="ellipsis"))
        self.query_one("#study-runs", Static).update(Text("\n", no_wrap=True).join(lines))
        self.primary = data["primary_metric"]
        self._note()

    @on(RunTable.ColumnsRefitted, "#study-table")
    def _note(self, event: RunTable.ColumnsRefitted | None = None) -> None:
        if self.written is not None or not getattr(self, "primary", None):
            return
        left_out = self.query_one("#study-table", RunTable).left_out
        self.query_one("#study-note", Static).update(
            f"most accurate by {self.primary}; cheapest by training cost + evaluating 1,000 examples. "
            + (f"{', '.join(left_out)}: in a wider terminal. " if left_out else "")
            + "w writes table.md, .json, .csv; o opens a run")

    def _fill_table(self, data: Mapping[str, Any], infos: Mapping[str, Mapping[str, Any]]) -> None:
        primary = data["primary_metric"]
        keys = [primary, *[k for k in data["metric_keys"] if k != primary]] if primary in data["metric_keys"] \
            else list(data["metric_keys"])
        # A study of methods names each fine-tuned row by its method and shows what its training took.
        methods = by_method(data)
        footprint = ["trainable", "peak mem", "tok/s", "saved"] if methods else []
        columns = ["backend", "model", "variant", *[fmt.METRIC_LABELS.get(k, k) for k in keys], "",
                   "train", *footprint, "train $", "eval $/1k"]
        rows: list[tuple[str, list[Any]]] = []
        for r in data["rows"]:
            marks = Text(" ").join(Text(mark, style=style) for mark, style, on_ in (
                ("best", "bold green", r.get("most_accurate")), ("cheapest", "bold cyan", r.get("cheapest"))) if on_)
            tuned = r["variant"] == "finetuned"  # base and k-shot need no training
            took = [params(r), size(r["peak_mem_bytes"]), rate(r["tokens_per_s"]), size(r["saved_bytes"])]
            rows.append((f"{r['run']}/{r['variant']}", [
                r["backend"] or "", fmt.short(r["model"] or "", 16), variant_label(r, data),
                *[fmt.pct(r["metrics"].get(k)) for k in keys], marks,
                fmt.duration(r["training_s"]) if tuned else "",
                *([x if x != "-" else "—" for x in took] if tuned else [""] * 4)[:len(footprint)],
                fmt.money(r["training_usd"], digits=4) if tuned else "",
                fmt.money(r["eval_usd_per_1k"], digits=4)]))
        shown = {r["run"] for r in data["rows"] if r["variant"] == "finetuned" or not methods}
        method = {r.id: method_of(r) for r in self.runs} if methods else {}
        for rid, info in infos.items():  # not in the table yet: one row with its state, so it can be opened
            if rid not in shown:
                label = method.get(rid)
                rows.append((f"{rid}/", [info["backend"] or "", fmt.short(str(info["model"] or ""), 16),
                                         Text.assemble(f"{label} ", state_text(info["status"])) if label else
                                         state_text(info["status"]), *["—"] * len(keys), "", "", *[""] * len(footprint),
                                         "", ""]))
        if methods:  # one backend or one model throughout: the run lines below name it, the columns need not
            drop = {i for i, name in enumerate(columns[:2]) if len({str(cells[i]) for _, cells in rows}) == 1}
            columns = [c for i, c in enumerate(columns) if i not in drop]
            rows = [(key, [c for i, c in enumerate(cells) if i not in drop]) for key, cells in rows]
        # The table never scrolls sideways: at 80 columns the less wanted ones are left out (the
        # note names them), most wanted first in ``optional``.
        metric_labels = [fmt.METRIC_LABELS.get(k, k) for k in keys]
        footprint_first = ["train", "trainable", "peak mem", "tok/s", "saved"]  # a study of methods is about these
        optional = ([*footprint_first, *metric_labels[1:]] if methods else ["train", *metric_labels[1:]]) \
            + ["eval $/1k", "train $"]
        self.query_one("#study-table", RunTable).show([(name, name or "marks") for name in columns], rows,
                                                      optional=[c for c in optional if c in columns])

    def selected(self) -> Run | None:
        key = self.query_one("#study-table", RunTable).selected_key()
        return None if key is None else next((r for r in self.runs if r.id == key.split("/")[0]), None)

    def action_open(self) -> None:
        run = self.selected()
        if run is not None:
            self.app.open_run(run)

    def action_write(self) -> None:
        self._write()

    @work(thread=True, exclusive=True, exit_on_error=False, group="study-write")
    def _write(self) -> None:
        try:
            paths = export_study(self.study)
        except (OSError, FtuiError) as exc:
            self.app.call_from_thread(self.notify, f"could not write the table: {exc}", severity="error")
            return
        self.app.call_from_thread(self._written, paths)

    def _written(self, paths: list[Path]) -> None:
        self.written = paths
        self.query_one("#study-note", Static).update(
            f"wrote {paths[0].parent}/: " + ", ".join(p.name for p in paths))
        self.notify(f"wrote {', '.join(p.name for p in paths)}", title="Study")

    def action_back(self) -> None:
        self.app.go_back()
