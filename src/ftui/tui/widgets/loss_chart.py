"""The loss chart (textual-plotext), redrawn at most a few times a second: one run's training
loss smoothed over its raw points and its validation loss, or several runs' smoothed training
losses overlaid (Compare)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from textual.color import Color, ColorParseError
from textual_plotext import PlotextPlot

from ftui.core.progress import EMA_WEIGHT, ema, thin

REDRAW_S = 0.5
PALETTE = ((0, 130, 200), (60, 180, 75), (230, 25, 75), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (180, 225, 40))
"""textual-plotext's own series colours, given explicitly so the faint raw series does not
shift the others' colours."""
def run_color(index: int) -> tuple[int, int, int]:
    """The colour of the ``index``-th run's line when several are overlaid (its id wears it too)."""
    return PALETTE[index % len(PALETTE)]


SMOOTHED = f"EMA {EMA_WEIGHT:g}"
"""What the smoothed lines are, as the legend and the title say it."""

Points = Sequence[tuple[int, float]]


@dataclass(frozen=True)
class Plotted:
    """One series as drawn."""

    label: str
    points: list[tuple[int, float]]
    kind: str
    """``faint`` (raw points, behind; named in the title, not the legend), ``line`` or ``dots``."""
    color: tuple[int, int, int] | None = None
    """None: the theme's faint colour."""


class LossChart(PlotextPlot):
    """Loss against step. ``set_series`` / ``set_runs`` only store; a timer redraws when data changed."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._train: list[tuple[int, float]] = []
        self._val: list[tuple[int, float]] = []
        self._runs: list[tuple[str, list[tuple[int, float]]]] | None = None
        """Several runs overlaid (``set_runs``); None: one run (``set_series``)."""
        self._total_steps = 0
        self._dirty = True
        self._drawn_at = 0.0

    def on_mount(self) -> None:
        super().on_mount()
        # The faint colour comes from the theme: another theme, another faint.
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._changed())
        self._draw()
        self.set_interval(REDRAW_S, self._maybe_draw)

    def set_series(self, train: Points, val: Points, total_steps: int) -> None:
        """One run: its training loss (raw and smoothed) and validation loss."""
        if (len(train), train[-1:], len(val), val[-1:], total_steps) != (
                len(self._train), self._train[-1:], len(self._val), self._val[-1:], self._total_steps):
            self._train, self._val, self._total_steps = list(train), list(val), total_steps
            self._changed()

    def set_runs(self, runs: Sequence[tuple[str, Points]]) -> None:
        """Several runs, each one smoothed training-loss line in ``run_color(index)``. No legend:
        with a few runs it would cover the plot's top left; the runs' ids wear the colours."""
        self._runs = [(label, list(points)) for label, points in runs]
        self._changed()

    def _changed(self) -> None:
        self._dirty = True
        if time.monotonic() - self._drawn_at >= REDRAW_S:
            self._maybe_draw()  # idle for a while: show it now, not at the next tick

    def plotted(self) -> list[Plotted]:
        """What the chart draws, in drawing order (later series over earlier ones)."""
        if self._runs is not None:
            return [Plotted(label, thin(ema(points)), "line", run_color(i))
                    for i, (label, points) in enumerate(self._runs) if points]
        out = []
        if self._train:
            out += [Plotted("train (raw)", thin(self._train), "faint"),
                    Plotted(f"train ({SMOOTHED})", thin(ema(self._train)), "line", PALETTE[0])]
        if self._val:
            out.append(Plotted("validation", list(self._val), "dots", PALETTE[1]))
        return out

    def _maybe_draw(self) -> None:
        # Hidden (another screen in front): leave the work until it is seen again.
        if self._dirty and self.screen.is_current and self.is_on_screen:
            self._draw()

    def _faint(self) -> tuple[int, int, int]:
        """A third of the way from the background to the text: visible, never in the way."""
        theme = self.app.theme_variables
        try:
            return Color.parse(theme["surface"]).blend(Color.parse(theme["foreground"]), 0.35).rgb
        except (KeyError, ColorParseError):  # a theme without plain colours: a mid grey reads on both
            return (128, 128, 128)

    def _draw(self) -> None:
        self._dirty = False
        self._drawn_at = time.monotonic()
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.xlabel("step")
        series = self.plotted()
        for s in series:
            xs, ys = [p[0] for p in s.points], [p[1] for p in s.points]
            if s.kind == "dots":
                plt.scatter(xs, ys, label=s.label, marker="dot", color=s.color)
            else:
                # plotext puts the legend at the top left, over the start of a falling curve:
                # the faint series stays out of it (the title names it), one row fewer there.
                in_legend = s.kind != "faint" and self._runs is None
                plt.plot(xs, ys, label=s.label if in_legend else None, marker="braille",
                         color=s.color or self._faint())
        if self._runs is not None:
            plt.title(f"training loss ({SMOOTHED}), each run in its id's colour" if series
                      else "no training loss recorded")
        else:
            plt.title(("loss (faint: train, raw)" if self._train else "loss") if series
                      else "loss (waiting for the first step)")
            if self._total_steps:
                plt.xlim(0, max(self._total_steps, 1))
        self.refresh()
