"""The Textual app: the flow dataset -> backend -> training -> eval, and the runs screen.

Screens live in ``ftui.tui.screens``; this module only wires them together. The app never
trains: a run is a detached process, so quitting (or losing the terminal) leaves it running.
"""

from __future__ import annotations

import os
from typing import Callable

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from ftui.core.runs import Run, is_active
from ftui.tui.screens.dataset import DatasetScreen
from ftui.tui.services import Services


class FtuiApp(App):
    """ftui's terminal interface."""

    CSS_PATH = "ftui.tcss"
    TITLE = "ftui"
    SUB_TITLE = "dataset › backend › training › evaluation"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("R", "runs", "Runs"),
    ]

    def __init__(self, *, attach: Run | None = None, services: Services | None = None,
                 default_preset: str = "demo", playground: Run | None = None) -> None:
        super().__init__()
        self.services = services or Services()
        self.attach_run = attach
        self.playground_run = playground
        """``ftui try RUN``: open on this run's Playground (over the Runs screen)."""
        self.default_preset = default_preset
        self.token_cache: dict[str, object] = {}
        """Token statistics by data key (preset or file): counted once per session."""
        self.watched: set[str] = set()
        """Runs this session showed on a training screen (named on exit if still running)."""
        theme = os.environ.get("FTUI_THEME")
        if theme and theme in self.available_themes:
            self.theme = theme

    def get_default_screen(self) -> Screen:
        if self.attach_run is not None or self.playground_run is not None:
            from ftui.tui.screens.runs import RunsScreen

            return RunsScreen()
        return DatasetScreen()

    def on_mount(self) -> None:
        if self.attach_run is not None:
            self.open_run(self.attach_run)
        elif self.playground_run is not None:
            self.show_playground(self.playground_run)

    # -- navigation ----------------------------------------------------------------------
    def open_run(self, run: Run) -> None:
        """Its training screen while it works (or has no eval), its eval screen once evaluated."""
        state = run.status().get("state", "queued")
        if not is_active(state) and run.eval_metrics():
            from ftui.tui.screens.eval import EvalScreen

            self.push_screen(EvalScreen(run))
        else:
            self.show_training(run)

    def show_training(self, run: Run) -> None:
        from ftui.tui.screens.training import TrainingScreen

        self.watched.add(run.id)
        self.push_screen(TrainingScreen(run))

    def run_started(self, run: Run, *, replacing: Screen) -> None:
        """A run was launched from ``replacing`` (the Backend screen): watch it instead."""
        from ftui.tui.screens.training import TrainingScreen

        self.watched.add(run.id)
        if self.screen is replacing:
            self.switch_screen(TrainingScreen(run))
        else:
            self.push_screen(TrainingScreen(run))

    def show_playground(self, run: Run) -> None:
        """The Playground of ``run``, on top; refused (a notice) while it has no trained weights."""
        from ftui.core.playground import refusal
        from ftui.tui.screens.playground import PlaygroundScreen

        if not run.finetuned_ready():
            self.notify(refusal(run), severity="warning", title="Playground")
            return
        self.push_screen(PlaygroundScreen(run))

    def stop_run(self, run: Run, *, failed: Callable[[OSError], None] | None = None) -> None:
        """Stop ``run``: its stop file, then SIGTERM after the grace period (``Services.stop``), in
        a worker thread of the app, so neither the UI nor a screen's polling thread waits and
        leaving the screen does not drop the SIGTERM; quitting cancels the wait (the run goes
        on). ``failed`` is called on the UI thread when the stop file could not be written."""

        def stop() -> None:
            try:
                self.services.stop(run)
            except OSError as exc:
                if failed is not None:
                    self.call_from_thread(failed, exc)
                else:
                    self.call_from_thread(self.notify, f"could not ask the runner to stop: {exc}", severity="error")

        self.run_worker(stop, thread=True, exclusive=True, group=f"stop-{run.id}", exit_on_error=False)

    def show_runs(self) -> None:
        """The Runs screen: back down to it when it is in the stack, else on top."""
        from ftui.tui.screens.runs import RunsScreen

        stack = self.screen_stack
        for i, screen in enumerate(stack):
            if isinstance(screen, RunsScreen):
                for _ in range(len(stack) - 1 - i):
                    self.pop_screen()
                return
        if len(stack) > 1 and not isinstance(self.screen, DatasetScreen) and type(self.screen).__name__ in (
                "TrainingScreen", "EvalScreen", "CompareScreen", "StudyScreen"):
            self.switch_screen(RunsScreen())
        else:
            self.push_screen(RunsScreen())

    def show_study(self, ref: str) -> None:
        """The Study screen of study ``ref`` (an id), on top."""
        from ftui.core.errors import FtuiError
        from ftui.core.study import resolve_study
        from ftui.tui.screens.study import StudyScreen

        try:
            study = resolve_study(ref)
        except FtuiError as exc:
            self.notify(str(exc), severity="error")
            return
        self.push_screen(StudyScreen(study))

    def new_run(self) -> None:
        """Back to the Dataset screen (the start of the flow)."""
        for i, screen in enumerate(self.screen_stack):
            if isinstance(screen, DatasetScreen):
                for _ in range(len(self.screen_stack) - 1 - i):
                    self.pop_screen()
                return
        self.push_screen(DatasetScreen())

    def go_back(self) -> None:
        """Pop the current screen unless it is the first one."""
        if len(self.screen_stack) > 1:
            self.pop_screen()

    def action_runs(self) -> None:
        self.show_runs()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "runs" and type(self.screen).__name__ == "RunsScreen":
            return False  # already there; and its footer needs the room at 80 columns
        return True


def run_app(attach: Run | None = None, *, playground: Run | None = None) -> int:
    """Run the TUI until quit; name the runs it leaves running (they go on)."""
    app = FtuiApp(attach=attach, playground=playground)
    app.run()
    running = []
    from ftui.core.runs import resolve_run
    from ftui.core.errors import FtuiError

    for rid in sorted(app.watched):
        try:
            run = resolve_run(rid)
        except FtuiError:
            continue
        if run.active():
            running.append(rid)
    for rid in running:
        print(f"run {rid} keeps running: `ftui attach {rid}` to watch it, `ftui cancel {rid}` to stop it")
    return 0
