"""Runs screen: every run with status, backend, model, preset, time, cost and headline metrics."""

from __future__ import annotations

import os
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static
from textual.worker import get_current_worker

from ftui.core.errors import FtuiError
from ftui.core.runs import Run, delete_run, is_active, list_runs
from ftui.tui.widgets.keys import key_footer
from ftui.tui import fmt
from ftui.tui.screens.modals import ConfirmModal
from ftui.tui.screens.training import state_text
from ftui.tui.widgets.run_table import RunTable

REFRESH_S = 2.0
COLUMNS = tuple((name, name or "mark") for name in ("", "run", "status", "valid", "accuracy", "cost", "time",
                                                      "backend", "model", "data"))
"""(label, key): headline figures first, so they are on screen at 80 columns; the run id says when it started."""
OPTIONAL = ("time", "cost", "backend", "data", "model")
"""Columns shown only while they fit, most wanted first: at 80 columns the table shows the run,
its status, rates and time whole, and leaves the rest out rather than cut one at the edge."""


class SummaryCache:
    """``Run.summary()`` recomputed only when the run's files changed (it reads all events)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple, dict[str, Any]]] = {}

    def get(self, run: Run) -> dict[str, Any]:
        stamp = []
        for name in ("events.jsonl", "status.json", "eval"):
            try:
                st = os.stat(run.dir / name)
                stamp.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append(None)
        for sub in ("base", "kshot", "finetuned"):
            try:
                stamp.append(os.stat(run.dir / "eval" / sub / "metrics.json").st_mtime_ns)
            except OSError:
                stamp.append(None)
        key = tuple(stamp)
        hit = self._cache.get(run.id)
        info = run.summary() if hit is None or hit[0] != key else hit[1]
        # status can go "lost" without any file changing: ask it every time (cheap)
        info = {**info, "status": run.status().get("state", info["status"])}
        self._cache[run.id] = (key, info)
        return info


def headline(info: dict[str, Any]) -> tuple[Text, Text]:
    """(valid, accuracy) of the fine-tuned variant (else the best there is), with the change from base."""
    evals = info.get("eval") or {}
    variant = next((v for v in ("finetuned", "kshot", "base") if v in evals), None)
    if variant is None:
        return Text("—", style="dim"), Text("—", style="dim")
    m, base = evals[variant], evals.get("base", {})
    acc_key = "execution" if "execution" in m else "exact"
    cells = []
    for key in ("valid", acc_key):
        cell = Text("—" if m.get(key) is None else f"{m[key]:.0%}")
        if variant != "base" and base.get(key) is not None and m.get(key) is not None:
            d = f"{(m[key] - base[key]) * 100:+.0f}"
            cell.append(f" ({d})", style="green" if not d.startswith("-") else "red")
        if variant != "finetuned":
            cell.append(f" {variant}", style="dim")
        cells.append(cell)
    return cells[0], cells[1]


class RunsScreen(Screen):
    """History of runs; open, attach, resume, cancel; mark two or more and compare; studies."""

    # The footer fits 80 columns: resume and cancel show only for a run they apply to (never
    # both), try (the Playground) only for a run with trained weights (seldom one to resume),
    # back only where there is a screen to go back to; S and D are named in the note.
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),
        Binding("a", "attach", "Attach"),
        Binding("u", "resume", "Resume"),
        Binding("c", "cancel_run", "Cancel"),
        Binding("space", "mark", "Mark"),
        Binding("m", "compare", "Compare"),
        Binding("t", "try", "Try"),
        Binding("S", "study", "Study", show=False),
        Binding("T", "studies", "Studies"),
        Binding("N", "new_run", "New"),
        Binding("delete", "delete_runs", "Delete", show=False),  # also D; asks first
        Binding("D", "delete_runs", "Delete", show=False),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Run] = []
        self.infos: dict[str, dict[str, Any]] = {}
        self.marked: set[str] = set()
        self.cache = SummaryCache()

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunTable(id="runs", on_choose=self.action_open)
        yield Static(id="runs-note")
        yield key_footer()

    def on_mount(self) -> None:
        self.sub_title = "runs"
        table = self.query_one("#runs", RunTable)
        table.show(COLUMNS, [], optional=OPTIONAL)
        table.focus()
        self._refresh()
        self.set_interval(REFRESH_S, self._refresh)

    def on_screen_resume(self) -> None:
        self._refresh()

    # -- data ----------------------------------------------------------------------------
    def _refresh(self) -> None:
        if self.is_current:
            self._scan()

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False)
    def _scan(self) -> None:
        worker = get_current_worker()
        runs = list(reversed(list_runs()))  # newest first
        infos = {}
        for run in runs:
            if worker.is_cancelled:
                return
            try:
                infos[run.id] = self.cache.get(run)
            except OSError:
                continue
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show, [r for r in runs if r.id in infos], infos)

    def _show(self, runs: list[Run], infos: dict[str, dict[str, Any]]) -> None:
        self.runs, self.infos = runs, infos
        self.query_one("#runs", RunTable).show(COLUMNS, [(r.id, self._cells(r.id)) for r in runs], optional=OPTIONAL)
        self._note()
        self.refresh_bindings()  # resume and cancel follow the selected run's state

    @on(RunTable.ColumnsRefitted, "#runs")
    def _note(self) -> None:
        note = self.query_one("#runs-note", Static)
        if not self.runs:
            note.update("No runs yet: N starts one (dataset → backend → training), or `ftui train --preset demo`.")
            return
        n, left_out = len(self.runs), self.query_one("#runs", RunTable).left_out
        note.update(Text(" · ".join([
            f"{n} run{'s' if n != 1 else ''}", f"{len(self.marked)} marked (space)",
            "fine-tuned rates, change from base in brackets; accuracy = execution match (SQL) or exact match",
            "time = training+evaluation, pauses left out",
            *(["queued Nth: waiting in line for this machine's devices (a to see for which run)"]
              if any(i["status"] == "queued" and i.get("queue") for i in self.infos.values()) else []),
            *([f"{', '.join(left_out)}: in a wider terminal"] if left_out else []),
            "S starts a study, D deletes"]), style="dim"))

    @on(DataTable.RowHighlighted, "#runs")
    def _highlighted(self) -> None:
        self.refresh_bindings()

    def _cells(self, rid: str) -> list[Any]:
        i = self.infos[rid]
        valid, acc = headline(i)
        return [
            "●" if rid in self.marked else " ",
            rid, state_text(i["status"], i.get("queue")), valid, acc,
            fmt.money(i["cost_usd"], digits=4) if i["cost_usd"] is not None else "—",
            fmt.work_time(i["train_s"], i["eval_s"]), str(i["backend"] or ""), fmt.short(str(i["model"] or ""), 24),
            str(i["preset"] or i["task"] or ""),
        ]

    def selected(self) -> Run | None:
        if not self.runs:
            return None
        key = self.query_one("#runs", RunTable).selected_key()
        return next((r for r in self.runs if r.id == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "try":  # the Playground needs trained weights (the footer has no room for it otherwise)
            run = self.selected()
            return run is not None and run.finetuned_ready()
        if action in ("resume", "cancel_run", "attach"):
            run = self.selected()
            state = self.infos.get(run.id, {}).get("status") if run is not None else None
            if state is None:
                return False
            if action == "cancel_run":
                return is_active(state)
            if action == "resume":  # stopped, failed or lost: a runner can take it up again
                return not is_active(state) and state != "succeeded"
        if action == "back":
            return len(self.app.screen_stack) > 1
        return True

    # -- keys ----------------------------------------------------------------------------
    def action_open(self) -> None:
        run = self.selected()
        if run is not None:
            self.app.open_run(run)

    def action_attach(self) -> None:
        run = self.selected()
        if run is not None:
            self.app.show_training(run)  # the app's way: it names the run on quit if still running

    def action_resume(self) -> None:
        run = self.selected()
        if run is None:
            return
        state = run.status()["state"]
        if is_active(state) or state == "succeeded":
            self.notify(f"run {run.id} is {state}: nothing to resume", severity="warning")
            return
        try:
            self.app.services.resume(run)
        except OSError as exc:
            self.notify(f"could not start the runner: {exc}", severity="error")
            return
        self.notify(f"resumed {run.id}", title="Run")
        self.app.show_training(run)

    def action_cancel_run(self) -> None:
        run = self.selected()
        if run is None:
            return
        if not run.active():
            self.notify(f"run {run.id} is not running", severity="warning")
            return

        queued = self.infos.get(run.id, {}).get("status") == "queued"

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.app.stop_run(run)
                self.notify(f"took {run.id} out of the queue" if queued else
                            f"asked {run.id} to stop after its current step", title="Run")

        if queued:
            self.app.push_screen(ConfirmModal(f"Take run {run.id} out of the queue? It ends cancelled; nothing was "
                                              "loaded.", yes="Cancel the run", no="Keep waiting"), confirmed)
            return
        self.app.push_screen(ConfirmModal(f"Stop run {run.id} after its current step? A checkpoint is saved.",
                                          yes="Stop the run", no="Keep running"), confirmed)

    def action_delete_runs(self) -> None:
        """Delete the marked runs, or the selected one, after asking; working runs are refused."""
        chosen = [r for r in self.runs if r.id in self.marked] or [r for r in [self.selected()] if r is not None]
        if not chosen:
            return
        busy = [r.id for r in chosen if r.active()]
        if busy:
            self.notify(f"{', '.join(busy)} still working: cancel (c) before deleting", severity="warning")
            return
        what = chosen[0].id if len(chosen) == 1 else f"these {len(chosen)} runs"

        def confirmed(ok: bool | None) -> None:
            if ok:
                self._delete(chosen)

        self.app.push_screen(ConfirmModal(f"Delete {what} with {'their' if len(chosen) > 1 else 'its'} checkpoints, trained weights and results? "
                                          "This cannot be undone.", yes="Delete", no="Keep"), confirmed)

    @work(thread=True, exclusive=True, group="delete", exit_on_error=False)
    def _delete(self, runs: list[Run]) -> None:
        for run in runs:
            try:
                delete_run(run)
            except (FtuiError, OSError) as exc:
                self.app.call_from_thread(self.notify, str(exc), severity="error", title="Delete")
                break
        self.app.call_from_thread(self._deleted, {r.id for r in runs})

    def _deleted(self, ids: set[str]) -> None:
        self.marked -= ids
        self._refresh()

    def action_mark(self) -> None:
        run = self.selected()
        if run is None:
            return
        self.marked ^= {run.id}
        table = self.query_one("#runs", RunTable)
        table.update_cell(run.id, "mark", "●" if run.id in self.marked else " ")
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)
        self._show(self.runs, self.infos)

    def action_try(self) -> None:
        run = self.selected()
        if run is not None:
            self.app.show_playground(run)

    def action_compare(self) -> None:
        chosen = [r for r in self.runs if r.id in self.marked]
        if len(chosen) < 2:
            self.notify("mark two or more runs with space first", severity="warning")
            return
        from ftui.tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(chosen))

    def action_study(self) -> None:
        """Start a study (a modal); its Study screen once it has started."""
        from ftui.tui.screens.study import StartStudyModal

        run = self.selected()
        preset = (run.spec.preset if run is not None else None) or self.app.default_preset
        self.app.push_screen(StartStudyModal(preset), self._open_study)

    def action_studies(self) -> None:
        from ftui.tui.screens.study import StudiesModal

        self.app.push_screen(StudiesModal(), self._open_study)

    def _open_study(self, study_id: str | None) -> None:
        if study_id:
            self.app.show_study(study_id)

    def action_new_run(self) -> None:
        self.app.new_run()

    def action_back(self) -> None:
        self.app.go_back()
