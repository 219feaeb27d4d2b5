"""Typed settings of a preset and of a run. Each field is validated where it is made.

The dataclasses here are what ``run.json`` freezes: ``to_dict`` gives plain JSON values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from ftui.core.devices import check_devices
from ftui.core.errors import ConfigError
from ftui.core.tasks import task_names  # the one task list: core.tasks' registry


def _check(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise ConfigError(f"{where}: {message}")


@dataclass(frozen=True)
class DataSource:
    """Where a preset's rows come from."""

    sample: str
    """Offline sample, a path relative to the presets folder (``data/sql.jsonl``); empty for a
    preset that reads its hub dataset (or a local copy of it) only."""
    fields: Mapping[str, str]
    """Task field -> source column, e.g. ``{"question": "question", "reference": "answer"}``."""
    hub: str = ""
    """Hub dataset id used when reachable (``b-mc2/sql-create-context``); empty for none."""
    config: str = ""
    """Hub dataset configuration name, if the dataset has several."""
    split: str = "train"
    """Hub split to read."""
    limit: int = 0
    """Use at most this many rows (0: all), taken after a seeded shuffle."""
    splits: Mapping[str, str] = field(default_factory=dict)
    """The hub dataset's own splits: ftui split (train, val, test) -> source split name, e.g.
    ``{train = "train", test = "validation"}``. With them, the hub data (or a local folder
    holding those splits) is used as published; a split not named is carved from train by
    the ``[split]`` sizes. Empty: ``split`` is read and split at random."""

    def __post_init__(self) -> None:
        _check(bool(self.sample) or bool(self.hub), "data", "needs a sample, a hub id, or both")
        _check("reference" in self.fields, "data.fields", "must map 'reference' to a column")
        _check(self.limit >= 0, "data.limit", f"must be >= 0, got {self.limit}")
        unknown = sorted(set(self.splits) - {"train", "val", "test"})
        _check(not unknown, "data.splits", f"keys must be train, val, test; got {', '.join(unknown)}")
        _check(not self.splits or "train" in self.splits, "data.splits", "must name the train split")


@dataclass(frozen=True)
class SplitSpec:
    """How rows are split into train / val / test. Sizes < 1 are fractions, else counts."""

    seed: int = 42
    """Seed of the shuffle; the same seed and rows give the same split."""
    val: float = 0.05
    """Validation size: a fraction of the rows (< 1) or a count (>= 1)."""
    test: float = 0.1
    """Held-out test size: a fraction of the rows (< 1) or a count (>= 1)."""

    def __post_init__(self) -> None:
        for name in ("val", "test"):
            value = getattr(self, name)
            _check(value >= 0, f"split.{name}", f"must be >= 0, got {value}")
            _check(value < 1 or float(value).is_integer(), f"split.{name}",
                   f"a count must be a whole number, got {value}")

    def sizes(self, n: int) -> tuple[int, int, int]:
        """(train, val, test) counts for ``n`` rows; raises when nothing is left to train on."""

        def count(v: float) -> int:
            return int(round(v * n)) if v < 1 else int(v)

        val, test = count(self.val), count(self.test)
        train = n - val - test
        if train < 1:
            raise ConfigError(
                f"split: {n} rows cannot hold val={val} and test={test} and still train"
            )
        return train, val, test


@dataclass(frozen=True)
class PromptTemplate:
    """System and user messages; ``{field}`` placeholders name task fields."""

    system: str
    """The system message (may be empty)."""
    user: str
    """The user message, e.g. ``"{context}\\n\\nQuestion: {question}"``."""

    def __post_init__(self) -> None:
        _check(bool(self.user.strip()), "prompt.user", "is empty")


METHODS: dict[str, str] = {
    "lora": "low-rank updates beside the attention weights; small adapter, the usual choice",
    "dora": "LoRA that also learns each weight's magnitude; a bit slower, sometimes better",
    "ia3": "learned scales on keys, values and the feed-forward; the fewest weights",
    "prefix": "learned key/value vectors put before every prompt; the network is unchanged",
    "full": "every weight trains; optimizer state on all of them; saves the whole model",
}
"""The local backend's training methods, each with a one-line explanation (help, Backend screen)."""
METHOD_LABELS: dict[str, str] = {"lora": "LoRA", "dora": "DoRA", "ia3": "IA3", "prefix": "prefix tuning",
                                 "full": "full fine-tuning"}
