"""Before spending on OpenAI: the training file in OpenAI's chat format, exact token counts
computed offline, the epochs ``auto`` would pick, and the cost from one dated price table.

Nothing here talks to the network or imports the ``openai`` SDK: the TUI and ``ftui data
check`` use it too. Token counts use ``bpe-openai``, which ships the o200k and cl100k
vocabularies (tiktoken would download them on first use).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ftui.core.backends import SpendCheck
from ftui.core.config import EvalSettings, OpenAISettings, PromptTemplate
from ftui.core.examples import Example
from ftui.core.prompts import conversation, render_messages

if TYPE_CHECKING:
    from ftui.core.request import Resolved, RunRequest

WIND_DOWN = (
    "OpenAI has closed self-serve fine-tuning to new users and is winding it down: most organisations "
    "cannot start new jobs during 2026, and nobody can after 2027-01-06."
)
"""The service's state, as the README says it: the runner's refusal (HTTP 403) and the TUI's
OpenAI tab quote it."""

PRICES_AS_OF = "2026-06"
"""Date of the tables below, as OpenAI published them. Prices move; check openai.com/api/pricing."""

TRAINING_PRICE_PER_1M: dict[str, float] = {
    # USD per 1M training tokens (tokens x epochs), supervised fine-tuning.
    "gpt-4.1": 25.00,
    "gpt-4.1-mini": 5.00,
    "gpt-4.1-nano": 1.50,
    "gpt-4o": 25.00,
    "gpt-4o-mini": 3.00,
    "gpt-3.5-turbo": 8.00,
}

INFERENCE_PRICE_PER_1M: dict[str, tuple[float, float, float, float]] = {
    # USD per 1M tokens: (input, output) of the base model, then (input, output) of a
    # fine-tuned model of it; standard tier, from OpenAI's pricing page.
    "gpt-4.1": (2.00, 8.00, 3.00, 12.00),
    "gpt-4.1-mini": (0.40, 1.60, 0.80, 3.20),
    "gpt-4.1-nano": (0.10, 0.40, 0.20, 0.80),
    "gpt-4o": (2.50, 10.00, 3.75, 15.00),
    "gpt-4o-mini": (0.15, 0.60, 0.30, 1.20),
    "gpt-3.5-turbo": (0.50, 1.50, 3.00, 6.00),
}

# OpenAI's published heuristics (the "Data preparation and analysis for chat model
# fine-tuning" notebook of openai-cookbook): the epochs `auto` picks and the billing cap.
MIN_EXAMPLES = 10
"""The fine-tuning API refuses a training file with fewer examples."""
MAX_TOKENS_PER_EXAMPLE = 16385
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25

ROLES = ("system", "developer", "user", "assistant", "tool")
KEY_VARIABLES = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")


def key_present() -> bool:
    """Whether an API key is in the environment (the key itself is never read out here)."""
    return any(os.environ.get(name) for name in KEY_VARIABLES)


def price_key(model: str) -> str | None:
    """The price-table entry for a model id (``gpt-4.1-nano-2025-04-14``, ``ft:gpt-4o-mini:...``)."""
    base = model[3:].split(":", 1)[0] if model.startswith("ft:") else model
    matches = [k for k in TRAINING_PRICE_PER_1M if base == k or base.startswith(k + "-")]
    return max(matches, key=len) if matches else None


def training_price(model: str) -> float | None:
    """USD per 1M training tokens, or None for a model not in the table."""
    key = price_key(model)
    return TRAINING_PRICE_PER_1M[key] if key else None


def inference_price(model: str) -> tuple[float, float] | None:
    """USD per 1M (input, output) tokens; fine-tuned (``ft:``) models cost more."""
    key = price_key(model)
    if key is None:
        return None
    base_in, base_out, ft_in, ft_out = INFERENCE_PRICE_PER_1M[key]
    return (ft_in, ft_out) if model.startswith("ft:") else (base_in, base_out)


def auto_epochs(n_train: int) -> int:
    """The epoch count OpenAI's ``auto`` picks for ``n_train`` examples (published heuristic)."""
    if n_train <= 0:
        return TARGET_EPOCHS
    if n_train * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_train)
    if n_train * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_train)
    return TARGET_EPOCHS


# -- the chat format --------------------------------------------------------------------------

