"""Playground screen: type an input and see base, k-shot and fine-tuned answers side by side.

The models run in a separate process (``ftui.runner.serve``), started when the screen opens and
ended when it closes; this screen only builds the prompts (as eval does, ``core.playground``),
shows the tokens as they come, and has the task judge each answer (its validity; for SQL also
the rows it returns on the example's generated database).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Input, Label, Static, TextArea

from ftui.core.errors import FtuiError
from ftui.core.examples import Example
from ftui.core.playground import Verdict, edited, judge, playground_plan, prompts, template_fields
from ftui.core.runs import Run
from ftui.core.scoring import VARIANTS
from ftui.tui import fmt
from ftui.tui.messages import InferenceEventReceived
from ftui.tui.widgets.keys import key_footer
from ftui.tui.widgets.render import Flow, code, lexer_for

TITLES = {"base": "base", "kshot": "k-shot", "finetuned": "fine-tuned"}
ANSWER_ORDER = ("finetuned", "base", "kshot")
"""One model answers at a time: the one the run trained first, then what it is compared with."""
HISTORY_LIMIT = 100


class Answer:
    """One variant's answer as it arrives."""

    def __init__(self) -> None:
        self.text = ""
        self.state = "waiting"  # waiting, streaming, done, error, stopped
        self.error = ""
        self.tokens = 0
        self.first_token_s: float | None = None
        self.total_s: float | None = None
        self.verdict: Verdict | None = None


