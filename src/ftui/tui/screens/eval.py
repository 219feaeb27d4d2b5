"""Eval screen: metrics per variant with deltas from base, then one held-out example at a time."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from ftui.core.runs import Run
from ftui.core.scoring import VARIANTS, count_text, read_predictions
from ftui.tui.widgets.keys import key_footer
from ftui.tui import fmt
from ftui.tui.screens.export import ExportModal
from ftui.tui.screens.modals import PromptModal
from ftui.tui.widgets.render import is_correct, is_scorable, render_example

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


class EvalScreen(Screen):
    """Step 4: how the base, k-shot and fine-tuned variants did on the held-out examples."""

    BINDINGS = [
        Binding("right,l,n", "move(1)", "next", key_display="→", priority=True),
        Binding("left,h,p", "move(-1)", "prev", key_display="←", priority=True),
        Binding("f", "filter('failures')", "fail"),
        Binding("i", "filter('invalid')", "invalid"),
        Binding("slash", "search", "find", key_display="/"),
        Binding("g", "goto", "goto"),
        Binding("v", "switch_variant", "variant"),
        Binding("x", "export", "export"),
        Binding("home", "first", "first", show=False),
        Binding("end", "last", "last", show=False),
        Binding("r", "reload", "reload", show=False),
        Binding("escape", "back", "back", show=False),
    ]

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self.data: EvalData | None = None
        self.variant = ""
        self.filter: str | None = None
        self.search = ""
        self.matching: list[int] = []
        self.position = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="summary", cursor_type="none", show_cursor=False)
        yield Static(id="position")
        with VerticalScroll(id="example-view"):
            yield Static(id="example-body")
        yield key_footer()

    def on_mount(self) -> None:
        self.sub_title = f"evaluation of {self.run.id}"
        self.query_one("#summary", DataTable).can_focus = False
        self.query_one("#example-view").focus()
        self.query_one("#position", Static).update(Text("loading eval records…", style="dim"))
        self._load()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self) -> None:
        data = EvalData(self.run)
        self.app.call_from_thread(self._loaded, data)

    def _loaded(self, data: EvalData) -> None:
        current = self.matching[self.position] if self.matching else None
        self.data = data
        if self.variant not in data.variants:
            self.variant = "finetuned" if "finetuned" in data.variants else (data.variants[-1] if data.variants else "")
        self._render_summary()
        self._refilter(keep=current)

    # -- the summary table ---------------------------------------------------------------
    def _render_summary(self) -> None:
        data = self.data
        table = self.query_one("#summary", DataTable)
        table.clear(columns=True)
        if data is None or not data.metrics:
            return
        evals = {v: m.get("metrics", {}) for v, m in data.metrics.items()}
        keys = fmt.headline_keys(evals)
        table.add_columns("variant", "n", *[fmt.METRIC_LABELS[k] for k in keys])
        base = evals.get("base", {})
        for v in data.variants:
            m = evals[v]
            cells: list[Any] = [Text(("▶ " if v == self.variant else "  ") + v,
                                     style="bold" if v == self.variant else ""),
                                count_text(data.metrics[v])]
            for k in keys:
                value = m.get(k)
                cell = Text(fmt.pct(value))
                delta = fmt.delta_pp(value, base.get(k)) if v != "base" else ""
                if delta:
                    cell.append(f" {delta}", style="green" if not delta.startswith("-") else "red")
                cells.append(cell)
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

    def _refilter(self, keep: int | None = None) -> None:
        if self.data is None:
            return
        self.matching = [i for i in self.data.indices if self._matches(i)]
        if keep is not None and keep in self.matching:
            self.position = self.matching.index(keep)
        else:
            self.position = 0
        self._render_example()

    def _render_example(self) -> None:
        data = self.data
        pos = self.query_one("#position", Static)
        body = self.query_one("#example-body", Static)
        if data is None:
            return
        if not data.indices:
            pos.update(Text("no eval records yet: evaluation runs after training", style="yellow"))
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
        width = max(20, self.query_one("#example-view", VerticalScroll).scrollable_content_region.width)
        body.update(render_example(records, data.variants, self.variant, data.task,
                                   dark=self.app.current_theme.dark, width=width))
        self.query_one("#example-view", VerticalScroll).scroll_home(animate=False)

    # -- keys ----------------------------------------------------------------------------
    def on_resize(self) -> None:
        if self.data is not None:
            self.call_after_refresh(self._render_example)  # section lines follow the width

    def action_move(self, step: int) -> None:
        if self.matching:
            self.position = max(0, min(len(self.matching) - 1, self.position + step))
            self._render_example()

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
        if not self.data or not self.data.variants:
            return
        vs = self.data.variants
        self.variant = vs[(vs.index(self.variant) + 1) % len(vs)] if self.variant in vs else vs[0]
        self._render_summary()
        self._refilter(keep=self._current())

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
        self.app.push_screen(ExportModal(self.run))

    def action_reload(self) -> None:
        self._load()

    def action_back(self) -> None:
        self.app.go_back()
