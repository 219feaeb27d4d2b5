"""What this machine has, and whether a model will fit, without importing torch.

The one home of hardware facts (DESIGN.md, Layers): the Backend screen needs them before any
run exists and the TUI never imports torch; the local backend adds only what needs torch
(``backends/local/hardware.py``). GPUs come from ``nvidia-smi`` (present wherever an NVIDIA
driver is) or NVML, CPU and RAM from ``/proc/cpuinfo`` and psutil. ``HwReading`` is the
payload of ``hw`` events, written and read back through the same type. The memory-fit figure
is a rough planning estimate (frozen weights + the training state of what the method trains +
activations), not a promise; the runner checks the weights against free memory again before
it loads anything.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

GiB = 2**30
EMBEDDED = "smollm2-135m"

# SmolLM2-135M-Instruct's config.json, so the estimate works before the first conversion.
EMBEDDED_CONFIG: dict[str, Any] = {
    "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
    "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
    "tie_word_embeddings": True,
}

BYTES_PER_PARAM = {"fp32": 4.0, "bf16": 2.0, "8bit": 1.0, "4bit": 0.55}
"""Base weights; 4-bit carries its quantization constants (same table as the local backend)."""

TRAINING_STATE_BYTES = 16
"""Per trainable parameter (an adapter's, or every weight in full fine-tuning): fp32 weight,
gradient and Adam's two moments."""

CPU_PROCESS_BYTES = 480 * 2**20
"""A training process before any model: Python with torch, transformers, peft and trl imported
held 0.47 GiB resident (torch 2.13, transformers 5.24, peft 0.21, trl 1.16; 2026-12-04). In RAM,
so counted for CPU runs only."""


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    mem_total: int | None
    """Bytes."""
    mem_used: int | None
    util: float | None
    """Percent."""
    power_w: float | None


@dataclass(frozen=True)
class Machine:
    """The hardware a local run would use."""

    cpu_model: str
    cpu_count: int
    ram_total: int | None
    ram_available: int | None
    cpu_bf16: bool
    """The CPU has AVX512-bf16 or AMX, where ftui trains in bf16."""
    gpus: tuple[Gpu, ...] = ()
    driver: str = ""
    gpu_error: str = ""
    """Why no GPU was found (no driver, nvidia-smi failed), for the user to read."""

    @property
    def cuda(self) -> bool:
        return bool(self.gpus)

    @property
    def device(self) -> str:
        return "cuda" if self.gpus else "cpu"

    def lines(self) -> list[str]:
        """A short human description."""
        out = []
        for g in self.gpus:
            mem = f", {g.mem_total / GiB:.0f} GiB" if g.mem_total else ""
            out.append(f"GPU {g.index}: {g.name}{mem}")
        if not self.gpus:
            out.append(f"no CUDA GPU ({self.gpu_error or 'nvidia-smi not found'})")
        ram = f", {self.ram_total / GiB:.0f} GiB RAM" if self.ram_total else ""
        out.append(f"CPU: {self.cpu_model or 'unknown'} ({self.cpu_count} cores{ram})")
        out.append("bf16: " + ("yes" if self.gpus or self.cpu_bf16 else "no (training in fp32)"))
        return out


BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""CPU flags of a CPU that runs bf16 fast (AVX512-bf16 or AMX), where ftui trains in bf16."""


def cpu_info() -> tuple[str, set[str]]:
    """(model name, flags) of the first CPU in ``/proc/cpuinfo``; empty where it is absent."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
                if model and flags:
                    break
    except OSError:
        pass
    return model, flags


def cpu_bf16(flags: set[str] | None = None) -> bool:
    """This CPU (or one with ``flags``) runs bf16 fast."""
    return bool(BF16_CPU_FLAGS & (cpu_info()[1] if flags is None else flags))


def heap_trimmer() -> Any:
    """glibc's ``malloc_trim`` (a callable giving freed heap memory back to the system), or None
    where the C library is not glibc.

    Why a CPU training calls it every few steps (``train.HEAP_TRIM_EVERY``): glibc gives freed
    memory back only from the top of a heap, and a training step frees gigabytes of activations
    of varied sizes in the middle of them. Measured with ``benchmarks/memory.py`` (2 cores, the
    spider shape: batch 8, rows of 256-512 tokens, 50 steps) the process held 5.7 GiB of freed
    heap of its 7.1 GiB at the end; ``malloc_trim(0)`` hands such pages back (``madvise``)
    wherever they are."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def fix_mmap_threshold(nbytes: int) -> bool:
    """Have glibc serve every allocation of ``nbytes`` or more with its own ``mmap`` (handed back
    to the system when freed) for the rest of the process; False where the C library is not glibc.

    glibc's threshold starts at 128 KiB and rises to the size of each large block freed (up to
    32 MiB), after which those blocks come from the heap, whose freed pages stay resident until
    a ``malloc_trim``. For a CPU training (``train.MMAP_THRESHOLD``) that was the rest of the
    growth: ``benchmarks/memory.py --quick`` alone on 2 cores, each step's peak grew 151-174 MiB
    per 100 steps (6.8-7.9% of the peak, two runs) with trimming every 10th step, -38 MiB (flat)
    with an 8 MiB threshold, at the same step time (1.14-1.22 s, 1.17 s)."""
    import ctypes
    import ctypes.util

    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    M_MMAP_THRESHOLD = -3
    return bool(mallopt(M_MMAP_THRESHOLD, nbytes))


def cpu_count() -> int:
    return os.cpu_count() or 1


def ram_total() -> int | None:
    """Bytes of RAM, None where psutil cannot tell."""
    import psutil  # small, but only where hardware is asked about

    try:
        return psutil.virtual_memory().total
    except (OSError, RuntimeError):
        return None


def _num(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def parse_nvidia_smi(text: str) -> tuple[Gpu, ...]:
    """Rows of ``--query-gpu=index,name,memory.total,memory.used,utilization.gpu,power.draw
    --format=csv,noheader,nounits`` (memory in MiB)."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 6 or not parts[0].isdigit():
            continue
        total, used = _num(parts[2]), _num(parts[3])
        gpus.append(Gpu(index=int(parts[0]), name=parts[1],
                        mem_total=int(total * 2**20) if total is not None else None,
                        mem_used=int(used * 2**20) if used is not None else None,
                        util=_num(parts[4]), power_w=_num(parts[5])))
    return tuple(gpus)


