"""Training screen: loss chart, progress and ETA, tokens/s, cost, hardware, log; cancel, detach, eval."""

from __future__ import annotations

import time

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import ProgressBar, RichLog, Static
from textual.worker import get_current_worker

from ftui.core.backends import backend
from ftui.core.devices import ordinal
from ftui.core.events import state_detail
from ftui.core.machine import HwReading, trainable_text
from ftui.core.mfu import mfu_text, run_mfu
from ftui.core.runs import ENDED_STATES, Run
from ftui.core.validation import describe as describe_val
from ftui.tui.widgets.flow_header import FlowHeader
from ftui.tui.widgets.keys import key_footer
from ftui.tui import fmt
from ftui.tui.messages import RunEventsReceived, RunnerLogRead, RunStatusChanged
from ftui.core.progress import RunProgress
from ftui.tui.screens.modals import ConfirmModal
from ftui.tui.watcher import follow
from ftui.tui.widgets.loss_chart import LossChart
from ftui.tui.widgets.render import Flow

LEVEL_STYLE = {"error": "bold red", "warning": "yellow", "status": "bold cyan", "info": "", "step": "dim"}


def state_text(state: str, queue: dict | None = None) -> Text:
    """The state, coloured; a run waiting in the machine-wide queue with its place in line."""
    style = {"running": "bold green", "evaluating": "bold cyan", "succeeded": "bold green",
             "failed": "bold red", "lost": "bold red", "missing": "bold red", "cancelled": "bold yellow",
             }.get(state, "bold")
    text = Text(state, style=style)
    if state == "queued" and queue:
        text.append(f" {ordinal(int(queue.get('place') or 1))}", style="dim")
    return text


def waiting_text(status: dict) -> str:
    """What a queued run waits for, in words: ``waiting for RUN (cpu in use): ...``."""
    queue, devices = status.get("queue") or {}, status.get("devices") or "its devices"
    behind = queue.get("behind")
    who = f"waiting for {behind} ({devices} in use)" if behind else f"waiting for {devices}"
    return (f"{who}, {ordinal(int(queue.get('place') or 1))} in line: this run loads its model "
            "when its turn comes")


