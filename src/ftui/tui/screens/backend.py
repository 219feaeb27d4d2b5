"""Backend screen: local settings (method, LoRA...) with the plan (steps, tokens, time), the memory
fit and the hardware, or OpenAI (the service's wind-down first) with its cost; start. The plan's and
the memory fit's words are in ``local_plan``, the Local form's fields and their checks in ``local_form``.

The one place outside ``ftui/backends`` that names backends: it holds a settings form for each
shipped backend (the two tabs). Everything else comes from the registry (``core.backends``); a
backend without a form here starts from the CLI or a study and shows in every other screen.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.markup import escape
from textual.widgets import Button, Collapsible, Input, Label, Select, Static, TabbedContent, TabPane

from ftui.core.config import (METHOD_LEARNING_RATES, METHODS, QUANTIZABLE_METHODS, TRACKERS, LocalSettings,
                              same_rate_family)
from ftui.core.errors import FtuiError
from ftui.core.machine import Machine
from ftui.core.openai_prep import WIND_DOWN, spend_check
from ftui.core.plan import MeasuredSpeed, TokenCounts, measured_speeds
from ftui.core.runs import Run, list_runs
from ftui.tui.widgets.flow_header import FlowHeader
from ftui.tui.widgets.keys import key_footer
from ftui.tui.widgets.tick import TickBox
from ftui.tui import fmt
from ftui.tui.choice import DatasetChoice
from ftui.tui.messages import TokensCounted
from ftui.tui.screens.local_form import (GROUPS, LABELS, LOCAL_FIELDS, LOCAL_GRIDS, METHOD_ONLY, SELECTS, applies,
                                         form_grid, group_title, named_setting, quantization_refusal, setting_problem,
                                         shown)
from ftui.tui.screens.local_plan import FIT_FIELDS, PLAN_SETTINGS, fit_view, plan_view
from ftui.tui.screens.modals import ConfirmModal

PREFLIGHT_DELAY_S = 0.5


def openai_prices() -> tuple[dict[str, float], str]:
    """Training price per 1M tokens by model, and the table's date."""
    from ftui.core.openai_prep import PRICES_AS_OF, TRAINING_PRICE_PER_1M  # core; loaded when the screen opens

    return dict(TRAINING_PRICE_PER_1M), str(PRICES_AS_OF)


def openai_training_price(model: str) -> float | None:
    """USD per 1M training tokens for a model id (a dated snapshot maps to its family)."""
    from ftui.core.openai_prep import training_price

    return training_price(model)


def openai_key_present() -> bool:
    """Whether an API key is in the environment (never its value)."""
    from ftui.core.openai_prep import key_present

    return bool(key_present())


