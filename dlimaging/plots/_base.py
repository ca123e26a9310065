"""What every figure shares: saving to PNG, grids of panels, image panels and log axes.

Figures are built with matplotlib's object API (`matplotlib.figure.Figure`), so importing the
plots neither loads `matplotlib.pyplot` nor changes the global backend: a notebook keeps its
inline figures.
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Sequence

import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure

from dlimaging.validation import check_choice

MAX_CATEGORY_LABELS = 8  # more labels than this on a categorical panel are thinned


def save(fig: Figure, path: str | os.PathLike) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)  # the Agg canvas, whatever the global backend
    return path


def log_x(ax, values: Sequence[float]) -> None:
    """Sets a log x scale whose labels never crowd: a few major ticks labelled, minor ones not.

    Args:
        ax: the `Axes`.
        values: the positive x values plotted, to tell how many decades they span.
    """
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10))
    ax.xaxis.set_major_formatter(ticker.LogFormatterSciNotation(base=10))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    low, high = min(values), max(values)
    first, last = math.ceil(math.log10(low) - 1e-9), math.floor(math.log10(high) + 1e-9)
    if last > first:
        return  # at least two powers of ten lie in the data's range: the decades are labelled
    # Fewer than two labelled decades: label 1, 2, 5 (else 1..9) x 10^k instead.
    for mantissas in ((1, 2, 5), range(1, 10)):
        ticks = [m * 10.0**k for k in range(first - 1, last + 1) for m in mantissas
                 if low * (1 - 1e-9) <= m * 10.0**k <= high * (1 + 1e-9)]
        if len(ticks) >= 2:
            break
    if len(ticks) < 2:
        ax.set_xticks([low, high], [f"{low:.1e}", f"{high:.1e}"])
        return
    step = -(-len(ticks) // 4)  # at most four labels
    ax.set_xticks(ticks[::step], [f"{t:.0e}" for t in ticks[::step]])


def columns(values) -> "np.ndarray":
    """(N,) or (N, K) values as an (N, K) float array."""
    import numpy as np

    values = np.asarray(values, dtype="float64")
    return values.reshape(len(values), -1)


def panels(count: int, size: float = 3.8):
    cols = min(3, count)
    rows = -(-count // cols)
    fig = Figure(figsize=(size * cols, size * rows * 0.9), layout="tight")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, list(axes.flat[:count])


def grid(count: int, cols: int, width: float, height: float):
    cols = max(1, min(cols, count))
    rows = max(1, -(-count // cols))
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, list(axes.flat[:count])


def image_panel(ax, image: np.ndarray, **kwargs):
    """A (H, W) or (H, W, C) image: grey for one channel, RGB (clipped to [0, 1]) for three,
    channel 0 otherwise."""
    image = np.asarray(image, "float64")
    if image.ndim == 3:
        image = np.clip(image, 0, 1) if image.shape[-1] == 3 else image[..., 0]
    if image.ndim == 2:
        kwargs = {"cmap": "gray"} | kwargs
    shown = ax.imshow(image, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def better(direction: str) -> str:
    """How a person reads a direction: "lower is better" or "higher is better"."""
    return "lower is better" if check_choice("direction", direction, ("min", "max")) == "min" else "higher is better"