def chat_record(example: Example, template: PromptTemplate) -> dict[str, Any]:
    """One line of the training file: ``{"messages": [...]}`` plus ``tools`` when the source had them."""
    record: dict[str, Any] = {"messages": conversation(example, template)}
    for key in ("tools", "parallel_tool_calls"):
        if key in example.extra:
            record[key] = example.extra[key]
    return record


def check_chat_record(record: Mapping[str, Any]) -> list[str]:
    """What OpenAI's file validation would refuse in one training line (empty: fine)."""
    problems: list[str] = []
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["'messages' must be a non-empty list"]
    call_ids: set[str] = set()
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            problems.append(f"{where}: must be an object")
            continue
        role = m.get("role")
        if role not in ROLES:
            problems.append(f"{where}.role: must be one of {', '.join(ROLES)}, got {role!r}")
            continue
        unknown = set(m) - {"role", "content", "name", "weight", "tool_calls", "tool_call_id",
                            "function_call", "refusal"}
        if unknown:
            problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            problems.append(f"{where}.content: must be text or a list of parts")
        if "weight" in m and (role != "assistant" or m["weight"] not in (0, 1)):
            problems.append(f"{where}.weight: only assistant turns take a weight, 0 or 1")
        if role == "assistant":
            calls = m.get("tool_calls")
            if calls is not None:
                problems += _check_tool_calls(calls, where, call_ids)
            elif not content:
                problems.append(f"{where}: an assistant turn needs content or tool_calls")
        elif role == "tool":
            if not isinstance(m.get("tool_call_id"), str):
                problems.append(f"{where}.tool_call_id: a tool turn must name the call it answers")
            elif m["tool_call_id"] not in call_ids:
                problems.append(f"{where}.tool_call_id: no earlier tool call has id {m['tool_call_id']!r}")
        elif not content:
            problems.append(f"{where}.content: empty {role} turn")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        problems.append("messages: no assistant turn to learn from")
    tools = record.get("tools")
    if tools is not None:
        problems += _check_tools(tools)
    return problems


def _check_tool_calls(calls: Any, where: str, call_ids: set[str]) -> list[str]:
    if not isinstance(calls, list) or not calls:
        return [f"{where}.tool_calls: must be a non-empty list"]
    problems = []
    for j, call in enumerate(calls):
        w = f"{where}.tool_calls[{j}]"
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            problems.append(f"{w}: must be {{'id', 'type': 'function', 'function': {{...}}}}")
            continue
        if not isinstance(call.get("id"), str):
            problems.append(f"{w}.id: missing")
        else:
            call_ids.add(call["id"])
        fn = call.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            problems.append(f"{w}.function.name: missing")
        elif not isinstance(fn.get("arguments"), str):
            problems.append(f"{w}.function.arguments: must be a JSON string")
        else:
            try:
                json.loads(fn["arguments"])
            except ValueError:
                problems.append(f"{w}.function.arguments: not valid JSON")
    return problems


def _check_tools(tools: Any) -> list[str]:
    if not isinstance(tools, list):
        return ["tools: must be a list"]
    problems = []
    for j, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            problems.append(f"tools[{j}]: must be {{'type': 'function', 'function': {{'name', ...}}}}")
        elif "parameters" in fn and not isinstance(fn["parameters"], dict):
            problems.append(f"tools[{j}].function.parameters: must be a JSON Schema object")
    return problems


# -- token counts -----------------------------------------------------------------------------

def encoding_name(model: str) -> str:
    """The tokenizer of an OpenAI model family: o200k for gpt-4o and later, cl100k before."""
    base = model[3:] if model.startswith("ft:") else model
    return "cl100k_base" if base.startswith(("gpt-3.5", "gpt-4-", "gpt-4:")) or base == "gpt-4" else "o200k_base"


@lru_cache(maxsize=4)
def _encoding(name: str) -> Any:
    import bpe_openai  # compiled tokenizer with its vocabularies on disk; loaded on first count

    return bpe_openai.get_encoding(name)


def count_text(text: str, model: str) -> int:
    return len(_encoding(encoding_name(model)).encode_ordinary(text))


