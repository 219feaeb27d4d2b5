"""Library noise kept out of ``runner.log``: lines that look like failures to the person who
opens the log (the Training screen's ``l``) and are nobody's business but the libraries'.

Each one is named and dropped where it is made; everything else (errors, tracebacks, warnings
about the user's data or settings) goes to the log as before.
"""

from __future__ import annotations

import logging
import os
import warnings

BNB_CPU_LOGGER = "bitsandbytes.backends.cpu.ops"
BNB_CPU_KERNEL = "Failed to load CPU gemm_4bit_forward from kernels-community"
"""bitsandbytes (imported by peft and transformers) logs this warning at import, on a CPU with
AVX512-BF16, when the optional ``kernels`` package is missing: a faster 4-bit matmul on the CPU.
ftui never runs 4-bit on the CPU (quantization is CUDA only), so it means nothing here."""

QUIET_FUTURE_WARNINGS = r"(transformers|peft)(\.|$)"
"""Modules whose FutureWarnings are deprecations between the libraries (peft reads transformers'
deprecated ``is_gradient_checkpointing``): theirs to fix; the user can change nothing."""


def _not_the_cpu_kernel_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(BNB_CPU_KERNEL)


def quiet_libraries() -> None:
    """Set up the runner process before it imports any library (``python -m ftui.runner``)."""
    # Progress bars would only fill runner.log.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    # The logger exists before its module is imported: the filter is in place when it logs.
    logging.getLogger(BNB_CPU_LOGGER).addFilter(_not_the_cpu_kernel_notice)
    warnings.filterwarnings("ignore", category=FutureWarning, module=QUIET_FUTURE_WARNINGS)
