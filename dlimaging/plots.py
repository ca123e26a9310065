"""Matplotlib figures, and PNG files of them, drawn without pyplot.

Figures are built with matplotlib's object API (`matplotlib.figure.Figure`),
so importing this module neither loads `matplotlib.pyplot` nor changes the
global backend: a notebook keeps its inline figures. Each `*_figure` function
returns the figure (shown inline when it is a cell's last value); each `plot_*`
function draws the same figure into a PNG file and returns its path.
"""

from __future__ import annotations

import itertools
import math
import os
import pathlib
from typing import Any, Mapping, Sequence

from matplotlib import ticker
from matplotlib.figure import Figure

MAX_CATEGORY_LABELS = 8  # more labels than this on a categorical panel are thinned


def _save(fig: Figure, path: str | os.PathLike) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)  # the Agg canvas, whatever the global backend
    return path


def _completed(trials: Sequence[Any]) -> list[Any]:
    return [t for t in trials if t.score is not None]


def _log_x(ax, values: Sequence[float]) -> None:
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
    return _save(history_figure(history, title), path)


def objective_per_trial_figure(trials: Sequence[Any], objective: str, *, direction: str) -> Figure:
    """The objective of each completed trial, in the order they ran, with the best so far.

    Args:
        trials: `dlimaging.results.TrialRecord`s (`trial`, `score`: None if unfinished).
        objective: str. The objective's name, for the axis.
        direction: "max" or "min": how the objective improves.

    Returns:
        A `matplotlib.figure.Figure`.
    """
    done = _completed(trials)
    fig = Figure(figsize=(6, 3.6), layout="tight")
    ax = fig.subplots()
    if done:
        xs = [int(t.trial) for t in done]
        ys = [t.score for t in done]
        ax.plot(xs, ys, "o", label="trial")
        best_of = max if direction == "max" else min
        ax.plot(xs, list(itertools.accumulate(ys, best_of)), "-", label="best so far")
        ax.legend()
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.grid(alpha=0.3)
    return fig


def plot_objective_per_trial(trials: Sequence[Any], objective: str, path, *, direction: str) -> pathlib.Path:
    """Writes `objective_per_trial_figure(trials, objective, direction=...)` to a PNG file; returns its path."""
    return _save(objective_per_trial_figure(trials, objective, direction=direction), path)


def _hyperparameter_panel(ax, name: str, done: Sequence[Any], objective: str) -> None:
    points = [(t.hyperparameters[name], t.score) for t in done if name in t.hyperparameters]
    values, scores = [p[0] for p in points], [p[1] for p in points]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        ax.plot(values, scores, "o")
        if min(values) > 0 and max(values) / min(values) > 10:
            _log_x(ax, values)
    else:
        labels = sorted({str(v) for v in values})
        ax.plot([labels.index(str(v)) for v in values], scores, "o")
        shown = range(0, len(labels), -(-len(labels) // MAX_CATEGORY_LABELS))
        ax.set_xticks(list(shown), [labels[i] for i in shown], rotation=30, ha="right", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_title(name, fontsize=9)
    ax.set_ylabel(objective, fontsize=8)
    ax.grid(alpha=0.3)


def hyperparameters_figure(trials: Sequence[Any], objective: str) -> Figure:
    """One panel per hyperparameter that varied: its value against the objective.

    Args:
        trials: `dlimaging.results.TrialRecord`s (`score`, `hyperparameters`).
        objective: str. The objective's name, the panels' y label.

    Returns:
        A `matplotlib.figure.Figure`, up to four panels a row.
    """
    done = _completed(trials)
    names = sorted({k for t in done for k in t.hyperparameters if not k.startswith("tuner/")})
    # A fixed value says nothing about the objective: plot only what varied.
    names = [n for n in names if len({str(t.hyperparameters.get(n)) for t in done}) > 1]
    cols = min(4, max(1, len(names)))
    rows = max(1, -(-len(names) // cols))
    fig = Figure(figsize=(3.6 * cols, 3 * rows), layout="tight")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        _hyperparameter_panel(ax, name, done, objective)
    return fig


def plot_hyperparameters(trials: Sequence[Any], objective: str, path) -> pathlib.Path:
    """Writes `hyperparameters_figure(trials, objective)` to a PNG file; returns its path."""
    return _save(hyperparameters_figure(trials, objective), path)


def learning_curves_figure(curves: Mapping[str, Mapping[str, Sequence[float]]], metric: str = "loss") -> Figure:
    """Training and validation `metric` of several trials, one colour per trial.

    Args:
        curves: a history dict per label, e.g. `{"trial 3": {"loss": [...], "val_loss": [...]}}`.
        metric: str. The metric drawn. Defaults to "loss".

    Returns:
        A `matplotlib.figure.Figure`: training solid, validation dashed.
    """
    fig = Figure(figsize=(6, 3.6), layout="tight")
    ax = fig.subplots()
    for index, (label, history) in enumerate(curves.items()):
        color = f"C{index % 10}"
        for key, style, kind in ((metric, "-", "training"), (f"val_{metric}", "--", "validation")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, color=color, label=f"{label} {kind}")
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7)
    return fig


def plot_learning_curves(curves: Mapping[str, Mapping[str, Sequence[float]]], path,
                         metric: str = "loss") -> pathlib.Path:
    """Writes `learning_curves_figure(curves, metric)` to a PNG file; returns its path."""
    return _save(learning_curves_figure(curves, metric), path)
