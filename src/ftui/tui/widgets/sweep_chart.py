"""A sweep's validation metric against one swept setting (textual-plotext), shown on the Study
screen where a setting has three or more numeric values (``core.sweep.plot_axis``)."""

from __future__ import annotations

from typing import Sequence

from textual_plotext import PlotextPlot

from ftui.tui.widgets.loss_chart import run_color


class SweepChart(PlotextPlot):
    """``show`` stores the lines and redraws only when they changed (the screen polls)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: tuple | None = None

    def show(self, setting: str, metric: str, lines: Sequence[tuple[str, Sequence[tuple[float, float]]]]) -> None:
        key = (setting, metric, tuple((label, tuple(points)) for label, points in lines))
        if key == self._shown:
            return
        self._shown = key
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        xs = [x for _, points in lines for x, _ in points]
        if xs and min(xs) > 0 and max(xs) / min(xs) >= 10:  # learning rates: a factor per step reads evenly
            plt.xscale("log")
        for i, (label, points) in enumerate(lines):
            plt.plot([x for x, _ in points], [100 * y for _, y in points], marker="dot", color=run_color(i),
                     label=label if len(lines) > 1 else None)
        plt.xlabel(setting)
        plt.title(f"validation {metric} (%) against {setting}")
        self.refresh()
