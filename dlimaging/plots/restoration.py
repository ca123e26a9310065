"""The restoration figure: noisy, restored and clean crops side by side, with their PSNR.

Drawn with matplotlib's object API, as `dlimaging.plots`; imports no TensorFlow.
"""

from __future__ import annotations

import os
import pathlib
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from dlimaging.plots._base import save
from dlimaging.validation import check_max_val, check_same_shape

# PSNR of two identical samples is infinite; metrics, figures and reports cap it here (dB).
PSNR_CAP = 100.0
MAX_SAMPLES = 4


def psnr(clean, other, max_val: float = 1.0) -> float:
    """PSNR of one sample against its clean version, in dB (numpy, capped at `PSNR_CAP`). The two must
    have one shape, and `max_val` must be positive (`dlimaging.validation.check_max_val`)."""
    max_val = check_max_val(max_val)
    clean, other = np.asarray(clean, "float64"), np.asarray(other, "float64")
    check_same_shape(("clean", "other"), (clean.shape, other.shape), "PSNR compares them sample by sample")
    mse = float(np.mean((clean - other) ** 2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * np.log10(max_val**2 / mse))


def _shown(image: np.ndarray, max_val: float) -> np.ndarray:
    """An image (height, width, channels) for `imshow`: grey as 2D, colour (the first three
    channels) in [0, 1]; an image of two channels shows its first, in grey."""
    image = np.clip(np.asarray(image, "float64") / max_val, 0.0, 1.0)
    return image[..., 0] if image.shape[-1] < 3 else image[..., :3]


def restoration_figure(noisy, restored, clean, *, max_val: float = 1.0, title: str = "",
                       axis: Sequence[float] | None = None) -> Figure:
    """Up to four samples, one row each: noisy | restored | clean for images, the three curves
    in one panel for signals; each titled with its PSNR against the clean sample.

    Args:
        noisy, restored, clean: arrays (N, height, width, channels) or (N, length, channels).
        max_val: float > 0. The data's value range. Defaults to 1.0.
        title: str. The figure's title. Defaults to "".
        axis: the signals' axis (e.g. wavenumbers), or None for the sample index.

    Returns:
        A `matplotlib.figure.Figure`.

    Example:
    >>> fig = restoration_figure(x_noisy, model.predict(x_noisy), x_clean)  # doctest: +SKIP
    >>> clean = np.zeros((2, 16, 16, 1))
    >>> fig = restoration_figure(clean + 0.1, clean + 0.01, clean)
    >>> [ax.get_title() for ax in fig.axes[:3]]
    ['noisy: 20.00 dB', 'restored: 40.00 dB', 'clean']
    """
    max_val = check_max_val(max_val)
    noisy, restored, clean = (np.asarray(a)[:MAX_SAMPLES] for a in (noisy, restored, clean))
    count = len(clean)
    images = clean.ndim == 4
    if images:
        fig = Figure(figsize=(7.5, 2.6 * count + 0.4), constrained_layout=True)
        axes = fig.subplots(count, 3, squeeze=False)
        for row in range(count):
            for col, (name, image) in enumerate((("noisy", noisy), ("restored", restored), ("clean", clean))):
                ax = axes[row][col]
                ax.imshow(_shown(image[row], max_val), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                label = name if name == "clean" else f"{name}: {psnr(clean[row], image[row], max_val):.2f} dB"
                ax.set_title(label, fontsize=9)
    else:
        fig = Figure(figsize=(7.5, 2.4 * count + 0.4), constrained_layout=True)
        axes = fig.subplots(count, 1, squeeze=False)
        for row in range(count):
            ax = axes[row][0]
            x = np.arange(clean.shape[1]) if axis is None or len(axis) != clean.shape[1] else np.asarray(axis)
            ax.plot(x, noisy[row, :, 0], color="0.65", lw=0.8,
                    label=f"noisy ({psnr(clean[row], noisy[row], max_val):.2f} dB)")
            ax.plot(x, clean[row, :, 0], color="black", lw=1.0, label="clean")
            ax.plot(x, restored[row, :, 0], color="tab:red", lw=1.0,
                    label=f"restored ({psnr(clean[row], restored[row], max_val):.2f} dB)")
            ax.legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_restoration(noisy, restored, clean, path: str | os.PathLike, **kwargs) -> pathlib.Path:
    """`restoration_figure` into a PNG file; returns its path."""
    return save(restoration_figure(noisy, restored, clean, **kwargs), path)