class BackendScreen(Screen):
    """Step 2 of the flow: where and how to train, then start a detached run."""

    BINDINGS = [
        Binding("ctrl+s", "start", "Start"),
        Binding("ctrl+t", "toggle_backend", "Local/OpenAI"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, choice: DatasetChoice) -> None:
        super().__init__()
        self.choice = choice
        self.machine: Machine | None = None
        self.preflight: Any = None
        self.preflight_error = ""
        self._preflight_timer: Timer | None = None
        self.starting = False
        self.prices, self.prices_as_of = openai_prices()
        self.speeds: list[MeasuredSpeed] | None = None
        """Training speeds earlier local runs measured on this machine (None until read)."""
        self.problems: dict[str, str] = {}
        """Field -> what is wrong with its value (shown under its grid)."""
        self.refused: str | None = None
        """The field the last refusal at Start named."""

    # -- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        c = self.choice
        yield FlowHeader("backend")
        split = c.report.split or {}
        yield Static(Text.assemble(("data ", "dim"), (c.name, "bold"), f" · task {c.task} · ",
                                   ", ".join(f"{k} {v:,}" for k, v in split.items())), id="backend-head")
        with TabbedContent(id="backend-tabs", initial="local"):
            with TabPane("Local", id="local"):
                # Not a stop of its own in the Tab order: the fields are, and focusing one scrolls to it.
                with VerticalScroll(id="local-scroll", can_focus=False):
                    for grid_id, fields in LOCAL_GRIDS.items():
                        if grid_id in GROUPS:
                            with Collapsible(title=GROUPS[grid_id], id=f"{grid_id}-group", classes="form-group"):
                                yield from form_grid(grid_id, fields, c.backends["local"])
                        else:
                            yield from form_grid(grid_id, fields, c.backends["local"])
                        if grid_id == "method-form":
                            yield Static(id="method-help", classes="hint")
                    yield Static(id="plan-text")
                    yield Static(id="fit-text", classes="pane")
                    yield Static(id="machine-text", classes="pane")
            with TabPane("OpenAI", id="openai"):
                with VerticalScroll(id="openai-scroll", can_focus=False):
                    yield Static(f"{WIND_DOWN} The Local tab (ctrl+t) trains it on this machine.",
                                 id="wind-down")
                    with Grid(id="openai-form", classes="form"):
                        yield Label("base model", classes="label")
                        yield self._openai_models()
                        yield Label("epochs", classes="label")
                        yield Input(shown(c.backends["openai"].n_epochs), id="oa-n_epochs", compact=True,
                                    placeholder="auto or a number")
                        yield Label("budget $", classes="label")
                        yield Input(shown(c.backends["openai"].budget_usd), id="oa-budget_usd", compact=True)
                    yield Static(id="key-text", classes="pane")
                    yield Static(id="estimate-text", classes="pane")
        with Horizontal(id="report-bar"):  # both tabs: the runner reports either backend's events
            yield Label("report to", classes="label")
            for name, where in TRACKERS.items():
                box = TickBox(name, False, id=f"report-{name}", compact=True)
                box.tooltip = where
                yield box
        with Horizontal(id="start-bar"):
            yield Button("Start training", variant="success", id="start", compact=True)
            yield Static("", id="start-error")
        yield key_footer()

    def _openai_models(self) -> Select:
        default = self.choice.backends["openai"].model
        names = list(self.prices) or [default]
        if default not in names:
            names.insert(0, default)
        options = []
        for n in names:
            price = openai_training_price(n)
            label = f"{n}  ${price:g}/1M training tokens" if price is not None else f"{n}  (price unknown)"
            options.append((label, n))
        return Select(options, value=default, allow_blank=False, id="oa-model", compact=True, classes="span3")

    def on_mount(self) -> None:
        self.query_one("#f-method", Select).focus()  # the first field: Tab goes down the form to Start
        self.query_one("#machine-text", Static).update(Text("detecting hardware…", style="dim"))
        self._update_method()
        self._update_key()
        self._detect()
        self._read_speeds()

    # -- hardware and memory fit ---------------------------------------------------------
    @work(thread=True, exclusive=True, group="detect", exit_on_error=False)
    def _detect(self) -> None:
        try:
            machine = self.app.services.detect_machine()
        except Exception as exc:  # noqa: BLE001 - a broken probe must not take the screen down
            self.app.call_from_thread(self.query_one("#machine-text", Static).update,
                                      Text(f"hardware detection failed: {exc}", style="yellow"))
            return
        self.app.call_from_thread(self._machine_detected, machine)

    def _machine_detected(self, machine: Machine) -> None:
        self.machine = machine
        first, *rest = machine.lines()
        rest[-2:] = [" · ".join(rest[-2:])]  # CPU and bf16 on one line: 80x24 shows form, plan and verdict
        lines = [Text.assemble(("this machine  ", "bold"), first)] + [Text("  " + line) for line in rest]
        if not machine.cuda:
            lines.append(Text("  quantization (QLoRA 4-bit/8-bit) needs a CUDA GPU", style="dim"))
        self.query_one("#machine-text", Static).update(Group(*lines))
        self._update_method()

    @property
    def method(self) -> str:
        return self._value("method")

    def _default_rate(self, method: str) -> float:
        """The learning rate ``method`` starts at: the preset's for its own method (between lora
        and dora too), else the method's own (``config.METHOD_LEARNING_RATES``), as ``--set method=`` does."""
        preset = self.choice.backends["local"]
        if same_rate_family(method, preset.method) or method not in METHOD_LEARNING_RATES:
            return preset.learning_rate
        return METHOD_LEARNING_RATES[method]

    def _update_method(self) -> None:
        """The chosen method's explanation, its fields, its quantization choices, its estimate;
        a learning rate left at the last method's default moves to this method's."""
        method = self.method
        rate = self.query_one("#f-learning_rate", Input)
        shown = getattr(self, "_method_shown", None)
        if shown is not None and shown != method:
            try:
                untouched = float(rate.value) == self._default_rate(shown)
            except ValueError:
                untouched = False
            if untouched:
                with rate.prevent(Input.Changed):
                    rate.value = f"{self._default_rate(method):g}"
        self._method_shown = method
        self.query_one("#method-help", Static).update(METHODS[method])
        for name in METHOD_ONLY:
            self.query_one(f"#label-{name}").display = self.query_one(f"#f-{name}").display = applies(name, method)
        self._show_problems()  # a hidden field's problem goes with it
        self._update_quantization()
        self._update_fit()
        self._update_plan()

    def _update_quantization(self) -> None:
        select = self.query_one("#f-quantization", Select)
        cuda = bool(self.machine and self.machine.cuda)
        quantizable = self.method in QUANTIZABLE_METHODS
        options = SELECTS["quantization"] if cuda and quantizable else ("none",)
        current = select.value if select.value in options else "none"
        with select.prevent(Select.Changed):  # the caller updates the estimate once
            select.set_options([(o, o) for o in options])
            select.value = current
        select.disabled = len(options) == 1
        if not quantizable:
            select.tooltip = quantization_refusal(self.method)
        elif not cuda:
            select.tooltip = "4-bit and 8-bit loading (QLoRA) need a CUDA GPU"
        else:
            select.tooltip = None

    def _value(self, name: str) -> str:
        value = str(self.query_one(f"#f-{name}").value).strip()
        return "-1" if name == "max_steps" and not value else value

    # -- what is wrong with a field ------------------------------------------------------
    def _check(self, name: str) -> None:
        """Check a field as ``--set`` would read it, as it changes; the free-form field is
        checked at Start (its settings depend on each other and on the form's)."""
        problem = None if name == "extra" else setting_problem(name, self._value(name), self.choice.backends["local"])
        self._mark(name, None if problem is None else f"{LABELS[name]}: {problem}")

    def _mark(self, name: str, problem: str | None) -> None:
        """Show ``problem`` on field ``name`` (tinted: tcss .refused) and under its grid; None clears it."""
        if problem is None:
            self.problems.pop(name, None)
        else:
            self.problems[name] = problem
        self.query_one(f"#f-{name}").set_class(problem is not None, "refused")
        self._show_problems()

    def _show_problems(self) -> None:
        method = self.method
        for grid_id, fields in LOCAL_GRIDS.items():
            lines = [self.problems[n] for n, _, _ in fields if n in self.problems and applies(n, method)]
            out = self.query_one(f"#{grid_id}-problems", Static)
            out.update(Text("\n".join(lines)))
            out.set_class(not lines, "hidden")

    def _show_failure(self, message: str) -> None:
        """Mark the field a refusal at Start names (the free-form field when the setting was
        typed there: it is read last), opening its group, and go to it."""
        extra = self._extra()
        name = named_setting(message, [*extra, *(n for n in LABELS if n != "extra" and applies(n, self.method))])
        if name is None:
            return
        name = "extra" if name in extra else name
        self.refused = name
        self._mark(name, message)
        field = self.query_one(f"#f-{name}")
        for group in field.ancestors:
            if isinstance(group, Collapsible):
                group.collapsed = False
        self.call_after_refresh(field.focus)

    def _update_group(self) -> None:
        """Each group's title, with what it changes from the preset (seen while it is collapsed)."""
        defaults: LocalSettings = self.choice.backends["local"]
        for grid_id, title in GROUPS.items():
            changed = [(label, self._value(name)) for name, label, _ in LOCAL_GRIDS[grid_id]
                       if self._value(name) != shown(getattr(defaults, name))]
            self.query_one(f"#{grid_id}-group", Collapsible).title = escape(group_title(title, changed))

    def _update_fit(self) -> None:
        method = self.method
        self.query_one("#fit-text", Static).update(fit_view(
            {name: self._value(name) for name in FIT_FIELDS if applies(name, method)}, method=method,
            defaults=self.choice.backends["local"], machine=self.machine, tokens=self.tokens(), labels=LABELS))

    # -- the plan: steps, tokens and time ------------------------------------------------
    def tokens(self) -> TokenCounts | None:
        """The data's token counts, once the Dataset screen's count has come back."""
        return TokenCounts.from_report(self.app.token_cache.get(self.choice.key))

    def _extra(self) -> dict[str, str]:
        """The free-form field's ``key=value`` items by setting (``local.`` written or not)."""
        items = (item.partition("=") for item in self._value("extra").split())
        return {key.removeprefix("local."): value for key, sep, value in items if sep}

    def _plan_setting(self, name: str, extra: dict[str, str]) -> str:
        """A setting the plan reads: the free-form field's (read last, so it wins), the form's,
        or the preset's."""
        if name in extra:
            return extra[name]
        if name in LABELS:
            return self._value(name)
        return shown(getattr(self.choice.backends["local"], name))

    def _update_plan(self) -> None:
        extra = self._extra()
        self.query_one("#plan-text", Static).update(plan_view(
            {name: self._plan_setting(name, extra) for name in PLAN_SETTINGS},
            examples=(self.choice.report.split or {}).get("train", 0), tokens=self.tokens(),
            counted=self.choice.key in self.app.token_cache, speeds=self.speeds, model=self._value("model"),
            method=self.method, gpus=len(self.machine.gpus) if self.machine else 0))

    @work(thread=True, exclusive=True, group="speeds", exit_on_error=False)
    def _read_speeds(self) -> None:
        try:
            speeds = measured_speeds(list_runs())
        except (OSError, ValueError):  # an unreadable runs folder: no measurement, said so
            speeds = []
        self.app.call_from_thread(self._speeds_read, speeds)

    def _speeds_read(self, speeds: list[MeasuredSpeed]) -> None:
        self.speeds = speeds
        self._update_plan()

    def on_tokens_counted(self, message: TokensCounted) -> None:
        if message.key == self.choice.key:
            self._update_fit()
            self._update_plan()

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self, event) -> None:
        control_id = event.control.id or ""
        if control_id.startswith("f-"):
            self._check(control_id.removeprefix("f-"))
        if control_id == "f-method":
            self._update_method()
        elif control_id.startswith("f-"):
            self._update_group()
            self._update_fit()
            self._update_plan()
        elif control_id.startswith("oa-"):
            self._schedule_preflight()

    # -- OpenAI --------------------------------------------------------------------------
    def _update_key(self) -> None:
        present = openai_key_present()
        text = Text.assemble(("API key  ", "bold"),
                             ("OPENAI_API_KEY is set" if present else "OPENAI_API_KEY is not set: "
                              "export it in the shell that starts ftui", "green" if present else "yellow"))
        if self.prices_as_of:
            text.append(f"\nprices as of {self.prices_as_of}", style="dim")
        self.query_one("#key-text", Static).update(text)

    @on(TabbedContent.TabActivated, "#backend-tabs")
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self._update_key()
        if self.backend == "openai" and self.preflight is None:
            self._schedule_preflight(0.05)
        self.query_one("#start-error", Static).update("")

    @property
    def backend(self) -> str:
        return self.query_one("#backend-tabs", TabbedContent).active or "local"

    def openai_overrides(self) -> list[str]:
        c = self.choice.backends["openai"]
        out = []
        for name in ("model", "n_epochs", "budget_usd"):
            value = str(self.query_one(f"#oa-{name}").value).strip()
            if value != shown(getattr(c, name)):
                out.append(f"{name}={value}")
        return out

    def _schedule_preflight(self, delay: float = PREFLIGHT_DELAY_S) -> None:
        if self._preflight_timer is not None:
            self._preflight_timer.stop()
        self.preflight = None
        self.query_one("#estimate-text", Static).update(Text("estimating cost…", style="dim"))
        self._preflight_timer = self.set_timer(delay, lambda: self._preflight_worker(self.openai_overrides()))

    @work(thread=True, exclusive=True, group="preflight", exit_on_error=False)
    def _preflight_worker(self, overrides: list[str]) -> None:
        from ftui.core.openai_prep import preflight  # core: no SDK

        try:
            result = preflight(self.choice.request(backend="openai", overrides=overrides))
        except FtuiError as exc:
            self.app.call_from_thread(self._preflight_done, None, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - shown, not raised: the screen stays usable
            self.app.call_from_thread(self._preflight_done, None, f"cost estimate failed: {exc}")
            return
        self.app.call_from_thread(self._preflight_done, result, "")

    def _preflight_done(self, result: Any, error: str) -> None:
        self.preflight, self.preflight_error = result, error
        out = self.query_one("#estimate-text", Static)
        if result is None:
            out.update(Text.assemble(("cost estimate  ", "bold"), (error, "yellow")))
            return
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        for line in result.lines(key=False):  # the key's line is above the estimate, once
            style = "bold red" if line.startswith("problem") else "yellow" if line.startswith("warning") else \
                "bold yellow" if "ABOVE BUDGET" in line else ""
            labelled = re.match(r"^(\S.{0,20}?)\s{2,}(.*)$", line)  # "label     value" lines
            label, value = labelled.groups() if labelled else ("", line)
            grid.add_row(label, Text(value, style=style))
        if result.over_budget:
            grid.add_row("", Text(f"above the budget of {fmt.money(result.budget_usd)}: starting asks first",
                                  style="bold yellow"))
        out.update(Group(Text("cost estimate", style="bold"), grid))

    # -- actions -------------------------------------------------------------------------
    def action_toggle_backend(self) -> None:
        tabs = self.query_one("#backend-tabs", TabbedContent)
        target = "openai" if tabs.active == "local" else "local"
        # Focus first: a focused field in the other pane would pull its tab back to the front.
        self.query_one("#oa-model" if target == "openai" else "#f-method").focus()
        tabs.active = target

    def action_back(self) -> None:
        self.app.pop_screen()

    def local_overrides(self) -> list[str]:
        """``key=value`` settings that differ from the preset's, plus the free-form ones."""
        defaults: LocalSettings = self.choice.backends["local"]
        out = []
        for name, _, _ in LOCAL_FIELDS:
            if name == "extra" or not applies(name, self.method):
                continue
            value = self._value(name)
            if value != shown(getattr(defaults, name)):
                out.append(f"{name}={value}")
        return out + self._value("extra").split()

    def report_overrides(self) -> list[str]:
        """``report_to=…`` for the ticked trackers (none ticked: nothing, the default is off)."""
        ticked = [name for name in TRACKERS if self.query_one(f"#report-{name}", TickBox).value]
        return [f"report_to={','.join(ticked)}"] if ticked else []

    def _error(self, message: str) -> None:
        self.query_one("#start-error", Static).update(Text(message, style="bold red"))
        self.notify(message, severity="error", title="Cannot start")

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        if self.starting:
            return
        self.query_one("#start-error", Static).update("")
        if self.refused is not None:  # the last Start's refusal: Start checks again, the field afresh
            self._check(self.refused)
            self.refused = None
        if self.backend == "local":
            self._prepare_and_launch("local", self.report_overrides() + self.local_overrides())
            return
        overrides = self.report_overrides() + self.openai_overrides()
        if not openai_key_present():  # the key's line above says what to do: no toast repeating it
            self._update_key()
            message = Text("not started: no API key (see above)", style="bold red")
            self.query_one("#start-error", Static).update(message)
            return
        if self.preflight is None:
            question = (f"No cost estimate ({self.preflight_error or 'still estimating'}). "
                        "Start the OpenAI fine-tuning job anyway?")
            self.app.push_screen(ConfirmModal(question, yes="Start"),
                                 lambda ok: ok and self._prepare_and_launch("openai", overrides))
            return
        check = spend_check(self.preflight)  # the same decision as the CLI's (core.backends.spend_gate)
        if check.missing_credentials or check.problems:
            self._error(check.missing_credentials or "; ".join(check.problems))
            return
        if check.over_budget:
            self.app.push_screen(ConfirmModal(check.question, yes="Start, spend it", no="Don't start"),
                                 lambda ok: ok and self._prepare_and_launch("openai", overrides))
            return
        self._prepare_and_launch("openai", overrides)

    def _prepare_and_launch(self, backend: str, overrides: list[str]) -> None:
        self.starting = True
        self.query_one("#start", Button).disabled = True
        self.query_one("#start-error", Static).update(Text("preparing the run…", style="dim"))
        self._launch_worker(backend, overrides)

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def _launch_worker(self, backend: str, overrides: list[str]) -> None:
        from ftui.core.request import prepare_run

        try:
            run = prepare_run(self.choice.request(backend=backend, overrides=overrides))
            self.app.services.launch(run)
        except (FtuiError, OSError) as exc:
            self.app.call_from_thread(self._launch_failed, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bug below must still leave the form usable
            self.app.call_from_thread(self._launch_failed, f"could not start: {type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._launched, run)

    def _launch_failed(self, message: str) -> None:
        self.starting = False
        self.query_one("#start", Button).disabled = False
        self._error(message)
        self._show_failure(message)

    def _launched(self, run: Run) -> None:
        self.app.notify(f"run {run.id} started; it keeps going if you quit", title="Started")
        self.app.run_started(run, replacing=self)