"""Each method's name in running text ("0.92M trainable (LoRA)")."""
METHOD_FIELDS: dict[str, tuple[str, ...]] = {
    "lora": ("lora_r", "lora_alpha", "lora_dropout", "target_modules"),
    "dora": ("lora_r", "lora_alpha", "lora_dropout", "target_modules"),
    "ia3": (), "prefix": ("num_virtual_tokens",), "full": (),
}
"""The ``LocalSettings`` fields only some methods read, by method (the Backend screen shows a
field only for the methods that read it)."""
QUANTIZABLE_METHODS = ("lora", "dora")
"""Methods that train on a 4/8-bit base (QLoRA)."""
METHOD_LEARNING_RATES: dict[str, float] = {"lora": 2e-3, "dora": 2e-3, "ia3": 3e-3, "prefix": 1e-2, "full": 5e-5}
"""The learning rate a method gets when ``--set method=`` switches to it without a
``learning_rate`` (a preset's rate is tuned for its own method): IA3's scales and prefix
tuning's vectors want far higher rates than LoRA (3e-3 in the IA3 paper, Liu et al. 2022;
1e-2 in peft's prefix-tuning examples), full fine-tuning a tenth or less. LoRA's 2e-3 is the
demo sweep's best (r=16, 150 steps, README); between lora and dora the preset's rate stays
(``same_rate_family``)."""
LORA_FAMILY = ("lora", "dora")


def same_rate_family(a: str | None, b: str | None) -> bool:
    """Whether a rate tuned for method ``a`` fits method ``b``: the same method, or both LoRA's."""
    return a == b or (a in LORA_FAMILY and b in LORA_FAMILY)


LR_SCHEDULERS: dict[str, str] = {
    "linear": "falls in a straight line to 0 at the last step",
    "cosine": "falls along half a cosine to 0: stays high longer, then eases off",
    "constant": "stays at the peak rate",
}
"""How the learning rate moves after its warmup (``warmup_steps``), with a one-line explanation
each; transformers' scheduler of that name does it (``constant`` is its ``constant_with_warmup``)."""
ADAPTER_METHODS = ("lora", "dora", "ia3", "prefix")
"""Methods whose result is a peft adapter (``adapter/``); ``full`` saves the model (``model/``)."""