class TrainingScreen(Screen):
    """Step 3: watches one run's directory; never trains, never stops a run by leaving."""

    BINDINGS = [
        Binding("c", "cancel_run", "Cancel run"),
        Binding("d", "detach", "Detach"),
        Binding("e", "eval", "Eval"),
        Binding("l", "toggle_log", "Events/runner.log"),
        Binding("t", "try", "Try"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self.progress = RunProgress()
        self.status: dict = {"state": "queued"}
        self.has_eval = bool(run.eval_metrics())
        self.log_shown = 0
        self.stop_requested_at: float | None = None
        self.events_seen = 0
        self.last_event_at: float | None = None
        """Monotonic time the last batch of events was shown (for latency measurements)."""
        self._announced = ""

    def compose(self) -> ComposeResult:
        spec = self.run.spec
        yield FlowHeader("training")
        yield Static(Text.assemble(("run ", "dim"), (self.run.id, "bold"), " · ", spec.data_name,
                                   " · ", spec.backend, " ", spec.model), id="run-head")
        with Horizontal(id="progress-row"):
            yield Static(id="state")
            yield ProgressBar(total=1, show_eta=False, id="progress")
        yield Static(id="reason", classes="hidden")  # why a run failed or was lost, wrapped whole
        yield Static(id="stats")
        with Horizontal(id="train-body"):
            yield LossChart(id="chart")
            with Vertical(id="side"):
                yield Static(id="cost-pane", classes="pane")
                yield Static(id="hw-pane", classes="pane")
        # min_width 1: lines wrap at the log's width (RichLog's default, 78, cuts them at 80 columns)
        yield RichLog(id="event-log", max_lines=500, wrap=True, markup=False, min_width=1)
        yield RichLog(id="runner-log", max_lines=500, wrap=True, markup=False, min_width=1, classes="hidden")
        yield key_footer()

    def on_mount(self) -> None:
        self._render_all()
        self._watch()

    # -- watching (a worker thread posts messages) ---------------------------------------
    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def _watch(self) -> None:
        worker = get_current_worker()
        follow(self.run, self.post_message, poll_s=self.app.services.poll_s, cancelled=lambda: worker.is_cancelled,
               runner_log=True)

    @on(RunEventsReceived)
    def _events(self, message: RunEventsReceived) -> None:
        if message.reset:
            self.progress.reset()
            self.log_shown = 0
            self.query_one("#event-log", RichLog).clear()
        self.progress.apply(message.events)
        self.events_seen += len(message.events)
        if any(e["type"] == "eval" for e in message.events):
            self.has_eval = True
            self.refresh_bindings()
        self._render_all()
        self.last_event_at = time.monotonic()

    @on(RunStatusChanged)
    def _status(self, message: RunStatusChanged) -> None:
        self.status = message.status
        state = self.status.get("state", "queued")
        if state in ENDED_STATES:
            self.has_eval = bool(self.run.eval_metrics()) if not message.missing else False
        self.refresh_bindings()
        self._render_all()
        self._announce(state)

    @on(RunnerLogRead)
    def _runner_log(self, message: RunnerLogRead) -> None:
        log = self.query_one("#runner-log", RichLog)
        for line in message.lines:
            log.write(line)

    def _announce(self, state: str) -> None:
        if state == self._announced or state not in ENDED_STATES:
            return
        self._announced = state
        if state == "succeeded":
            self.notify("finished: press e for the evaluation" if self.has_eval else "finished", title="Run")
        elif state == "failed":
            self.notify(f"failed: {self._failure()}", severity="error", title="Run", timeout=10)
        elif state == "lost":
            self.notify("the runner is gone (no heartbeat): resume it from the Runs screen (u)",
                        severity="warning", title="Run", timeout=10)
        elif state == "missing":
            self.notify("the run directory was removed", severity="error", title="Run")
        elif state == "cancelled":
            self.notify("cancelled; a checkpoint was saved (resume continues it)", title="Run")

    # -- rendering -----------------------------------------------------------------------
    def _render_all(self) -> None:
        p = self.progress
        self._render_state()
        bar = self.query_one("#progress", ProgressBar)
        evaluating = self._eval_progress()
        # One bar, where the step progress is: during evaluation it is the current variant's.
        bar.set_class(evaluating is not None, "eval")
        if evaluating is not None:
            bar.update(total=max(1, evaluating["total"]), progress=evaluating["done"])
        elif p.total_steps:
            bar.update(total=p.total_steps, progress=p.step)
        self.query_one("#stats", Static).update(self._stats_text())
        self.query_one("#cost-pane", Static).update(self._cost_text())
        self.query_one("#hw-pane", Static).update(self._hw_text())
        self.query_one("#chart", LossChart).set_series(p.train, p.val, p.total_steps)
        log = self.query_one("#event-log", RichLog)
        for ts, level, text in p.new_log_lines(self.log_shown):
            log.write(Text.assemble((time.strftime("%H:%M:%S ", time.localtime(ts)), "dim"),
                                    (text, LEVEL_STYLE.get(level, ""))))
        self.log_shown = p.log_total

    def _failure(self) -> str:
        """Why the run failed: its last error event (it may name runner.log), else status.json's."""
        return self.progress.errors[-1] if self.progress.errors else self.status.get("message", "")

    def _render_state(self) -> None:
        state = self.status.get("state", "queued")
        queue = self.status.get("queue") if state == "queued" else None
        text = state_text(state, queue)
        message = "" if queue else state_detail(state, self.status.get("message"))
        reason = ""
        if state == "failed":
            reason, message = self._failure(), ""
        elif state == "lost":
            reason, message = f"runner gone while {self.status.get('last_state', '?')}; resume from Runs (u)", ""
        if self.stop_requested_at is not None and state not in ENDED_STATES:
            message = "stopping after the current step…"
        if message:
            text.append(f" {fmt.short(message, 40)}", style="dim")
        self.query_one("#state", Static).update(text)
        why = self.query_one("#reason", Static)
        why.update(Text(reason))  # not markup: an error message may hold brackets
        why.set_class(not reason, "hidden")

    def _eval_progress(self) -> dict | None:
        """The variant now generating, while the run is evaluating (its last reported state)."""
        p = self.progress.eval_progress
        return p if p is not None and self.status.get("state") == "evaluating" else None

    def _eval_parts(self) -> list[tuple[str, str]]:
        e = self._eval_progress()
        if e is None:
            return [("evaluating held-out examples", "cyan")]
        parts = [(f"eval {e['variant']} {e['done']}/{e['total']}", "bold cyan")]
        if e.get("examples_per_s"):
            parts.append((fmt.rate(e["examples_per_s"], "examples"), ""))
        if e["done"] < e["total"]:
            parts.append((f"ETA {fmt.duration(e.get('eta_s'))}", "bold"))
        return parts

    def _stats_text(self) -> Text | Flow:
        p = self.progress
        if self.status.get("state") == "queued" and self.status.get("queue"):
            return Text(waiting_text(self.status), style="bold")
        if not p.last_train:
            if self.status.get("state") == "evaluating":  # an eval-only run of a trained model
                return Flow([Text(text, style=style) for text, style in self._eval_parts()])
            return Text("waiting for the first training step…" if self.status.get("state") not in ENDED_STATES
                        else "no training steps recorded", style="dim")
        t = p.last_train
        parts: list[tuple[str, str]] = [(f"step {t['step']}/{t['total_steps']}", "bold"),
                                        (f"epoch {t['epoch']:.2f}", ""), (f"loss {t['loss']:.4f}", "")]
        if p.last_val:
            acc = p.last_val.get("token_accuracy")
            parts.append((f"val {p.last_val['loss']:.4f}" + (f" ({acc:.0%} tok)" if acc is not None else ""), ""))
            if p.last_val.get("rows") is not None:  # what the validation loss is computed on
                parts.append((describe_val(p.last_val["rows"], self.run.spec.split_sizes.get("val")), "dim"))
        parts.append((f"{t['tokens_per_s']:,.0f} tok/s", ""))
        share = run_mfu(t, p.hw)  # GPU runs only: None on a CPU and for a GPU of unknown peak
        if share is not None:
            parts.append((mfu_text(share), ""))
        state = self.status.get("state")
        if state in ("running", "starting") and t["step"] < t["total_steps"]:
            parts.append((f"ETA {fmt.duration(p.eta_s())}", "bold"))
        elif state == "evaluating":
            parts.extend(self._eval_parts())
        stopped = self._stopped_early()
        if stopped:
            parts.append((stopped, "yellow"))
        return Flow([Text(text, style=style) for text, style in parts])

    def _stopped_early(self) -> str:
        """``stopped early at step 40: …; kept step 20 (val 1.2340)`` once early stopping ended
        training; empty otherwise."""
        if self.progress.last_val is None or self.status.get("state") in ("starting", "running"):
            return ""
        outcome = self.run.validation_outcome(self.progress)
        return outcome.text() if outcome is not None and outcome.stopped_early_at is not None else ""

    def _cost_text(self) -> Group:
        c = self.progress.cost
        lines = [Text("cost", style="bold")]
        if c is None:
            lines.append(Text("no cost recorded yet", style="dim"))
        else:
            lines.append(Text.assemble(("spent     ", "dim"), fmt.money(c["usd"], digits=4)))
            lines.append(Text.assemble(("projected ", "dim"), fmt.money(c.get("projected_usd"), digits=4)))
            lines.append(Text(c.get("basis", ""), style="dim italic"))
        return Group(*lines)

    def _hw_text(self) -> Group:
        lines = [Text("hardware", style="bold")]
        if self.progress.hw is None:
            facts = backend(self.run.spec.backend)
            lines.append(Text(f"none: the model trains at {facts.title}" if facts.remote else "no readings yet",
                              style="dim"))
            return Group(*lines)
        hw = HwReading.from_event(self.progress.hw)
        if hw.gpus:
            for g in hw.gpus[:4]:
                power = f" {g.power_w:.0f} W" if g.power_w is not None else ""
                lines.append(Text(f"GPU{g.index} {g.util or 0:>3.0f}% "
                                  f"{fmt.gib(g.mem_used)}/{fmt.gib(g.mem_total)}{power}"))
        elif hw.gpu_mem_total:
            util = f"{hw.gpu_util:.0f}% " if hw.gpu_util is not None else ""
            power = f" {hw.gpu_power_w:.0f} W" if hw.gpu_power_w is not None else ""
            lines.append(Text(f"GPU {util}{fmt.gib(hw.gpu_mem_used)}/{fmt.gib(hw.gpu_mem_total)}{power}"))
        if hw.cpu_percent is not None:
            lines.append(Text(f"CPU {hw.cpu_percent:.0f}%"))
        if hw.rss_bytes is not None:
            lines.append(Text(f"RAM {fmt.gib(hw.rss_bytes)} of {fmt.gib(hw.ram_total_bytes)}"))
        ev = self.progress.hw
        if ev.get("peak_mem_bytes"):
            lines.append(Text(f"peak {fmt.gib(ev['peak_mem_bytes'])}"))
        if hw.peak_rss and hw.gpus:  # on a CPU the peak above is this peak RSS already
            lines.append(Text(f"peak RSS {fmt.gib(hw.peak_rss)}"))
        if ev.get("trainable_params"):
            trained = trainable_text(ev["trainable_params"], ev.get("total_params"), short=True)
            lines.append(Text(f"{ev.get('method') or 'trains'} {trained} trained", style="dim"))
        return Group(*lines)

    # -- keys ----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "eval":
            return True  # before any result, pressing it says when there will be one
        if action == "try":  # the Playground needs the trained weights: shown once the run has them
            return self.status.get("state") in ENDED_STATES and self.run.finetuned_ready()
        if action == "cancel_run":
            return True if self.status.get("state") not in ENDED_STATES and self.stop_requested_at is None else None
        return True

    def action_cancel_run(self) -> None:
        if self.status.get("state") in ENDED_STATES:
            return
        if self.status.get("state") == "queued":
            question = (f"Take run {self.run.id} out of the queue?\n"
                        "It ends cancelled before loading anything; resume (Runs screen, u) queues it again.")
            self.app.push_screen(ConfirmModal(question, yes="Cancel the run", no="Keep waiting"),
                                 self._cancel_confirmed)
            return
        question = (f"Stop run {self.run.id} after its current step?\n"
                    "A checkpoint is saved first; resume (Runs screen, u) continues it.")
        self.app.push_screen(ConfirmModal(question, yes="Stop the run", no="Keep running"), self._cancel_confirmed)

    def _cancel_confirmed(self, ok: bool | None) -> None:
        if not ok:
            return
        self.app.stop_run(self.run, failed=self._stop_failed)
        self.stop_requested_at = time.monotonic()
        self.refresh_bindings()
        self._render_state()
        self.notify("stop requested: the runner ends its step and saves a checkpoint", title="Run")

    def _stop_failed(self, exc: OSError) -> None:
        self.app.notify(f"could not ask the runner to stop: {exc}", severity="error")
        self.stop_requested_at = None
        if self.is_attached:
            self.refresh_bindings()
            self._render_state()

    def action_detach(self) -> None:
        self.notify(f"run {self.run.id} keeps running", title="Detached")
        self.app.show_runs()

    def action_eval(self) -> None:
        if not self.has_eval:
            self.notify("no evaluation yet: it runs after training", severity="warning")
            return
        from ftui.tui.screens.eval import EvalScreen

        self.app.switch_screen(EvalScreen(self.run))

    def action_try(self) -> None:
        self.app.show_playground(self.run)

    def action_toggle_log(self) -> None:
        events, runner = self.query_one("#event-log", RichLog), self.query_one("#runner-log", RichLog)
        events.toggle_class("hidden")
        runner.toggle_class("hidden")

    def action_back(self) -> None:
        self.app.go_back()
