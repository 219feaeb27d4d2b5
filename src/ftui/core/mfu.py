"""Model-FLOPs utilisation (MFU) of a GPU training run: the model's FLOPs per token times the
tokens per second, over the GPU's peak dense bf16 rate. Pure: no torch.

FLOPs per trained token (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", 2.1: a
forward pass is 2N, the backward pass twice that; PaLM, Chowdhery et al. 2022, appendix B, defines
MFU with this count): the forward pass is 2 per parameter; the backward pass computes the
gradient of every layer's input (2 per parameter, frozen or not, since gradients flow through the
frozen layers to the adapters below them) and the gradient of the trainable weights only
(2 per trainable parameter). So ``4 N + 2 T`` for N parameters of which T train: ``6 N`` for full
fine-tuning, about ``4 N`` for LoRA. Left out, so MFU reads a little low rather than high: the
attention scores' FLOPs (PaLM's 6 L H Q T per token for full training, which grow with the
sequence length: about 6% of 4 N at SmolLM2-135M's 30 layers and 300 tokens, 2.5% for an 8B
model at 1,024). Counted although it is a lookup: the input embedding of a model whose output
layer does not share its weights (a few percent of N). benchmarks/gpu_check.py counts the same
way but for those two (Linear weights only, causal attention added), so the two differ by a few
percent.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

GPU_PEAK_TFLOPS: dict[str, tuple[float, str]] = {
    # A name fragment (a whole word of the GPU's name, matched case-insensitively, most specific
    # first) -> (dense bf16 Tensor Core TFLOP/s, the source). Datasheets give "with sparsity"
    # figures twice the dense ones; these are the dense ones (nvidia.com/en-us/data-center/<gpu>).
    # benchmarks/_training.py reads this table too.
    "H100 PCIe": (756.0, "NVIDIA H100 datasheet: BF16 1,513 TFLOPS with sparsity (PCIe)"),
    "H100 NVL": (835.5, "NVIDIA H100 datasheet: BF16 1,671 TFLOPS with sparsity (NVL)"),
    "H100": (989.4, "NVIDIA H100 datasheet: BF16 1,979 TFLOPS with sparsity (SXM)"),
    "H200 NVL": (835.5, "NVIDIA H200 datasheet: BF16 1,671 TFLOPS with sparsity (NVL)"),
    "H200": (989.4, "NVIDIA H200 datasheet: BF16 1,979 TFLOPS with sparsity (SXM)"),
    "GH200": (989.4, "NVIDIA GH200 datasheet: BF16 1,979 TFLOPS with sparsity"),
    "A100": (312.0, "NVIDIA A100 datasheet: BF16 312 TFLOPS (624 with sparsity)"),
    "L40S": (362.05, "NVIDIA L40S datasheet: BF16 362.05 TFLOPS (733 with sparsity)"),
    "L40": (181.05, "NVIDIA L40 datasheet: BF16 181.05 TFLOPS (362.1 with sparsity)"),
    "L4": (121.0, "NVIDIA L4 datasheet: BF16 242 TFLOPS with sparsity"),
    "A40": (149.7, "NVIDIA A40 datasheet: BF16 149.7 TFLOPS (299.4 with sparsity)"),
    "A10": (125.0, "NVIDIA A10 datasheet: BF16 125 TFLOPS (250 with sparsity)"),
    "RTX 4090": (165.2, "NVIDIA Ada Lovelace whitepaper: RTX 4090 BF16 165.2 TFLOPS, FP32 accumulate"),
}


def gpu_peak(gpu_name: str | None) -> tuple[float, str] | None:
    """(dense bf16 TFLOP/s, source) of the GPU from the table; None for a GPU not in it (no MFU
    rather than a guessed one) and for no GPU. The benchmarks read the same table."""
    if not gpu_name:
        return None
    for fragment, peak in GPU_PEAK_TFLOPS.items():
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(fragment)}(?![A-Za-z0-9])", gpu_name, re.IGNORECASE):
            return peak
    return None


def gpu_peak_flops(gpu_name: str | None) -> float | None:
    """FLOP/s of the GPU's dense bf16 peak (``gpu_peak``), or None."""
    peak = gpu_peak(gpu_name)
    return peak[0] * 1e12 if peak else None


def flops_per_token(total_params: float, trainable_params: float) -> float:
    """Training FLOPs per token: ``4 N + 2 T`` (6 N when every weight trains); see the module."""
    return 4 * total_params + 2 * min(trainable_params, total_params)


def mfu(*, tokens_per_s: float | None, hw: Mapping[str, Any] | None, devices: int = 1) -> float | None:
    """The share of ``devices`` GPUs' peak that the run's model FLOPs used, from a train event's
    ``tokens_per_s`` (every process's tokens) and an ``hw`` event (GPU name, parameter counts);
    None on a CPU, for a GPU not in the table, or before both are known."""
    if not hw or not tokens_per_s or tokens_per_s <= 0:
        return None
    peak = gpu_peak_flops(hw.get("gpu_name"))
    total, trainable = hw.get("total_params"), hw.get("trainable_params")
    if peak is None or not total or trainable is None:
        return None
    return flops_per_token(total, trainable) * tokens_per_s / (peak * max(devices, 1))


def run_mfu(train: Mapping[str, Any] | None, hw: Mapping[str, Any] | None) -> float | None:
    """A run's MFU from its last ``train`` and ``hw`` events (None where ``mfu`` gives none)."""
    return mfu(tokens_per_s=(train or {}).get("tokens_per_s"), hw=hw, devices=(hw or {}).get("processes") or 1)


def mfu_text(share: float | None) -> str:
    """``MFU 41.2%`` (empty without one)."""
    return "" if share is None else f"MFU {100 * share:.1f}%"