@dataclass(frozen=True)
class LocalSettings:
    """Defaults for the local backend (LoRA, DoRA, IA3, prefix tuning, full fine-tuning; QLoRA)."""

    model: str = "smollm2-135m"
    """``smollm2-135m`` (embedded), a hub id, or a local folder."""
    method: str = "lora"
    """``lora``, ``dora``, ``ia3``, ``prefix`` or ``full`` (see ``METHODS``)."""
    num_virtual_tokens: int = 20
    """Learned key/value positions before each prompt (``method=prefix``)."""
    epochs: float = 1.0
    """Passes over the training split."""
    max_steps: int = -1
    """Stop after this many optimizer steps (-1: as many as the epochs need)."""
    learning_rate: float = 2e-4
    """Peak learning rate of the trained parameters (full fine-tuning wants ~10x lower)."""
    lr_scheduler: str = "linear"
    """How the rate moves after the warmup: ``linear`` or ``cosine`` decay to 0, or
    ``constant`` (see ``LR_SCHEDULERS``)."""
    warmup_steps: float = 0.05
    """Steps over which the rate climbs from 0 to its peak: a fraction of the training steps
    (< 1) or a count (>= 1)."""
    batch_size: int = 8
    """Examples per device per step."""
    grad_accum: int = 1
    """Gradient accumulation steps."""
    micro_batch_tokens: int = 0
    """Most positions (rows x padded width) one forward and backward takes: a wider batch goes
    through in micro-batches of whole rows whose gradients add up to the batch's (the same loss
    and update, less memory at the peak). 0: automatic, 1024 on a CPU (whose steps otherwise
    hold about 1.5 MiB per position of the embedded model) and whole batches on a GPU."""
    max_length: int = 512
    """Tokens per example (prompt + completion); longer ones are truncated and reported."""
    lora_r: int = 8
    """LoRA rank."""
    lora_alpha: int = 16
    """LoRA scaling numerator."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA branch."""
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    """Modules that get adapters (LoRA and DoRA; the attention projections by default)."""
    quantization: str = "none"
    """``none``, ``4bit`` or ``8bit`` (bitsandbytes, CUDA only)."""
    precision: str = "auto"
    """``auto`` (bf16 where the hardware runs it fast, else fp32), ``bf16`` or ``fp32``."""
    eval_every: int = 50
    """Validation loss every N steps (and after the last step); a checkpoint is saved at each."""
    val_rows: int = 64
    """Validation rows each pass computes the loss on: a subset drawn once from the validation
    split by the run's seed (the same rows every pass, and after a resume, so the losses compare);
    0 or ``all``: the whole split. 64 keeps a pass to a few percent of the training between two
    passes at the shipped presets' ``eval_every`` and ``batch_size`` (see ``core.validation``)."""
    early_stop_patience: int = 0
    """Stop training when the validation loss has not improved for this many validation passes
    in a row (0: never stop early). Needs validation rows (``split.val``)."""
    keep_best: bool = True
    """With validation rows, save the weights of the validation pass with the lowest loss as the
    result (``adapter/`` or ``model/``), not those of the last step."""
    price_per_hour: float | None = None
    """USD per hour of this machine; None: from the dated table by GPU name ($0 on CPU)."""
    num_processes: int = 0
    """Training processes on this machine (DDP through torchrun); 0: one per visible GPU
    (one on a machine without GPUs)."""
    distributed: str = "ddp"
    """``ddp`` (a replica per process) or ``fsdp`` (parameters sharded across processes, for a
    model that does not fit one GPU)."""
    nnodes: int = 1
    """Machines taking part; the others run the command the README gives for a second node."""
    rdzv_endpoint: str = ""
    """``HOST:PORT`` of this (the first) machine, for the others to meet at (nnodes > 1)."""
    devices: tuple[str, ...] = ()
    """GPU ids to train on (``0``, ``1,2``; physical ids, as nvidia-smi lists them) or ``cpu``;
    empty: every visible GPU (``CUDA_VISIBLE_DEVICES``, else all), the CPU without one. Runs on
    the same devices take turns (``queued``); runs on disjoint sets go side by side."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "devices", tuple(str(d).strip() for d in self.devices))
        problem = check_devices(self.devices)
        _check(problem is None, "local.devices", problem or "")
        _check(isinstance(self.num_processes, int) and self.num_processes >= 0, "local.num_processes",
               f"must be a whole number >= 0, got {self.num_processes!r}")
        _check(self.distributed in ("ddp", "fsdp"), "local.distributed",
               f"must be ddp or fsdp, got {self.distributed!r}")
        _check(isinstance(self.nnodes, int) and self.nnodes >= 1, "local.nnodes", f"must be >= 1, got {self.nnodes!r}")
        _check(self.nnodes == 1 or ":" in self.rdzv_endpoint, "local.rdzv_endpoint",
               "must be HOST:PORT of this machine when nnodes > 1")
        _check(self.epochs > 0, "local.epochs", f"must be > 0, got {self.epochs}")
        _check(self.learning_rate > 0, "local.learning_rate", f"must be > 0, got {self.learning_rate}")
        _check(self.method in METHODS, "local.method",
               f"must be one of {', '.join(METHODS)}, got {self.method!r}")
        _check(self.quantization in ("none", "4bit", "8bit"), "local.quantization",
               f"must be none, 4bit or 8bit, got {self.quantization!r}")
        _check(self.quantization == "none" or self.method in QUANTIZABLE_METHODS, "local.method",
               f"method={self.method} does not train on a quantized base (quantization={self.quantization}): "
               f"{'it updates every weight, which 4/8-bit weights cannot hold' if self.method == 'full' else 'QLoRA is lora or dora'}; "
               "use --set quantization=none, or method=lora")
        for name in ("batch_size", "grad_accum", "max_length", "lora_r", "lora_alpha", "eval_every",
                     "num_virtual_tokens"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value >= 1, f"local.{name}",
                   f"must be a whole number >= 1, got {value!r}")
        _check(isinstance(self.micro_batch_tokens, int) and not isinstance(self.micro_batch_tokens, bool)
               and self.micro_batch_tokens >= 0, "local.micro_batch_tokens",
               f"must be a whole number of positions >= 0 (0: automatic), got {self.micro_batch_tokens!r}")
        _check(0 <= self.lora_dropout < 1, "local.lora_dropout", f"must be in [0, 1), got {self.lora_dropout}")
        _check(bool(self.target_modules), "local.target_modules", "is empty")
        _check(self.precision in ("auto", "bf16", "fp32"), "local.precision",
               f"must be auto, bf16 or fp32, got {self.precision!r}")
        _check(self.lr_scheduler in LR_SCHEDULERS, "local.lr_scheduler",
               f"must be one of {', '.join(LR_SCHEDULERS)} (each after warmup_steps of warmup), "
               f"got {self.lr_scheduler!r}")
        _check(isinstance(self.warmup_steps, (int, float)) and not isinstance(self.warmup_steps, bool)
               and self.warmup_steps >= 0 and (self.warmup_steps < 1 or float(self.warmup_steps).is_integer()),
               "local.warmup_steps",
               f"must be a fraction of the steps (0 to < 1) or a whole number of steps, got {self.warmup_steps!r}")
        _check(isinstance(self.early_stop_patience, int) and not isinstance(self.early_stop_patience, bool)
               and self.early_stop_patience >= 0, "local.early_stop_patience",
               f"must be a whole number of validation passes >= 0 (0: off), got {self.early_stop_patience!r}")
        _check(isinstance(self.keep_best, bool), "local.keep_best", f"must be true or false, got {self.keep_best!r}")
        if isinstance(self.val_rows, str) and self.val_rows.strip().lower() == "all":
            object.__setattr__(self, "val_rows", 0)  # one spelling in run.json: 0 is the whole split
        _check(isinstance(self.val_rows, int) and not isinstance(self.val_rows, bool) and self.val_rows >= 0,
               "local.val_rows", f"must be a whole number of validation rows >= 1, or 0 or all for the whole "
               f"validation split, got {self.val_rows!r}")


    def unused(self) -> tuple[str, ...]:
        """Settings the chosen method does not read (left out where settings are listed)."""
        lora = ("lora_r", "lora_alpha", "lora_dropout", "target_modules")
        return ((() if self.method == "prefix" else ("num_virtual_tokens",))
                + (() if self.method in ("lora", "dora") else lora))


@dataclass(frozen=True)
class OpenAISettings:
    """Defaults for the OpenAI fine-tuning backend."""

    model: str = "gpt-4.1-nano-2025-04-14"
    """Base model to fine-tune."""
    n_epochs: int | str = "auto"
    """Epochs, or ``auto`` (OpenAI picks by dataset size)."""
    batch_size: int | str = "auto"
    """Batch size, or ``auto``."""
    learning_rate_multiplier: float | str = "auto"
    """Learning-rate multiplier, or ``auto``."""
    suffix: str = "ftui"
    """Up to 64 characters added to the fine-tuned model's name."""
    budget_usd: float = 5.0
    """Estimated cost above which ftui asks before spending."""
    seed: int = -1
    """Seed of the job (-1: the split seed), so a rerun of the same data is comparable."""
    poll_interval_s: float = 10.0
    """Seconds between polls of the job and its events."""
    request_timeout_s: float = 60.0
    """Seconds one API request may take before it is retried."""
    max_retries: int = 5
    """Retries of one request after a 429, a 5xx, a timeout or a dropped connection."""
    outage_limit_s: float = 1800.0
    """How long polling keeps trying through failing requests before the runner gives up
    (the job goes on at OpenAI; ``ftui resume`` re-attaches)."""
    eval_concurrency: int = 8
    """Chat completions in flight at once during evaluation."""

    def __post_init__(self) -> None:
        for name in ("n_epochs", "batch_size", "learning_rate_multiplier"):
            value = getattr(self, name)
            _check(value == "auto" or (isinstance(value, (int, float)) and value > 0),
                   f"openai.{name}", f"must be 'auto' or a positive number, got {value!r}")
        _check(self.budget_usd >= 0, "openai.budget_usd", f"must be >= 0, got {self.budget_usd}")
        _check(len(self.suffix) <= 64, "openai.suffix", f"must be at most 64 characters, got {len(self.suffix)}")
        for name in ("poll_interval_s", "request_timeout_s", "outage_limit_s"):
            value = getattr(self, name)
            _check(isinstance(value, (int, float)) and value > 0, f"openai.{name}", f"must be > 0, got {value!r}")
        for name in ("max_retries", "eval_concurrency"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value >= (1 if name == "eval_concurrency" else 0),
                   f"openai.{name}", f"must be a whole number >= {1 if name == 'eval_concurrency' else 0}, got {value!r}")