def query_gpus(timeout_s: float = 5.0) -> tuple[tuple[Gpu, ...], str, str]:
    """(GPUs, driver version, why none) through ``nvidia-smi``."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return (), "", "nvidia-smi not found"
    fields = "index,name,memory.total,memory.used,utilization.gpu,power.draw,driver_version"
    try:
        res = subprocess.run([exe, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return (), "", f"nvidia-smi failed: {exc}"
    if res.returncode != 0:
        first = (res.stderr or res.stdout).strip().splitlines()
        return (), "", f"nvidia-smi: {first[0] if first else 'exit ' + str(res.returncode)}"
    gpus = parse_nvidia_smi(res.stdout)
    driver = res.stdout.splitlines()[0].rsplit(",", 1)[-1].strip() if gpus else ""
    return gpus, driver, "" if gpus else "nvidia-smi lists no GPU"


class NvmlGpus:
    """GPU readings through NVML (``pynvml``, which comes with some CUDA installs): cheaper than
    starting ``nvidia-smi`` for each ``hw`` event. ``open()`` is None where NVML is absent."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml

    @classmethod
    def open(cls) -> NvmlGpus | None:
        try:
            import pynvml  # optional

            pynvml.nvmlInit()
        except Exception:  # no NVML (no driver, no package): no readings from it
            return None
        return cls(pynvml)

    def read(self) -> tuple[Gpu, ...]:
        n = self._nvml
        gpus = []
        for i in range(n.nvmlDeviceGetCount()):
            h = n.nvmlDeviceGetHandleByIndex(i)
            mem = n.nvmlDeviceGetMemoryInfo(h)
            try:
                power = n.nvmlDeviceGetPowerUsage(h) / 1000  # mW
            except Exception:  # not supported on this board
                power = None
            name = n.nvmlDeviceGetName(h)
            gpus.append(Gpu(index=i, name=name.decode() if isinstance(name, bytes) else str(name),
                            mem_total=mem.total, mem_used=mem.used,
                            util=n.nvmlDeviceGetUtilizationRates(h).gpu, power_w=power))
        return tuple(gpus)