class PlaygroundScreen(Screen):
    """Try the run's models on your own input, prompts built exactly as eval builds them."""

    BINDINGS = [
        Binding("ctrl+r", "rerun", "rerun"),
        # priority: the field would take the arrows (to scroll); in the tables' text area they
        # move the cursor (check_action)
        Binding("up", "recall(-1)", "earlier", key_display="↑↓", priority=True),
        Binding("down", "recall(1)", "later", show=False, priority=True),
        # priority: the tables' text area would take the page keys
        Binding("pagedown", "example(1)", "example", key_display="PgDn/Up", priority=True),
        Binding("pageup", "example(-1)", "previous example", show=False, priority=True),
        Binding("escape", "back", "back"),
    ]

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self.plan: Any = None
        self.fields: list[str] = []
        self.position = 0
        self.example: Example | None = None
        self.history: list[dict[str, str]] = []
        self.recalled: int | None = None
        self.answers: dict[str, Answer] = {}
        self.request = 0
        self.pending: dict[str, Any] | None = None  # asked before the models were loaded
        self.server: Any = None
        self.ready: dict[str, Any] | None = None
        self.failed = ""
        self.started_at = time.monotonic()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="play-head")
        yield Static(id="play-example")
        yield Vertical(id="play-fields")
        with Horizontal(id="play-outputs"):
            for v in VARIANTS:
                with VerticalScroll(id=f"pane-{v}", classes="play-pane"):
                    yield Static(id=f"out-{v}", classes="play-out")
        yield key_footer()

    def on_mount(self) -> None:
        self.sub_title = "playground"
        try:
            self.plan = playground_plan(self.run)
        except FtuiError as exc:
            self.failed = str(exc)
            self._render_head()
            return
        first = self.plan.examples[0]
        self.fields = template_fields(self.plan, first)
        box = self.query_one("#play-fields", Vertical)
        for i, name in enumerate(self.fields):
            widget: Any
            if i == 0:
                widget = Input(placeholder=f"type a {name} and press enter", compact=True, select_on_focus=False,
                               id="field-main")
            else:
                widget = TextArea(soft_wrap=True, compact=True, id=f"field-{name}", classes="play-extra")
            box.mount(Horizontal(Label(name, classes="play-label"), widget, classes="play-row"))
        self.call_after_refresh(self._load_example, 0)
        self._render_head()
        self._render_answers()
        self._start_server()

    def on_unmount(self) -> None:
        self._stop_server()

    # -- the inference process ---------------------------------------------------------
    def _start_server(self) -> None:
        try:
            self.server = self.app.services.start_inference(self.run, self._server_said)
        except OSError as exc:
            self.failed = f"could not start the inference process: {exc}"
            self._render_head()

    def _stop_server(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()

    def _server_said(self, event: dict[str, Any]) -> None:  # the reader thread
        self.post_message(InferenceEventReceived(event))

    @on(InferenceEventReceived)
    def _event(self, message: InferenceEventReceived) -> None:
        event = message.event
        kind = event.get("event")
        if kind == "ready":
            self.ready = event
            self._render_head()
            if self.pending is not None:
                self._send(self.pending)
            elif self.server is not None and self.example is not None:
                self.server.prime(0, self._prompts(self._current_example()))
            self._render_answers()
            return
        if kind in ("failed", "exited"):
            if kind == "failed" or (self.ready is None and not self.failed):
                self.failed = event.get("message") or f"the inference process ended (exit code {event.get('code')})"
            elif kind == "exited" and self.server is not None:
                self.failed = f"the inference process ended (exit code {event.get('code')})"
            self._render_head()
            return
        if event.get("id") != self.request or event.get("variant") not in self.answers:
            return
        answer = self.answers[event["variant"]]
        if kind == "partial":
            answer.state, answer.text = "streaming", event.get("text", "")
            answer.tokens += 1
        elif kind == "done":
            answer.state, answer.text = "done", event.get("text", "")
            answer.tokens, answer.first_token_s, answer.total_s = (event.get("tokens", 0), event.get("first_token_s"),
                                                                  event.get("total_s"))
            self._judge(self.request, event["variant"], answer.text, self._current_example(), self._unedited())
        elif kind == "error":
            answer.state, answer.error = "error", event.get("message", "")
        self._render_answer(event["variant"])

    # -- asking ----------------------------------------------------------------------------
    def _values(self) -> dict[str, str]:
        values = {}
        for i, name in enumerate(self.fields):
            if i == 0:
                values[name] = self.query_one("#field-main", Input).value
            else:
                values[name] = self.query_one(f"#field-{name}", TextArea).text
        return values

    def _current_example(self) -> Example:
        assert self.example is not None
        return edited(self.example, self._values())

    def _unedited(self) -> bool:
        """The fields are the held-out example's own: its reference applies."""
        assert self.example is not None
        values = self._values()
        return all(values[n].strip() == str(self.example.fields.get(n, "")).strip() for n in self.fields)

    def _prompts(self, example: Example) -> dict[str, list[dict]]:
        """Each variant's prompt, in the order they are answered: the fine-tuned model first."""
        variants = [v for v in ANSWER_ORDER if self.ready is None or v in self.ready.get("variants", VARIANTS)]
        return prompts(self.plan, example, variants)

    @on(Input.Submitted, "#field-main")
    def _submitted(self) -> None:
        self.action_rerun()

    def action_rerun(self) -> None:
        if self.plan is None or self.example is None:
            return
        values = self._values()
        if not values[self.fields[0]].strip():
            self.notify(f"type a {self.fields[0]} first", severity="warning")
            return
        if not self.history or self.history[-1] != values:
            self.history = (self.history + [values])[-HISTORY_LIMIT:]
        self.recalled = None
        self.request += 1
        example = self._current_example()
        request = {"id": self.request, "prompts": self._prompts(example)}
        self.answers = {v: Answer() for v in request["prompts"]}
        if self.ready is None:
            self.pending = request
        else:
            self._send(request)
        self._render_answers()

    def _send(self, request: dict[str, Any]) -> None:
        self.pending = None
        if request["id"] != self.request:
            return
        if self.server is None or not self.server.generate(request["id"], request["prompts"],
                                                          max_new_tokens=self.plan.settings.max_new_tokens):
            self.failed = self.failed or "the inference process is gone"
            self._render_head()

    @work(thread=True, group="judge", exit_on_error=False)
    def _judge(self, request: int, variant: str, text: str, example: Example, unedited: bool) -> None:
        verdict = judge(self.plan, text, example, unedited=unedited)
        self.app.call_from_thread(self._judged, request, variant, verdict)

    def _judged(self, request: int, variant: str, verdict: Verdict) -> None:
        if request == self.request and variant in self.answers:
            self.answers[variant].verdict = verdict
            self._render_answer(variant)

    # -- held-out examples and history -------------------------------------------------------
    def _load_example(self, position: int) -> None:
        if self.plan is None:
            return
        self.position = position % len(self.plan.examples)
        self.example = self.plan.examples[self.position]
        self._fill(self.example.fields if self.example.messages is None
                   else {"input": self.example.fields.get("input", "")})
        self.query_one("#field-main", Input).cursor_position = 0  # the question's beginning in view
        self._render_example_line()

    def _fill(self, values: dict[str, Any]) -> None:
        for i, name in enumerate(self.fields):
            value = str(values.get(name, ""))
            if i == 0:
                main = self.query_one("#field-main", Input)
                main.value = value
                main.cursor_position = len(value)
            else:
                self.query_one(f"#field-{name}", TextArea).load_text(value)
        self.query_one("#field-main", Input).focus()

    def action_example(self, step: int) -> None:
        if self.plan is None:
            return
        if self.answers:  # they answered another input: an answer in progress ends, the panes clear
            self.request += 1
            self.answers = {}
            if self.server is not None:
                self.server.stop()
            self._render_answers()
        self._load_example(self.position + step)

    def action_recall(self, step: int) -> None:
        if not self.history:
            return
        if self.recalled is None:
            if step > 0:
                return
            self.recalled = len(self.history) - 1
        else:
            self.recalled = max(0, min(len(self.history) - 1, self.recalled + step))
        self._fill(self.history[self.recalled])

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()  # the history keys apply in the typed field only

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "recall":  # arrows move the cursor in the tables' text area
            return isinstance(self.focused, Input)
        return True

    def action_back(self) -> None:
        self.app.go_back()

    # -- rendering ---------------------------------------------------------------------------
    def _render_head(self) -> None:
        spec = self.run.spec
        items: list[Text] = [Text.assemble(("run ", "dim"), (self.run.id, "bold")), Text(str(spec.preset or spec.task)),
                             Text(f"{spec.backend} {fmt.short(spec.model, 28)}")]
        if self.failed:
            items.append(Text(self.failed, style="bold red"))
        elif self.ready is None:
            items.append(Text("loading the models…", style="bold cyan"))
        else:
            ready = self.ready
            items.append(Text(f"loaded in {ready.get('load_s', 0):.1f} s (start-up {ready.get('import_s', 0):.1f} s)"))
            items.append(Text(str(ready.get("describe", "")), style="dim"))
        self.query_one("#play-head", Static).update(Flow(items))

    def _render_example_line(self) -> None:
        if self.plan is None or self.example is None:
            return
        line = Text()
        line.append(f"held-out example {self.position + 1} of {len(self.plan.examples)}", style="bold")
        line.append(f" · {self.example.where} · edit it, enter asks all three", style="dim")
        self.query_one("#play-example", Static).update(line)

    def _render_answers(self) -> None:
        for v in VARIANTS:
            self._render_answer(v)

    def _render_answer(self, variant: str) -> None:
        pane = self.query_one(f"#out-{variant}", Static)
        title = Text(TITLES[variant], style="bold")
        if variant == "kshot" and self.plan is not None:
            title.append(f" ({len(self.plan.shots)} shots)", style="dim")
        available = self.ready.get("variants", VARIANTS) if self.ready else VARIANTS
        if variant not in available:
            pane.update(Group(title, Text("no trained weights yet", style="dim")))
            return
        answer = self.answers.get(variant)
        if answer is None:
            pane.update(Group(title, Text("press enter to ask", style="dim")))
            return
        pane.update(Group(title, *render_answer(answer, self.run.spec.task, dark=self.app.current_theme.dark)))


def render_answer(answer: Answer, task: str, *, dark: bool) -> list[RenderableType]:
    """An answer's text, badge, timings and (sql) result rows."""
    if answer.state == "waiting":
        return [Text("waiting…", style="dim")]
    if answer.state == "error":
        return [Text(answer.error, style="bold red")]
    parts: list[RenderableType] = []
    if answer.state == "streaming":
        parts.append(Text(answer.text + "▌"))
        return parts
    parts.append(code(answer.text, lexer_for(task), dark=dark) if answer.text else Text("(empty)", style="dim"))
    verdict = answer.verdict
    if verdict is not None:
        parts.append(badge(verdict))
    timing = Text(style="dim")
    if answer.first_token_s is not None:
        timing.append(f"first token {answer.first_token_s:.2f} s · ")
    timing.append(f"{answer.tokens} tokens" + (f" in {answer.total_s:.1f} s" if answer.total_s is not None else ""))
    parts.append(timing)
    if verdict is not None and verdict.shows_rows:
        parts.append(rows_text(verdict))
    return parts


def badge(verdict: Verdict) -> Text:
    out = Text()
    if verdict.valid is None:
        out.append(" no validity rule ", style="dim")
    elif verdict.valid:
        out.append(" ✓ valid ", style="bold green")
    else:
        out.append(" ✗ invalid ", style="bold red")
    if verdict.correct is not None:
        out.append(" = reference " if verdict.correct else " ≠ reference ",
                   style="bold green" if verdict.correct else "yellow")
    if verdict.error and not verdict.valid:
        out.append(f"\n{verdict.error}", style="red")
    return out


def rows_text(verdict: Verdict) -> Text:
    """The query's result rows, one line each (columns separated by │)."""
    if verdict.result_error:
        return Text("no rows: it does not run", style="dim")
    out = Text()
    out.append(" │ ".join(verdict.columns) or "(no columns)", style="bold")
    if not verdict.rows:
        out.append("\n(no rows)", style="dim")
    for row in verdict.rows:
        out.append("\n" + " │ ".join("NULL" if v is None else str(v) for v in row))
    if verdict.more_rows:
        out.append(f"\n… {verdict.more_rows} more", style="dim")
    return out