@dataclass(frozen=True)
class EvalSettings:
    """How held-out examples are evaluated."""

    max_new_tokens: int = 128
    """Generation budget per example."""
    k: int = 3
    """Training examples put in the prompt for the ``kshot`` variant."""
    limit: int = 0
    """Evaluate at most this many test examples (0: all)."""
    batch_size: int = 32
    """Most prompts decoding together (local backend; base and k-shot prompts count together:
    they decode in one running batch). On 2 CPU cores a decoding step's matrix products for the
    embedded model cost 2.5 ms a row with 32 rows, 1.9 ms with 64 and 1.65 ms with 128 (one
    row: about 60 ms); the demo preset uses 128. Lower it when a large model's keys and values
    do not fit."""

    def __post_init__(self) -> None:
        _check(self.max_new_tokens >= 1, "eval.max_new_tokens", f"must be >= 1, got {self.max_new_tokens}")
        _check(self.k >= 0, "eval.k", f"must be >= 0, got {self.k}")
        _check(self.limit >= 0, "eval.limit", f"must be >= 0, got {self.limit}")
        _check(self.batch_size >= 1, "eval.batch_size", f"must be >= 1, got {self.batch_size}")


TRACKERS: dict[str, str] = {
    "tensorboard": "TensorBoard event files in the run's tensorboard/ folder",
    "mlflow": "MLflow: $MLFLOW_TRACKING_URI, else a file store in $FTUI_HOME/mlruns",
    "wandb": "Weights & Biases: project $WANDB_PROJECT (else ftui); WANDB_MODE=offline works without network",
}
"""The experiment trackers a run can report to (``report_to``), each with where it writes."""


