"""Figures of one training run and its data: history, parity and residuals, confusion matrix, spectra.

Each `*_figure` function returns a `matplotlib.figure.Figure` (shown inline in a notebook once
`%matplotlib inline` is on); each `plot_*` function draws the same figure into a PNG file and
returns its path.
"""

from __future__ import annotations

import os
import pathlib
from typing import Mapping, Sequence

from matplotlib import ticker
from matplotlib.figure import Figure

from dlimaging.plots._base import columns, panels, save


def history_figure(history: Mapping[str, Sequence[float]], title: str = "") -> Figure:
    """Training and validation curves of every metric: the overfitting picture.

    Args:
        history: a `keras.callbacks.History.history` dict, e.g.
            `{"loss": [...], "val_loss": [...], "accuracy": [...]}`.
        title: str. Figure title. Defaults to "".

    Returns:
        A `matplotlib.figure.Figure`, one panel per metric.
    """
    metrics = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    fig = Figure(figsize=(5 * max(1, len(metrics)), 3.6), layout="tight")
    axes = fig.subplots(1, max(1, len(metrics)), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        epochs = range(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], "o-", label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "s-", label="validation")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def plot_history(history: Mapping[str, Sequence[float]], path: str | os.PathLike, title: str = "") -> pathlib.Path:
    """Writes `history_figure(history, title)` to a PNG file.

    Args:
        history: a `keras.callbacks.History.history` dict.
        path: where to write the PNG.
        title: str. Figure title. Defaults to "".

    Returns:
        The `pathlib.Path` written.
    """
    return save(history_figure(history, title), path)


def regression_scores(y_true, y_pred) -> tuple[list[float], list[float]]:
    """R² and RMSE of each target column, as scikit-learn's `r2_score` and
    `root_mean_squared_error` compute them (`y_true`, `y_pred`: (N,) or (N, K))."""
    import numpy as np

    y_true, y_pred = columns(y_true), columns(y_pred)
    residual = np.sum((y_true - y_pred) ** 2, axis=0)
    total = np.sum((y_true - y_true.mean(axis=0)) ** 2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1.0 - residual / total, np.where(residual > 0, 0.0, 1.0))
    rmse = np.sqrt(residual / len(y_true))
    return [float(v) for v in r2], [float(v) for v in rmse]


def _target_labels(count: int, target_names: Sequence[str] | None) -> list[str]:
    if target_names and len(target_names) == count:
        return [str(n) for n in target_names]
    return [f"target {i + 1}" for i in range(count)] if count > 1 else ["target"]


def parity_figure(y_true, y_pred, target_names: Sequence[str] | None = None, title: str = "") -> Figure:
    """Predicted against true values, one panel per target, with the identity line.

    Each panel's title gives that target's R² and RMSE.

    Args:
        y_true: array (N,) or (N, K). The true values.
        y_pred: array of the same shape. The model's predictions.
        target_names: list of K names or None. Defaults to None ("target 1", ...).
        title: str. Figure title. Defaults to "".

    Returns:
        A `matplotlib.figure.Figure`.
    """
    y_true, y_pred = columns(y_true), columns(y_pred)
    names = _target_labels(y_true.shape[1], target_names)
    r2, rmse = regression_scores(y_true, y_pred)
    fig, axes = panels(len(names))
    for k, ax in enumerate(axes):
        low = float(min(y_true[:, k].min(), y_pred[:, k].min()))
        high = float(max(y_true[:, k].max(), y_pred[:, k].max()))
        ax.plot([low, high], [low, high], "-", color="0.5", linewidth=1, label="predicted = true")
        ax.plot(y_true[:, k], y_pred[:, k], "o", markersize=3, alpha=0.7)
        ax.set_xlabel(f"true {names[k]}")
        ax.set_ylabel(f"predicted {names[k]}")
        ax.set_title(f"{names[k]}: R² = {r2[k]:.4f}, RMSE = {rmse[k]:.4g}", fontsize=9)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_parity(y_true, y_pred, path, target_names: Sequence[str] | None = None, title: str = "") -> pathlib.Path:
    """Writes `parity_figure(y_true, y_pred, target_names, title)` to a PNG file; returns its path."""
    return save(parity_figure(y_true, y_pred, target_names, title), path)


def residuals_figure(y_true, y_pred, target_names: Sequence[str] | None = None, title: str = "") -> Figure:
    """Residuals (predicted − true) against the true value, one panel per target.

    A trend in this picture (residuals that grow or tilt with the true value)
    shows a bias that R² alone hides.

    Args:
        y_true: array (N,) or (N, K). The true values.
        y_pred: array of the same shape. The model's predictions.
        target_names: list of K names or None. Defaults to None.
        title: str. Figure title. Defaults to "".

    Returns:
        A `matplotlib.figure.Figure`.
    """
    y_true, y_pred = columns(y_true), columns(y_pred)
    names = _target_labels(y_true.shape[1], target_names)
    fig, axes = panels(len(names))
    for k, ax in enumerate(axes):
        ax.axhline(0.0, color="0.5", linewidth=1)
        ax.plot(y_true[:, k], y_pred[:, k] - y_true[:, k], "o", markersize=3, alpha=0.7)
        ax.set_xlabel(f"true {names[k]}")
        ax.set_ylabel("predicted − true")
        ax.set_title(names[k], fontsize=9)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_residuals(y_true, y_pred, path, target_names: Sequence[str] | None = None, title: str = "") -> pathlib.Path:
    """Writes `residuals_figure(y_true, y_pred, target_names, title)` to a PNG file; returns its path."""
    return save(residuals_figure(y_true, y_pred, target_names, title), path)


