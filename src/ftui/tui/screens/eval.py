"""Eval screen: metrics per variant with deltas from base, then one held-out example at a time.

The screen follows its run: while the run evaluates, the line under the header says which
variant is generating, and each variant joins the table and the examples when its ``eval``
event arrives (the runner writes the variant's metrics.json before the event).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from ftui.core.progress import RunProgress
from ftui.core.runs import Run, is_active
from ftui.core.scoring import VARIANTS, count_text, read_predictions
from ftui.tui.widgets.keys import key_footer
from ftui.tui import fmt
from ftui.tui.messages import RunEventsReceived, RunStatusChanged
from ftui.tui.screens.export import ExportModal
from ftui.tui.screens.modals import PromptModal
from ftui.tui.screens.training import state_text
from ftui.tui.watcher import follow
from ftui.tui.widgets.flow_header import FlowHeader
from ftui.tui.widgets.render import Flow, is_correct, is_scorable, render_example

FILTERS = {None: "all examples", "failures": "failures only", "invalid": "invalid only"}


class EvalData:
    """A run's eval records joined by held-out index, and the summary per variant."""

    def __init__(self, run: Run) -> None:
        self.metrics = run.eval_metrics()
        order = [v for v in VARIANTS if v in self.metrics] + sorted(set(self.metrics) - set(VARIANTS))
        self.variants: list[str] = order
        self.rows: dict[int, dict[str, dict[str, Any]]] = {}
        for v in order:
            for rec in read_predictions(run.dir, v):
                self.rows.setdefault(int(rec.get("index", len(self.rows))), {})[v] = rec
        self.indices = sorted(self.rows)
        self.task = run.spec.task

    def default_variant(self) -> str:
        """The variant shown until ``v`` picks one: the fine-tuned model once it is evaluated."""
        return "finetuned" if "finetuned" in self.variants else (self.variants[-1] if self.variants else "")


def generating_parts(progress: dict[str, Any] | None) -> list[Text]:
    """``generating kshot 16/568 · 0.8 examples/s · ETA 11m 30s`` (from an ``eval_progress`` event)."""
    if progress is None:
        return [Text("evaluating", style="bold cyan")]
    done, total = progress["done"], progress["total"]
    parts = [Text(f"generating {progress['variant']} {done}/{total}", style="bold cyan")]
    if progress.get("examples_per_s"):
        parts.append(Text(fmt.rate(progress["examples_per_s"], "examples")))
    if done < total and progress.get("eta_s") is not None:
        parts.append(Text(f"ETA {fmt.duration(progress['eta_s'])}", style="bold"))
    return parts