@dataclass(frozen=True)
class ReportSettings:
    """Experiment trackers the run's series go to besides ``events.jsonl`` (both backends)."""

    report_to: tuple[str, ...] = ()
    """Any of ``tensorboard``, ``mlflow``, ``wandb`` (``--set report_to=tensorboard,mlflow``);
    empty (or ``none``): no tracker. Fed from the run's events by the runner (``runner.trackers``)."""

    def __post_init__(self) -> None:
        names = (self.report_to,) if isinstance(self.report_to, str) else tuple(self.report_to)
        names = tuple(n.strip().lower() for n in names for n in str(n).split(",") if n.strip())
        names = () if names == ("none",) else tuple(dict.fromkeys(names))  # ordered, no repeats
        unknown = [n for n in names if n not in TRACKERS]
        _check(not unknown, "report.report_to",
               f"unknown tracker(s) {', '.join(map(repr, unknown))}; choose from {', '.join(TRACKERS)} (or none)")
        object.__setattr__(self, "report_to", names)


@dataclass(frozen=True)
class Preset:
    """A named recipe: data, task, prompt, per-backend defaults and eval settings."""

    name: str
    """Short id used on the command line (``sql``)."""
    title: str
    """One-line title for lists."""
    description: str
    """A paragraph for the Dataset screen."""
    task: str
    """One of ``sql``, ``funcrep``, ``json``, ``text``."""
    data: DataSource
    """Where the rows come from."""
    prompt: PromptTemplate
    """System and user templates."""
    split: SplitSpec = field(default_factory=SplitSpec)
    """Train / val / test split."""
    task_options: Mapping[str, Any] = field(default_factory=dict)
    """Passed to the task (allowed lists, JSON Schema, regex)."""
    eval: EvalSettings = field(default_factory=EvalSettings)
    """Evaluation settings."""
    backends: Mapping[str, Any] = field(default_factory=dict)
    """Backend name -> its settings (a preset's ``[local]``, ``[openai]``... tables); a backend
    the preset does not mention gets its settings class's defaults (``settings_for``)."""

    def __post_init__(self) -> None:
        _check(bool(self.name), "name", "is empty")
        _check(self.task in task_names(), "task", f"must be one of {', '.join(task_names())}, got {self.task!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values, as frozen into ``run.json``."""
        return to_plain(self)

    def settings_for(self, backend: str) -> Any:
        """The preset's settings for ``backend``, or its defaults."""
        from ftui.core.backends import backend as facts  # the registry imports this module

        return self.backends.get(backend) or facts(backend).settings()


def to_plain(obj: Any) -> Any:
    """Dataclasses, mappings and tuples -> dicts and lists (JSON-able)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """Make dataclass ``cls`` from a TOML table, naming unknown keys and wrong types."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    kwargs = {}
    for key, value in values.items():
        if key == "target_modules" and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
