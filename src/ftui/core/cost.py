"""What compute costs: a dated price table for GPUs, and money spent and projected."""

from __future__ import annotations

from dataclasses import dataclass

PRICES_AS_OF = "2026-11"
"""Date of the table below. Prices move: users set ``--set price_per_hour=...``."""

GPU_PRICE_PER_HOUR: dict[str, tuple[float, str]] = {
    # name fragment (matched case-insensitively in the GPU's name) -> (USD per hour, source)
    "A40": (0.475, "a published on-demand price for one NVIDIA A40 (cited in ftui's planning notes)"),
}


@dataclass(frozen=True)
class Price:
    per_hour: float
    basis: str


def hardware_price(gpu_name: str | None, override: float | None = None) -> Price:
    """USD per hour for this machine: the override, else the table by GPU name, else $0."""
    if override is not None:
        return Price(float(override), f"${override:g}/h (set by price_per_hour)")
    if gpu_name is None:
        return Price(0.0, "CPU: $0/h (set price_per_hour to count your machine's price)")
    for fragment, (price, _) in GPU_PRICE_PER_HOUR.items():
        if fragment.lower() in gpu_name.lower():
            return Price(price, f"{gpu_name}: ${price:g}/h (ftui price table, {PRICES_AS_OF})")
    return Price(0.0, f"{gpu_name}: not in ftui's price table; set price_per_hour for a cost")


def spent_and_projected(price: Price, elapsed_s: float, step: int, total_steps: int) -> tuple[float, float | None]:
    """Money spent after ``elapsed_s`` seconds, and projected for all steps at the same pace."""
    spent = price.per_hour * elapsed_s / 3600
    if step <= 0 or total_steps <= 0:
        return spent, None
    return spent, spent * total_steps / step