@dataclass(frozen=True)
class HwReading:
    """The payload of an ``hw`` event: written by the local runner's sampler, read back by the
    Training screen and the study table through ``to_event``/``from_event`` and nothing else."""

    gpus: tuple[Gpu, ...] = ()
    """Every GPU, where NVML reads them."""
    gpu_name: str | None = None
    """The first GPU's name (the one the price table is looked up by)."""
    gpu_util: float | None = None
    """Percent, first GPU."""
    gpu_mem_used: int | None = None
    """Bytes, first GPU (from torch's counters where NVML is absent)."""
    gpu_mem_total: int | None = None
    gpu_power_w: float | None = None
    cpu_percent: float | None = None
    """Of one core: 200 is two cores busy."""
    rss_bytes: int | None = None
    """The runner's resident memory."""
    ram_total_bytes: int | None = None
    threads: int | None = None
    """Compute threads of the process (torch's), as the runner set them."""
    method: str | None = None
    """How the model trains (a local training's ``method``)."""
    trainable_params: int | None = None
    """Parameters being trained."""
    total_params: int | None = None
    """Parameters of the model being trained (for a peft model: the base and the adapter)."""
    peak_mem_bytes: int | None = None
    """The training process's peak so far: CUDA memory allocated on a GPU, else the peak RSS."""
    processes: int | None = None
    """Training processes (one per GPU) whose tokens ``tokens_per_s`` counts, every node's."""
    peak_rss: int | None = None
    """Bytes, the training process's peak resident set so far (host memory, on every device)."""

    @classmethod
    def of(cls, gpus: Sequence[Gpu], **fields: Any) -> HwReading:
        """A reading whose first-GPU fields come from ``gpus[0]``."""
        first = gpus[0] if gpus else None
        if first is None:
            return cls(**fields)
        return cls(gpus=tuple(gpus), gpu_name=first.name, gpu_util=first.util, gpu_mem_used=first.mem_used,
                   gpu_mem_total=first.mem_total, gpu_power_w=first.power_w, **fields)

    def to_event(self) -> dict[str, Any]:
        """The fields of the ``hw`` event (core/events.py's schema); unknown ones left out."""
        out: dict[str, Any] = {k: v for k, v in dataclasses.asdict(self).items() if k != "gpus" and v is not None}
        if self.gpus:
            out["gpus"] = [dataclasses.asdict(g) for g in self.gpus]
        return out

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> HwReading:
        """Read an ``hw`` event back; a GPU entry without a name (runs recorded before names were
        written) keeps an empty one."""
        gpus = tuple(Gpu(index=int(g.get("index", i)), name=str(g.get("name") or ""), mem_total=g.get("mem_total"),
                         mem_used=g.get("mem_used"), util=g.get("util"), power_w=g.get("power_w"))
                     for i, g in enumerate(event.get("gpus") or ()) if isinstance(g, Mapping))
        name = event.get("gpu_name") or (gpus[0].name if gpus else None) or None
        return cls(gpus=gpus, gpu_name=name, **{f: event.get(f) for f in _SCALARS})


def trainable_text(trainable: float, total: float | None, *, short: bool = False) -> str:
    """``32.8K of 3.25M parameters (1.01%)`` (short: ``32.8K (1.01%)``): what a method trains."""
    share = f" ({100 * trainable / total:.2f}%)" if total else ""
    if short or not total:
        return f"{_count(trainable)}{share}"
    return f"{_count(trainable)} of {_count(total)} parameters{share}"


