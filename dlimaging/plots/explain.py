"""The figures of `dlimaging.explain`: feature maps, filters, Grad-CAM and saliency.

Part of `dlimaging.plots` (which re-exports every function here), kept in its
own module by role. Matplotlib's object API only: no pyplot, no backend change.
Spectra and other 1D inputs are drawn as curves, images as images.
"""

from __future__ import annotations

import os
import pathlib
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from dlimaging.errors import InputError
from dlimaging.plots._base import grid, image_panel, save

HEAT = "inferno"  # Grad-CAM and saliency: dark = no evidence, bright = strong
BAND = "YlOrRd"  # the band behind a spectrum: pale where nothing counts, so the curve stays readable
KERNEL = "RdBu_r"  # kernels: blue negative, red positive, white zero


def _signal(x) -> np.ndarray:
    x = np.asarray(x, "float64")
    return x[:, 0] if x.ndim == 2 else x


def _positions(length: int, axis) -> np.ndarray:
    return np.arange(length, dtype="float64") if axis is None else np.asarray(axis, "float64")


def _is_image(x) -> bool:
    x = np.asarray(x)
    return x.ndim == 3 or (x.ndim == 2 and x.shape[1] > 4)


def feature_maps_figure(maps: Mapping[str, np.ndarray], *, channels: int = 8, axis: Sequence[float] | None = None,
                        title: str = "") -> Figure:
    """A grid of feature maps: one row per layer, one column per channel (the first `channels`).

    Args:
        maps: `dlimaging.explain.methods.feature_maps(model, x)`: layer name → (length,
            channels) for 1D models (drawn as curves) or (height, width, channels)
            for 2D models (drawn as images).
        channels: int. Channels drawn per layer. Defaults to 8.
        axis: list of numbers or None. For 1D maps of the input's length, its
            axis (wavenumbers); pooled maps are drawn over the same range.
            Defaults to None (the index).
        title: str. Figure title. Defaults to "".

    Returns:
        A `matplotlib.figure.Figure`.
    """
    if not maps:
        raise InputError("`maps` is empty: pass feature_maps(model, x).")
    shown = {name: np.asarray(m) for name, m in maps.items()}
    if any(m.ndim not in (2, 3) for m in shown.values()):
        raise InputError("feature_maps_figure draws 1D (length, channels) and 2D (height, width, channels) maps. "
                         f"Received shapes: { {n: m.shape for n, m in shown.items()} }")
    cols = min(channels, max(m.shape[-1] for m in shown.values()))
    images = all(m.ndim == 3 for m in shown.values())
    fig = Figure(figsize=(1.5 * cols + 1.0, (1.5 if images else 1.1) * len(shown) + 0.4), layout="constrained")
    axes = fig.subplots(len(shown), cols, squeeze=False)
    for index, (row, (name, m)) in enumerate(zip(axes, shown.items())):
        for c, ax in enumerate(row):
            if c >= m.shape[-1]:
                ax.axis("off")
                continue
            if m.ndim == 3:
                ax.imshow(m[..., c], cmap="viridis")
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                low, high = (0, len(m) - 1) if axis is None else (axis[0], axis[-1])
                ax.plot(np.linspace(low, high, len(m)), m[:, c], linewidth=0.9)
                ax.tick_params(labelsize=6)
                if axis is not None and axis[0] > axis[-1]:
                    ax.invert_xaxis()
            if c == 0:
                ax.set_ylabel(f"{name}\n{'×'.join(map(str, m.shape[:-1]))}", fontsize=8)
            if index == 0:
                ax.set_title(f"channel {c}", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def filters_figure(kernels: np.ndarray, *, channel: int = 0, max_filters: int = 32, title: str = "") -> Figure:
    """The kernels of a conv layer: small images (2D) or curves (1D), one panel per filter.

    Args:
        kernels: `dlimaging.explain.methods.filters(model, layer)`: (filters, *kernel
            size, input channels).
        channel: int. The input channel drawn, when the kernels have several
            (RGB kernels of three channels are drawn in colour). Defaults to 0.
        max_filters: int. Filters drawn at most. Defaults to 32.
        title: str. Figure title. Defaults to "".

    Returns:
        A `matplotlib.figure.Figure`; 2D kernels share one colour scale centred
        on zero (blue negative, red positive).
    """
    kernels = np.asarray(kernels, "float64")
    if kernels.ndim not in (3, 4):
        raise InputError(f"`kernels` must be (filters, length, channels) or (filters, height, width, channels). "
                         f"Received shape {kernels.shape}")
    if not 0 <= channel < kernels.shape[-1]:
        raise InputError(f"`channel` must be in [0, {kernels.shape[-1] - 1}]. Received: channel={channel!r}")
    kernels = kernels[:max_filters]
    fig, axes = grid(len(kernels), 8, 1.2 if kernels.ndim == 4 else 1.5, 1.2 if kernels.ndim == 4 else 1.0)
    limit = float(np.abs(kernels).max()) or 1.0
    for index, (ax, kernel) in enumerate(zip(axes, kernels)):
        if kernel.ndim == 3:
            if kernel.shape[-1] == 3:  # an RGB kernel, mapped to [0, 1] around grey
                image_panel(ax, 0.5 + kernel / (2 * limit))
            else:
                image_panel(ax, kernel[..., channel], cmap=KERNEL, vmin=-limit, vmax=limit)
        else:
            ax.axhline(0.0, color="0.7", linewidth=0.6)
            ax.plot(kernel[:, channel], "o-", markersize=2.5, linewidth=1)
            ax.set_ylim(-limit * 1.1, limit * 1.1)
            ax.set_xticks([])
            ax.tick_params(labelsize=6)
        ax.set_title(str(index), fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def _overlay_1d(ax, signal, heat, positions, label: str):
    """The signal as a curve over a band coloured by `heat` (0 dark to 1 bright), each of the band's
    cells centred on its point (a vector of a few features shows one cell per feature)."""
    span = (positions[0], positions[-1])
    half = (span[1] - span[0]) / (2 * (len(positions) - 1)) if len(positions) > 1 else 0.5
    low, high = float(signal.min()), float(signal.max())
    pad = 0.05 * (high - low or 1.0)
    shown = ax.imshow(heat[None, :], aspect="auto", cmap=BAND, vmin=0, vmax=1, alpha=0.7,
                      extent=(span[0] - half, span[1] + half, low - pad, high + pad), origin="lower")
    ax.plot(positions, signal, color="C0", linewidth=1.2)
    ax.set_xlim(span)  # as stored: wavenumbers from high to low run left to right
    ax.set_ylabel("input")
    ax.figure.colorbar(shown, ax=ax, label=label, fraction=0.05, pad=0.01)


def _explanation(x, maps: dict[str, np.ndarray], *, axis, axis_label, title) -> Figure:
    """Grad-CAM and/or saliency over one input: 1D as an overlay and curves, 2D as images."""
    spatial = np.shape(x)[:2] if _is_image(x) else _signal(x).shape
    for name, heat in maps.items():
        if heat.shape != spatial:
            raise InputError(f"The {name} map must have the input's size {spatial} (the input's shape is "
                             f"{np.shape(x)}). Received: a map of shape {heat.shape}")
    if _is_image(x):
        image = np.asarray(x, "float64")
        panels = 1 + 2 * len(maps)
        fig = Figure(figsize=(2.8 * panels, 3.0), layout="constrained")
        axes = list(fig.subplots(1, panels, squeeze=False)[0])
        image_panel(axes[0], image)
        axes[0].set_title("input", fontsize=9)
        for index, (name, heat) in enumerate(maps.items()):
            alone, over = axes[1 + 2 * index], axes[2 + 2 * index]
            image_panel(alone, heat, cmap=HEAT, vmin=0, vmax=1)
            alone.set_title(name, fontsize=9)
            image_panel(over, image)
            image_panel(over, heat, cmap=HEAT, vmin=0, vmax=1, alpha=0.5)
            over.set_title(f"{name} over the input", fontsize=9)
    else:
        signal = _signal(x)
        positions = _positions(len(signal), axis)
        fig = Figure(figsize=(8, 4.6), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        first = next(iter(maps))
        _overlay_1d(top, signal, maps[first], positions, first)
        for index, (name, curve) in enumerate(maps.items()):
            bottom.plot(positions, curve, color=f"C{index + 1}", linewidth=1.1, label=name)
        bottom.set_ylim(0, 1.05)
        bottom.set_ylabel("importance")
        bottom.set_xlabel("index" if axis is None else (axis_label or "axis"))
        bottom.grid(alpha=0.3)
        bottom.legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title)
    return fig


def grad_cam_figure(x, heatmap, *, saliency=None, axis: Sequence[float] | None = None, axis_label: str | None = None,
                    title: str = "") -> Figure:
    """A Grad-CAM map over its input: an image with the map laid over it, or a spectrum on a band
    coloured by the map, with the map (and the saliency curve, if given) drawn below.

    Args:
        x: one input: (length, channels) or (length,) for a signal; (height,
            width, channels) or (height, width) for an image.
        heatmap: `dlimaging.explain.methods.grad_cam(model, x)`, of the input's spatial size.
        saliency: `dlimaging.explain.methods.saliency(model, x)` or None. Drawn too. Defaults to None.
        axis: list of numbers or None. A signal's axis (wavenumbers). Defaults to None.
        axis_label: str or None. What the axis measures. Defaults to None.
        title: str. Figure title. Defaults to "".

    Returns:
        A `matplotlib.figure.Figure`.
    """
    maps = {"Grad-CAM": np.asarray(heatmap, "float64")}
    if saliency is not None:
        maps["saliency"] = np.asarray(saliency, "float64")
    return _explanation(x, maps, axis=axis, axis_label=axis_label, title=title)


def saliency_figure(x, saliency, *, axis: Sequence[float] | None = None, axis_label: str | None = None,
                    title: str = "") -> Figure:
    """A saliency map over its input (as `grad_cam_figure`, with the saliency alone).

    Args:
        x: one input, as in `grad_cam_figure`.
        saliency: `dlimaging.explain.methods.saliency(model, x)`.
        axis, axis_label, title: as in `grad_cam_figure`.

    Returns:
        A `matplotlib.figure.Figure`.
    """
    return _explanation(x, {"saliency": np.asarray(saliency, "float64")}, axis=axis, axis_label=axis_label,
                        title=title)


def plot_feature_maps(maps, path: str | os.PathLike, **kwargs) -> pathlib.Path:
    """Writes `feature_maps_figure(maps, **kwargs)` to a PNG file; returns its path."""
    return save(feature_maps_figure(maps, **kwargs), path)


def plot_filters(kernels, path: str | os.PathLike, **kwargs) -> pathlib.Path:
    """Writes `filters_figure(kernels, **kwargs)` to a PNG file; returns its path."""
    return save(filters_figure(kernels, **kwargs), path)


def plot_grad_cam(x, heatmap, path: str | os.PathLike, **kwargs) -> pathlib.Path:
    """Writes `grad_cam_figure(x, heatmap, **kwargs)` to a PNG file; returns its path."""
    return save(grad_cam_figure(x, heatmap, **kwargs), path)


def plot_saliency(x, saliency, path: str | os.PathLike, **kwargs) -> pathlib.Path:
    """Writes `saliency_figure(x, saliency, **kwargs)` to a PNG file; returns its path."""
    return save(saliency_figure(x, saliency, **kwargs), path)