def count_messages(messages: Sequence[Mapping[str, Any]], model: str, tools: Any = None) -> int:
    """Tokens of a conversation as OpenAI counts chat input: 3 per turn, 1 per name, 3 to prime
    the reply (the cookbook's formula). Tool calls and tool definitions count as their JSON text.
    """
    enc = _encoding(encoding_name(model))
    n = 3
    for m in messages:
        n += 3
        for key, value in m.items():
            if key == "weight":
                continue
            if not isinstance(value, str):
                value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            n += len(enc.encode_ordinary(value))
            n += 1 if key == "name" else 0
    if tools:
        n += len(enc.encode_ordinary(json.dumps(tools, ensure_ascii=False, separators=(",", ":"))))
    return n


def billed_tokens(records: Sequence[Mapping[str, Any]], model: str) -> tuple[int, list[int]]:
    """(tokens billed per epoch, per-example counts): each example capped at the context limit."""
    counts = [count_messages(r["messages"], model, r.get("tools")) for r in records]
    return sum(min(MAX_TOKENS_PER_EXAMPLE, c) for c in counts), counts


# -- the pre-flight -----------------------------------------------------------------------------

@dataclass
class Preflight:
    """What an OpenAI run would send and cost, checked before anything is spent."""

    model: str
    n_train: int
    n_val: int
    n_test: int
    train_tokens: int
    """Billed tokens of one epoch of the training file."""
    n_epochs: int
    epochs_auto: bool
    train_usd: float | None
    """tokens x epochs x price; None for a model missing from the price table."""
    eval_usd: float | None
    """Estimated inference cost of evaluating base, k-shot and fine-tuned on the test split."""
    budget_usd: float
    key_present: bool
    price_per_1m: float | None
    longest: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def total_usd(self) -> float | None:
        if self.train_usd is None:
            return None
        return self.train_usd + (self.eval_usd or 0.0)

    @property
    def over_budget(self) -> bool:
        return self.total_usd is not None and self.total_usd > self.budget_usd

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "n_train": self.n_train, "n_val": self.n_val, "n_test": self.n_test,
            "train_tokens_per_epoch": self.train_tokens, "n_epochs": self.n_epochs,
            "epochs_auto": self.epochs_auto, "price_per_1m_training_tokens": self.price_per_1m,
            "train_usd": _round(self.train_usd), "eval_usd": _round(self.eval_usd),
            "total_usd": _round(self.total_usd), "budget_usd": self.budget_usd,
            "over_budget": self.over_budget, "key_present": self.key_present,
            "prices_as_of": PRICES_AS_OF, "longest_example_tokens": self.longest,
            "problems": list(self.problems), "warnings": list(self.warnings),
        }

    def lines(self, *, key: bool = True) -> list[str]:
        """A short human summary (CLI and TUI); ``key``: with the line saying whether the API key
        is set (the TUI says it once, above the estimate)."""
        epochs = f"{self.n_epochs} (auto: OpenAI's heuristic for {self.n_train} examples)" if self.epochs_auto \
            else str(self.n_epochs)
        price = f"${self.price_per_1m:g} per 1M training tokens" if self.price_per_1m is not None \
            else "not in ftui's price table"
        out = [
            f"OpenAI model      {self.model} ({price}, prices as of {PRICES_AS_OF})",
            f"training file     {self.n_train} examples, {self.train_tokens:,} tokens per epoch"
            f" (longest {self.longest:,}); validation {self.n_val}",
            f"epochs            {epochs}",
        ]
        if self.train_usd is not None:
            out.append(f"training cost     ${self.train_usd:.2f} = {self.train_tokens:,} tokens x {self.n_epochs}"
                       f" epoch(s) x ${self.price_per_1m:g}/1M")
        else:
            out.append("training cost     unknown (model not in the price table)")
        if self.eval_usd is not None:
            out.append(f"eval cost         ${self.eval_usd:.4f} (about; base, k-shot and fine-tuned on"
                       f" {self.n_test} test examples)")
        if self.total_usd is not None:
            out.append(f"total (estimate)  ${self.total_usd:.2f}; budget ${self.budget_usd:g}"
                       + (" -- ABOVE BUDGET" if self.over_budget else ""))
        if key:
            out.append("API key           " + ("present in the environment" if self.key_present else
                                                "not set (OPENAI_API_KEY): the run cannot start without it"))
        out += [f"warning: {w}" for w in self.warnings]
        out += [f"problem: {p}" for p in self.problems]
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def preflight_examples(train: Sequence[Example], val: Sequence[Example], test: Sequence[Example], *,
                       template: PromptTemplate, settings: OpenAISettings,
                       eval_settings: EvalSettings | None = None) -> Preflight:
    """The pre-flight for given splits and settings."""
    eval_settings = eval_settings or EvalSettings()
    model = settings.model
    records = [chat_record(ex, template) for ex in train]
    problems: list[str] = []
    for ex, record in zip(train, records):
        for p in check_chat_record(record)[:3]:
            problems.append(f"training example from line {ex.line}: {p}")
    if len(train) < MIN_EXAMPLES:
        problems.append(f"the training split has {len(train)} examples; OpenAI needs at least {MIN_EXAMPLES}")
    tokens, counts = billed_tokens(records, model)
    warnings: list[str] = []
    over = sum(1 for c in counts if c > MAX_TOKENS_PER_EXAMPLE)
    if over:
        warnings.append(f"{over} training example(s) exceed {MAX_TOKENS_PER_EXAMPLE} tokens and will be truncated")
    auto = settings.n_epochs == "auto"
    n_epochs = auto_epochs(len(train)) if auto else int(settings.n_epochs)
    price = training_price(model)
    if price is None:
        warnings.append(f"no training price for {model!r} in ftui's table ({PRICES_AS_OF}); cost unknown")
    train_usd = tokens * n_epochs * price / 1e6 if price is not None else None
    eval_usd = _eval_estimate(train, test, template, model, eval_settings)
    return Preflight(model=model, n_train=len(train), n_val=len(val), n_test=len(test), train_tokens=tokens,
                     n_epochs=n_epochs, epochs_auto=auto, train_usd=train_usd, eval_usd=eval_usd,
                     budget_usd=settings.budget_usd, key_present=key_present(), price_per_1m=price,
                     longest=max(counts, default=0), problems=problems[:20], warnings=warnings)


