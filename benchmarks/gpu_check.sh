#!/usr/bin/env bash
# One command for a GPU box: ftui's LoRA, QLoRA and full fine-tuning on a Llama 3.2 1B shape
# (random weights), plus the ratio to TRL's SFTTrainer defaults; ends with one JSON line.
#
#   benchmarks/gpu_check.sh                # one H100/H200, under 8 minutes
#   benchmarks/gpu_check.sh --cpu-smoke    # the same code on a tiny model on the CPU
#
# gpu_check.py keeps itself inside its own 450 s budget (--budget-s) and reports what did not
# fit as null; the timeout here is the backstop for a hang outside it. PYTHON picks the
# interpreter (default: the checkout's .venv, else python3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$here/../.venv/bin/python" ]]; then python="$here/../.venv/bin/python"; else python=python3; fi
fi
export PYTHONUNBUFFERED=1
exec timeout --kill-after=15 480 "$python" "$here/gpu_check.py" "$@"