class EvalScreen(Screen):
    """Step 4: how the base, k-shot and fine-tuned variants did on the held-out examples."""

    BINDINGS = [
        # priority: the example view would take the arrows to scroll sideways and line by line
        Binding("right,l,n", "move(1)", "example", key_display="←→", priority=True),
        Binding("left,h,p", "move(-1)", "previous example", show=False, priority=True),
        Binding("down,j", "scroll_example(1)", "scroll", key_display="↑↓", priority=True),
        Binding("up,k", "scroll_example(-1)", "scroll up", show=False, priority=True),
        Binding("f", "filter('failures')", "fail"),
        Binding("i", "filter('invalid')", "invalid"),
        Binding("slash", "search", "find", key_display="/"),
        Binding("g", "goto", "goto", show=False),  # the footer's room at 80 columns went to scrolling
        Binding("v", "switch_variant", "variant"),
        Binding("x", "export", "export"),
        Binding("t", "try", "try", show=False),  # no room at 80 columns: the line under the header names it
        Binding("home", "first", "first", show=False),
        Binding("end", "last", "last", show=False),
        Binding("escape", "back", "back", show=False),
    ]

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self.data: EvalData | None = None
        self.variant = ""
        self.variant_chosen = False
        """``v`` was pressed: keep that variant when new ones arrive (else follow the default)."""
        self.filter: str | None = None
        self.search = ""
        self.matching: list[int] = []
        self.position = 0
        self.status: dict[str, Any] = {}
        self.progress = RunProgress()

    def compose(self) -> ComposeResult:
        yield FlowHeader("evaluation")
        yield Static(id="eval-head")
        yield DataTable(id="summary", cursor_type="none", show_cursor=False)
        yield Static(id="position")
        with VerticalScroll(id="example-view"):
            yield Static(id="example-body")
        yield key_footer()

    def on_mount(self) -> None:
        self.query_one("#summary", DataTable).can_focus = False
        self.query_one("#example-view").focus()
        self.query_one("#position", Static).update(Text("loading eval records…", style="dim"))
        self._render_head()
        self._load()
        self._watch()

    # -- loading and following the run (worker threads) ----------------------------------
    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self) -> None:
        worker = get_current_worker()
        data = EvalData(self.run)
        if not worker.is_cancelled:  # a newer load (a variant that just finished) supersedes it
            self.app.call_from_thread(self._loaded, data)

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def _watch(self) -> None:
        worker = get_current_worker()
        follow(self.run, self.post_message, poll_s=self.app.services.poll_s, cancelled=lambda: worker.is_cancelled)

    @on(RunEventsReceived)
    def _events(self, message: RunEventsReceived) -> None:
        if message.reset:
            self.progress.reset()
        self.progress.apply(message.events)
        # A variant finished (its metrics.json is on disk), or a re-evaluation rewrote one. The
        # first batch replays the file, so opening the screen reads the records twice: the read
        # started in on_mount can have missed a variant that finished a moment before.
        if message.reset or any(e["type"] == "eval" for e in message.events):
            self._load()
        self._render_head()

    @on(RunStatusChanged)
    def _status(self, message: RunStatusChanged) -> None:
        self.status = message.status
        self._render_head()
        if self.data is not None and not self.data.indices:
            self._render_example()  # the empty-screen message depends on whether the run works

    def _loaded(self, data: EvalData) -> None:
        current, shown_first = self._current(), self.variant
        self.data = data
        if not self.variant_chosen or self.variant not in data.variants:
            self.variant = data.default_variant()
        self._render_summary()
        # The example stays, scrolled where the reader left it, unless the variant on top changed
        # (the fine-tuned one arrived).
        self._refilter(keep=current, scroll_home=self.variant != shown_first)

    def _active(self) -> bool:
        return is_active(self.status.get("state", "succeeded"))

    # -- the line under the header -------------------------------------------------------
    def _render_head(self) -> None:
        spec = self.run.spec
        items = [Text.assemble(("run ", "dim"), (self.run.id, "bold")), Text(str(spec.preset or spec.task)),
                 Text(f"{spec.backend} {spec.model}")]
        for label, path in self.run.where():  # where the model is (x exports it)
            shown = f"{path.relative_to(self.run.dir)}/" if self.run.dir in path.parents else str(path)
            items.append(Text.assemble((f"{label} ", "dim"), shown))
        state = self.status.get("state")
        if state == "evaluating":
            items += generating_parts(self.progress.eval_progress)
        elif state is not None and state != "succeeded":
            text = state_text(state)
            if self.status.get("message"):
                text.append(f" {fmt.short(self.status['message'], 40)}", style="dim")
            items.append(text)
        if state is not None and not is_active(state) and self.run.finetuned_ready():
            items.append(Text.assemble(("t", "bold"), (" try your own input", "dim")))
        self.query_one("#eval-head", Static).update(Flow(items))

    # -- the summary table ---------------------------------------------------------------
    def _render_summary(self) -> None:
        data = self.data
        table = self.query_one("#summary", DataTable)
        table.clear(columns=True)
        if data is None or not data.metrics:
            return
        evals = {v: m.get("metrics", {}) for v, m in data.metrics.items()}
        keys = fmt.headline_keys(evals)
        base = evals.get("base", {})
        rows: list[list[Text]] = []
        for v in data.variants:
            m = evals[v]
            cells: list[Text] = [Text(("▶ " if v == self.variant else "  ") + v,
                                     style="bold" if v == self.variant else ""),
                                Text(count_text(data.metrics[v]))]
            for k in keys:
                value = m.get(k)
                cell = Text(fmt.pct(value))
                delta = fmt.delta_pp(value, base.get(k)) if v != "base" else ""
                if delta:
                    cell.append(f" {delta}", style="green" if not delta.startswith("-") else "red")
                cells.append(cell)
            rows.append(cells)
        # Widths from the cells: left to the table, a render right after clear(columns=True) (the
        # records read again as the screen opens) kept the headers' widths ("finet", n "2").
        for at, label in enumerate(["variant", "n", *[fmt.METRIC_LABELS[k] for k in keys]]):
            table.add_column(label, width=max([len(label), *(row[at].cell_len for row in rows)]))
        for cells in rows:
            table.add_row(*cells)

    # -- which examples are shown --------------------------------------------------------
    def _matches(self, index: int) -> bool:
        assert self.data is not None
        records = self.data.rows[index]
        rec = records.get(self.variant)
        if self.filter == "failures" and (rec is None or is_correct(rec) or not is_scorable(rec)):
            return False
        if self.filter == "invalid" and (rec is None or rec.get("valid")):
            return False
        if self.search:
            needle = self.search.lower()
            first = next(iter(records.values()))
            hay = [str(first.get("input", "")), str(first.get("reference", ""))]
            hay += [str(r.get("output", "")) for r in records.values()]
            hay += [str(v) for v in (first.get("fields") or {}).values()]
            if not any(needle in h.lower() for h in hay):
                return False
        return True

    def _refilter(self, keep: int | None = None, *, scroll_home: bool = False) -> None:
        """Recompute the matching examples; stay on ``keep`` where it still matches (and where
        it is the same example, scrolled where it was unless ``scroll_home``)."""
        if self.data is None:
            return
        self.matching = [i for i in self.data.indices if self._matches(i)]
        if keep is not None and keep in self.matching:
            self.position = self.matching.index(keep)
        else:
            self.position, scroll_home = 0, True
        self._render_example(scroll_home=scroll_home)

    def _render_example(self, *, scroll_home: bool = True) -> None:
        data = self.data
        pos = self.query_one("#position", Static)
        body = self.query_one("#example-body", Static)
        if data is None:
            return
        if not data.indices:
            pos.update(Text("no variant has finished yet: each appears here when it does" if self._active()
                            else "no eval records yet: evaluation runs after training", style="yellow"))
            body.update("")
            return
        line = Text()
        if self.matching:
            line.append(f"Example {self.position + 1} of {len(self.matching)}", style="bold")
            line.append(f"  #{self.matching[self.position]}", style="dim")
        else:
            line.append("No example matches", style="bold yellow")
        line.append(f"  · {self.variant}", style="bold")
        line.append(f" · {FILTERS[self.filter]}")
        if self.search:
            line.append(f" · search “{self.search}”")
        pos.update(line)
        if not self.matching:
            body.update(Text(f"none of {len(data.indices)} examples match; press f/i to clear the filter, "
                             "/ and enter to clear the search", style="dim"))
            return
        records = data.rows[self.matching[self.position]]
        view = self.query_one("#example-view", VerticalScroll)
        width = max(20, view.scrollable_content_region.width)
        body.update(render_example(records, data.variants, self.variant, data.task,
                                   dark=self.app.current_theme.dark, width=width))
        if scroll_home:
            view.scroll_home(animate=False)

    # -- keys ----------------------------------------------------------------------------
    def on_resize(self) -> None:
        if self.data is not None:  # section lines follow the width
            self.call_after_refresh(lambda: self._render_example(scroll_home=False))

    def action_move(self, step: int) -> None:
        if self.matching:
            self.position = max(0, min(len(self.matching) - 1, self.position + step))
            self._render_example()

    def action_scroll_example(self, lines: int) -> None:
        self.query_one("#example-view", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_first(self) -> None:
        self.position = 0
        self._render_example()

    def action_last(self) -> None:
        self.position = max(0, len(self.matching) - 1)
        self._render_example()

    def _current(self) -> int | None:
        return self.matching[self.position] if self.matching else None

    def action_filter(self, which: str) -> None:
        self.filter = None if self.filter == which else which
        self._refilter(keep=self._current())

    def action_switch_variant(self) -> None:
        vs = self.data.variants if self.data else []
        if len(vs) < 2:
            if self._active():
                self.notify((f"only {vs[0]} is evaluated so far" if vs else "no variant is evaluated yet")
                            + ": the others appear here as they finish", title="Variant")
            else:
                self.notify(f"this run evaluated only {vs[0]}" if vs else "this run has no evaluated variant",
                            severity="warning", title="Variant")
            return
        self.variant_chosen = True
        self.variant = vs[(vs.index(self.variant) + 1) % len(vs)] if self.variant in vs else vs[0]
        self._render_summary()
        self._refilter(keep=self._current(), scroll_home=True)  # the chosen variant moves to the top

    def action_search(self) -> None:
        self.app.push_screen(PromptModal("Search inputs, references and outputs", value=self.search,
                                         hint="empty clears the search"), self._searched)

    def _searched(self, text: str | None) -> None:
        if text is None:
            return
        self.search = text.strip()
        self._refilter(keep=self._current())

    def action_goto(self) -> None:
        if not self.matching:
            return
        self.app.push_screen(PromptModal(f"Go to example (1–{len(self.matching)})", placeholder="number"),
                             self._went)

    def _went(self, text: str | None) -> None:
        if not text:
            return
        try:
            k = int(text.strip())
        except ValueError:
            self.notify(f"not a number: {text!r}", severity="warning")
            return
        if not 1 <= k <= len(self.matching):
            self.notify(f"there are {len(self.matching)} examples here; {k} is out of range", severity="warning")
            return
        self.position = k - 1
        self._render_example()

    def action_export(self) -> None:
        # a model export adds a line to the head (where the model is)
        self.app.push_screen(ExportModal(self.run), callback=lambda _written: self._render_head())

    def action_try(self) -> None:
        self.app.show_playground(self.run)

    def action_back(self) -> None:
        self.app.go_back()
