"""The training and validation loss chart (textual-plotext), redrawn at most a few times a second."""

from __future__ import annotations

import time

from textual_plotext import PlotextPlot

from ftui.core.progress import thin

REDRAW_S = 0.5


class LossChart(PlotextPlot):
    """Loss against step. ``set_series`` only stores; a timer redraws when data changed."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._train: list[tuple[int, float]] = []
        self._val: list[tuple[int, float]] = []
        self._total_steps = 0
        self._dirty = True
        self._drawn_at = 0.0

    def on_mount(self) -> None:
        super().on_mount()
        self._draw()
        self.set_interval(REDRAW_S, self._maybe_draw)

    def set_series(self, train: list[tuple[int, float]], val: list[tuple[int, float]], total_steps: int) -> None:
        if (len(train), train[-1:] , len(val), val[-1:], total_steps) != (
                len(self._train), self._train[-1:], len(self._val), self._val[-1:], self._total_steps):
            self._train, self._val, self._total_steps = list(train), list(val), total_steps
            self._dirty = True
            if time.monotonic() - self._drawn_at >= REDRAW_S:
                self._maybe_draw()  # idle for a while: show it now, not at the next tick

    def _maybe_draw(self) -> None:
        # Hidden (another screen in front): leave the work until it is seen again.
        if self._dirty and self.screen.is_current and self.is_on_screen:
            self._draw()

    def _draw(self) -> None:
        self._dirty = False
        self._drawn_at = time.monotonic()
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.xlabel("step")
        plt.title("loss")
        if self._train:
            pts = thin(self._train)
            plt.plot([s for s, _ in pts], [v for _, v in pts], label="train", marker="braille")
        if self._val:
            plt.scatter([s for s, _ in self._val], [v for _, v in self._val], label="validation", marker="dot")
        if self._total_steps:
            plt.xlim(0, max(self._total_steps, 1))
        if not self._train and not self._val:
            plt.title("loss (waiting for the first step)")
        self.refresh()