def confusion_counts(y_true, y_pred, num_classes: int):
    """The (num_classes, num_classes) counts: row = true class, column = predicted class."""
    import numpy as np

    counts = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(counts, (np.asarray(y_true, "int64").ravel(), np.asarray(y_pred, "int64").ravel()), 1)
    return counts


def confusion_matrix_figure(y_true, y_pred, class_names: Sequence[str], title: str = "") -> Figure:
    """The confusion matrix: how often each true class (row) was predicted as each class (column).

    Each cell shows its count; the title gives the accuracy.

    Args:
        y_true: int array (N,). True class ids, 0..C-1.
        y_pred: int array (N,). Predicted class ids.
        class_names: list of C str. The classes' names, in id order.
        title: str. Figure title. Defaults to "".

    Returns:
        A `matplotlib.figure.Figure`.
    """
    counts = confusion_counts(y_true, y_pred, len(class_names))
    size = min(12.0, 3.0 + 0.45 * len(class_names))
    fig = Figure(figsize=(size + 1.0, size), layout="tight")
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    threshold = counts.max() / 2 if counts.size else 0
    fontsize = 9 if len(class_names) <= 12 else 6
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=fontsize,
                    color="white" if counts[i, j] > threshold else "black")
    ticks = list(range(len(class_names)))
    ax.set_xticks(ticks, [str(c) for c in class_names], rotation=45 if len(class_names) > 4 else 0, ha="right"
                  if len(class_names) > 4 else "center", fontsize=fontsize)
    ax.set_yticks(ticks, [str(c) for c in class_names], fontsize=fontsize)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = int(counts.sum())
    accuracy = float(counts.trace()) / total if total else float("nan")
    ax.set_title(f"{title + ': ' if title else ''}accuracy = {accuracy:.4f} ({total} samples)", fontsize=10)
    return fig


def plot_confusion_matrix(y_true, y_pred, class_names: Sequence[str], path, title: str = "") -> pathlib.Path:
    """Writes `confusion_matrix_figure(y_true, y_pred, class_names, title)` to a PNG file; returns its path."""
    return save(confusion_matrix_figure(y_true, y_pred, class_names, title), path)


def _groups(y, class_names, target_names, groups: int):
    """(label, sample indices) per class, or per range of the first target (regression)."""
    import numpy as np

    y = np.asarray(y)
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        names = list(class_names or [str(c) for c in range(int(y.max()) + 1)])
        return [(names[c] if c < len(names) else str(c), np.flatnonzero(y == c)) for c in np.unique(y)]
    values = columns(y)
    if values.shape[1] > 1 and class_names and set(np.unique(values)) <= {0.0, 1.0}:  # multilabel
        return [(str(name), np.flatnonzero(values[:, k] == 1)) for k, name in enumerate(class_names)]
    column = values[:, 0]
    name = _target_labels(values.shape[1], target_names)[0]
    edges = np.quantile(column, np.linspace(0, 1, groups + 1))
    result = []
    for index in range(groups):
        low, high = edges[index], edges[index + 1]
        inside = (column >= low) & ((column <= high) if index == groups - 1 else (column < high))
        result.append((f"{name} {low:.3g} to {high:.3g}", np.flatnonzero(inside)))
    return result


def spectra_figure(x, y, *, axis: Sequence[float] | None = None, class_names: Sequence[str] | None = None,
                   target_names: Sequence[str] | None = None, per_group: int = 3, groups: int = 3,
                   axis_label: str | None = None, title: str = "") -> Figure:
    """A few input spectra (or signals) of each class, or of each range of the first target.

    Args:
        x: array (N, L) or (N, L, C). The signals; channel 0 is drawn.
        y: labels (N,) of class ids, or targets (N,) or (N, K) of numbers
            (grouped into `groups` quantile ranges of the first target), or
            0/1 label vectors (N, K) (one group per label).
        axis: list of L numbers or None. The signal's axis (wavelengths,
            wavenumbers); None draws against the point index. Defaults to None.
        class_names: list of str or None. Names of the classes or labels.
        target_names: list of str or None. Names of the targets.
        per_group: int. Spectra drawn per group. Defaults to 3.
        groups: int. Ranges of a numeric target. Defaults to 3.
        axis_label: str or None. What the axis measures, e.g.
            "wavenumber (cm⁻¹)". Defaults to None ("axis", or "index").
        title: str. Figure title. Defaults to "".

    Returns:
        A `matplotlib.figure.Figure`: one colour per group.
    """
    import numpy as np

    x = np.asarray(x, dtype="float64")
    signals = x[..., 0] if x.ndim == 3 else x.reshape(len(x), -1)
    positions = np.arange(signals.shape[1]) if axis is None else np.asarray(axis, dtype="float64")
    fig = Figure(figsize=(7, 4), layout="tight")
    ax = fig.subplots()
    for index, (label, members) in enumerate(_groups(y, class_names, target_names, groups)):
        color = f"C{index % 10}"
        for rank, sample in enumerate(members[:per_group]):
            ax.plot(positions, signals[sample], "-", color=color, linewidth=0.9, alpha=0.85,
                    label=label if rank == 0 else None)
    if axis is not None and len(positions) > 1 and positions[0] > positions[-1]:
        ax.invert_xaxis()  # spectra stored high to low (wavenumbers) are drawn as stored
    ax.set_xlabel("index" if axis is None else (axis_label or "axis"))
    ax.set_ylabel("value")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    return fig


def plot_spectra(x, y, path, **kwargs) -> pathlib.Path:
    """Writes `spectra_figure(x, y, **kwargs)` to a PNG file; returns its path."""
    return save(spectra_figure(x, y, **kwargs), path)