def _count(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{int(n)}"


_SCALARS = ("gpu_util", "gpu_mem_used", "gpu_mem_total", "gpu_power_w", "cpu_percent", "rss_bytes",
            "ram_total_bytes", "threads", "method", "trainable_params", "total_params", "peak_mem_bytes",
            "peak_rss", "processes")


def detect() -> Machine:
    """This machine's CPU, RAM and NVIDIA GPUs (a subprocess call; up to a few seconds)."""
    import psutil  # small, but only where hardware is asked about

    model, flags = cpu_info()
    try:
        vm = psutil.virtual_memory()
        ram_total, ram_avail = vm.total, vm.available
    except (OSError, RuntimeError):
        ram_total = ram_avail = None
    gpus, driver, why = query_gpus()
    return Machine(cpu_model=model, cpu_count=cpu_count(), ram_total=ram_total,
                   ram_available=ram_avail, cpu_bf16=cpu_bf16(flags),
                   gpus=gpus, driver=driver, gpu_error=why)


# -- model size and memory fit ----------------------------------------------------------

@dataclass(frozen=True)
class ModelShape:
    """The numbers of a decoder-only transformer (Llama naming) that memory depends on."""

    hidden: int
    layers: int
    vocab: int
    intermediate: int
    heads: int
    kv_heads: int
    source: str
    """Where the numbers came from (a config.json path, or "embedded")."""
    head_dim: int = 0
    """Width of one attention head; 0: ``hidden // heads`` (a config may set it apart)."""
    tied: bool = True
    """The output layer shares the input embedding's weights (``tie_word_embeddings``)."""

    @property
    def head_width(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def kv_dim(self) -> int:
        """Width of one layer's keys (and of its values): kv heads times head width."""
        return self.kv_heads * self.head_width

    @property
    def params(self) -> int:
        """Every weight: the projections, two RMSNorms a layer and a final one, the embedding and
        (untied) the output layer. Biases, which Llama-family models do not have, are left out."""
        linear = sum(i * o for i, o in self.linear_dims().values())
        norms = (2 * self.layers + 1) * self.hidden
        return self.layers * linear + norms + self.vocab * self.hidden * (1 if self.tied else 2)

    def linear_dims(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each decoder layer's projections (the modules adapters target)."""
        h, i = self.hidden, self.intermediate
        q, kv = self.heads * self.head_width, self.kv_dim
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}


def _shape_from(cfg: Mapping[str, Any], source: str) -> ModelShape | None:
    try:
        h, n, v = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"]), int(cfg["vocab_size"])
    except (KeyError, TypeError, ValueError):
        return None
    heads = int(cfg.get("num_attention_heads") or 1)
    # Without the key: untied, Llama's class default and the larger (safer) count.
    tied = bool(cfg.get("tie_word_embeddings", False))
    return ModelShape(hidden=h, layers=n, vocab=v, intermediate=int(cfg.get("intermediate_size") or 4 * h),
                      heads=heads, kv_heads=int(cfg.get("num_key_value_heads") or heads), source=source,
                      head_dim=int(cfg.get("head_dim") or 0), tied=tied)


def _hub_cache_configs(model: str) -> list[Path]:
    roots = []
    if os.environ.get("HF_HUB_CACHE"):
        roots.append(Path(os.environ["HF_HUB_CACHE"]))
    hf_home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    roots.append(hf_home / "hub")
    name = "models--" + model.replace("/", "--")
    found: list[Path] = []
    for root in roots:
        found += sorted((root / name / "snapshots").glob("*/config.json"))
    return found


def model_problem(model: str) -> str | None:
    """Why ``model`` cannot be loaded here, found without loading it; None when it may load.

    The embedded model, a local folder with a config.json and a hub id in the hub cache load
    offline; any other hub id needs the hub (asked with a quick connection only).
    """
    from ftui.core.data import hub_reachable

    if model == EMBEDDED:
        return None
    folder = Path(model).expanduser()
    if folder.exists():
        return None if (folder / "config.json").is_file() else (
            f"model folder '{model}' has no config.json: give the folder a transformers model was saved to")
    if _hub_cache_configs(model):
        return None
    if not os.environ.get("HF_HUB_OFFLINE") and hub_reachable():
        return None  # the hub decides when the runner asks
    return (f"cannot load model '{model}': it is not a local folder, not in the hub cache, and the hub "
            f"cannot be reached from here; use a local folder, a downloaded hub id, or {EMBEDDED} "
            "(the embedded model)")


def model_shape(model: str) -> ModelShape | None:
    """The model's shape from its config.json (local folder, hub cache) or the embedded table."""
    if model == EMBEDDED:  # known; its converted copy under $FTUI_HOME/models has the same shape
        return _shape_from(EMBEDDED_CONFIG, "embedded")
    candidates: list[Path] = []
    if model:
        candidates.append(Path(model).expanduser() / "config.json")
        if "/" in model and not Path(model).expanduser().exists():
            candidates += _hub_cache_configs(model)
    for path in candidates:
        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(cfg, dict) and (shape := _shape_from(cfg, str(path))) is not None:
            return shape
    return None


IA3_TARGETS: dict[str, bool] = {"k_proj": False, "v_proj": False, "down_proj": True}
"""peft's default IA3 modules for Llama-family models, each with whether peft treats it as
feed-forward (``TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING`` and
``..._FEEDFORWARD_MODULES_MAPPING``): a feed-forward module learns a scale per input feature,
the others one per output feature."""


def trainable_params(shape: ModelShape, *, method: str, lora_r: int, target_modules: Sequence[str],
                     num_virtual_tokens: int) -> int:
    """Parameters ``method`` trains on ``shape``, counted the way peft builds them (a test holds
    this to ``get_nb_trainable_parameters()`` on a tiny Llama); modules not in the shape count 0."""
    dims = shape.linear_dims()
    targets = [dims[m] for m in target_modules if m in dims]
    if method in ("lora", "dora"):
        per_layer = sum(lora_r * (i + o) for i, o in targets)
        if method == "dora":
            per_layer += sum(o for _, o in targets)  # the magnitude vector, one per output feature
        return shape.layers * per_layer
    if method == "ia3":
        return shape.layers * sum(dims[m][0] if feedforward else dims[m][1] for m, feedforward in IA3_TARGETS.items())
    if method == "prefix":
        # PrefixTuning without projection: one embedding of num_virtual_tokens rows, each holding
        # a key and a value for every layer; for GQA peft sizes them kv_heads * head_dim (peft #1901).
        return num_virtual_tokens * shape.layers * 2 * shape.kv_dim
    if method == "full":
        return shape.params
    raise ValueError(f"unknown method {method!r}")


CPU_MICRO_BATCH_TOKENS = 1024
"""``micro_batch_tokens=0`` (automatic) on a CPU: a batch of more positions (rows x padded width)
is trained in micro-batches of at most this many. A training step holds every layer's activations
for the whole batch until its backward: about 1.5 MiB per position for the embedded model. The
spider shape (8 rows of 256-512 tokens, LoRA, ``benchmarks/memory.py``, 25 steps alone on 2
cores) peaked at 7.5 GiB whole, 4.06 GiB in micro-batches of 2048 positions and 3.18 GiB of
1024, at the same speed (12.8, 11.4 and 11.5 s a step: smaller matmuls lose nothing on a CPU).
On a GPU the batch goes whole unless the setting says otherwise: there the user sizes the batch
to the memory, and smaller matmuls cost more. (Used by ``backends.local.train`` and by the memory
estimate, ``estimate_fit``.)"""


def micro_batch_rows(rows: int, width: int, budget: int) -> int:
    """Rows per micro-batch for a batch of ``rows`` x ``width`` positions under ``budget``
    positions (0: no limit); at least one row, so a single row wider than the budget goes alone."""
    if budget <= 0 or rows * width <= budget:
        return rows
    return max(1, budget // max(width, 1))


def micro_batch_positions(setting: int, device: str, *, processes: int = 1) -> int:
    """The positions per micro-batch a run trains with (0: whole batches): ``setting``
    (``local.micro_batch_tokens``), or on a CPU ``CPU_MICRO_BATCH_TOKENS`` when it is 0. Several
    processes train whole batches (their gradients are exchanged once per backward)."""
    if processes > 1:
        return 0
    if setting:
        return setting
    return CPU_MICRO_BATCH_TOKENS if device == "cpu" else 0


@dataclass(frozen=True)
class FitEstimate:
    """Bytes a training run needs, by part, against what the device has."""

    method: str
    """The training method (``config.METHODS``)."""
    weights: int
    """The frozen base weights; 0 for ``full``, whose weights are all in ``trained``."""
    trained: int
    """Trainable parameters times their training state (``TRAINING_STATE_BYTES``)."""
    activations: int
    total: int
    available: int | None
    device: str
    trainable_params: int
    notes: list[str] = field(default_factory=list)
    micro_batch_rows: int = 0
    """Rows of each micro-batch, whose activations are what a step holds at once; 0: the batch
    goes whole."""
    process: int = 0
    """The training process itself (``CPU_PROCESS_BYTES``; CPU runs only)."""
    casts: int = 0
    """bf16 copies of fp32 trained weights that autocast keeps during a forward (full fine-tuning)."""

    @property
    def fits(self) -> bool | None:
        return None if not self.available else self.total <= 0.9 * self.available

    def lines(self) -> list[str]:
        if self.method == "full":
            parts = f"weights + gradients + Adam {self.trained / GiB:.2f} GiB"
        else:
            parts = f"weights {self.weights / GiB:.2f} GiB + adapter state {self.trained / GiB:.2f} GiB"
        of = f" (micro-batches of {self.micro_batch_rows} rows)" if self.micro_batch_rows else ""
        other = f" + other {(self.process + self.casts) / GiB:.2f} GiB" if self.process + self.casts else ""
        out = [f"{parts} + activations{of} {self.activations / GiB:.2f} GiB{other} ≈ {self.total / GiB:.1f} GiB"]
        where = "GPU memory" if self.device == "cuda" else "available RAM"
        if self.available:
            verdict = "fits" if self.fits else "does NOT fit"
            out.append(f"{verdict}: {self.available / GiB:.1f} GiB {where}")
        if other:
            what = [f"the Python process {self.process / GiB:.2f} GiB" if self.process else "",
                    f"autocast's bf16 weight copies {self.casts / GiB:.2f} GiB" if self.casts else ""]
            out.append("other: " + ", ".join(w for w in what if w))
        return out + self.notes


def estimate_fit(shape: ModelShape, *, method: str, device: str, precision: str, quantization: str,
                 lora_r: int, target_modules: Sequence[str], num_virtual_tokens: int, batch_size: int,
                 max_length: int, available: int | None, micro_batch_tokens: int = 0) -> FitEstimate:
    """A rough upper bound of the memory ``method`` needs to train ``shape``.

    ``precision``: ``bf16`` or ``fp32`` (resolve ``auto`` first). Trainable parameters carry
    ``TRAINING_STATE_BYTES`` each; for ``full`` that is every weight and no frozen copy is
    counted besides. Activations follow the per-layer estimate of Korthikanti et al. (2022),
    ``s*b*h*34 + 5*a*s*s*b`` bytes in 16-bit, plus the logits and their gradient in fp32;
    gradient checkpointing would cut them. Prefix tuning attends over ``num_virtual_tokens``
    more keys (``s*(s + p)`` scores); DoRA keeps each target's base and LoRA outputs for the
    magnitude's gradient (two ``s*b*out`` tensors a module). With ``micro_batch_tokens`` (the
    run's budget, ``micro_batch_positions``; 0: whole batches) a batch of more positions trains
    in micro-batches of whole rows, and the activations are one micro-batch's. A CPU run's
    process (``CPU_PROCESS_BYTES``) and, in full fine-tuning under bf16, autocast's bf16 copy of
    the weights are counted as ``other``.
    """
    compute = "bf16" if precision == "bf16" else "fp32"
    per_param = BYTES_PER_PARAM[quantization if quantization in ("4bit", "8bit") else compute]
    trainable = trainable_params(shape, method=method, lora_r=lora_r, target_modules=target_modules,
                                 num_virtual_tokens=num_virtual_tokens)
    weights = 0 if method == "full" else int(shape.params * per_param)
    trained = trainable * TRAINING_STATE_BYTES
    micro = micro_batch_rows(batch_size, max_length, micro_batch_tokens)
    s, b, h, a = max_length, micro, shape.hidden, shape.heads
    p = num_virtual_tokens if method == "prefix" else 0
    per_layer16 = s * b * h * 34 + 5 * a * s * (s + p) * b
    dims = shape.linear_dims()
    if method == "dora":
        per_layer16 += 2 * 2 * s * b * sum(dims[m][1] for m in target_modules if m in dims)
    act_scale = 1.0 if compute == "bf16" else 2.0
    logits = 2 * b * s * shape.vocab * 4
    activations = int(shape.layers * per_layer16 * act_scale + logits)
    notes = []
    unknown = [m for m in target_modules if m not in dims]
    if unknown and method in ("lora", "dora"):
        notes.append(f"not counted (unknown modules): {', '.join(unknown)}")
    if shape.source == "embedded":
        notes.append("shape of the embedded SmolLM2-135M")
    process = CPU_PROCESS_BYTES if device == "cpu" else 0
    casts = shape.params * 2 if method == "full" and compute == "bf16" else 0
    return FitEstimate(method=method, weights=weights, trained=trained, activations=activations,
                       total=weights + trained + activations + process + casts, available=available, device=device,
                       trainable_params=trainable, notes=notes,
                       micro_batch_rows=micro if micro < batch_size else 0, process=process, casts=casts)