def _eval_estimate(train: Sequence[Example], test: Sequence[Example], template: PromptTemplate,
                   model: str, settings: EvalSettings) -> float | None:
    """Inference cost of base, k-shot and fine-tuned on the test split: prompt tokens in, the
    reference's length out (a fine-tuned model answers about that long)."""
    base, tuned = inference_price(model), inference_price("ft:" + model)
    if base is None or tuned is None or not test:
        return None if base is None else 0.0
    n = min(len(test), settings.limit) if settings.limit else len(test)
    test = test[:n]
    shots = list(train[: settings.k])
    usd = 0.0
    for ex in test:
        out = count_text(ex.reference, model) + 1
        plain = count_messages(render_messages(ex, template), model)
        kshot = count_messages(render_messages(ex, template, shots=shots), model)
        usd += (plain * base[0] + out * base[1]) + (kshot * base[0] + out * base[1])
        usd += plain * tuned[0] + out * tuned[1]
    return usd / 1e6


def preflight(req: "RunRequest") -> Preflight:
    """The pre-flight of what ``ftui train`` would start for ``req`` (nothing is written)."""
    from ftui.core.request import resolve_request

    return preflight_resolved(resolve_request(req))


def preflight_resolved(resolved: "Resolved") -> Preflight:
    """The pre-flight of a resolved request: its splits and its OpenAI settings."""
    settings = resolved.settings
    return preflight_examples(resolved.splits["train"], resolved.splits["val"], resolved.splits["test"],
                              template=resolved.template, settings=settings[resolved.spec.backend],
                              eval_settings=settings["eval"])


KEY_MISSING = ("OPENAI_API_KEY is not set: export it where ftui runs (ftui reads the key from the environment "
               "only, and never writes it anywhere)")


def spend_check(pf: Preflight) -> SpendCheck:
    """The pre-flight as the registry's question before spending (see ``core.backends``)."""
    estimate = (f"${pf.total_usd:.2f} (training ${pf.train_usd:.2f}, eval about ${pf.eval_usd or 0.0:.2f})"
                if pf.total_usd is not None and pf.train_usd is not None else "")
    return SpendCheck(lines=tuple(pf.lines()), problems=tuple(pf.problems),
                      missing_credentials="" if key_present() else KEY_MISSING,  # now, not when estimated
                      estimate_usd=pf.total_usd, budget_usd=pf.budget_usd, estimate_text=estimate,
                      details=pf.to_dict())
