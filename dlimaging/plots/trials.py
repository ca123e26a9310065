"""Figures of a search's trials: the objective per trial, the hyperparameters, learning curves, and
the Pareto front of objective against size (with `pareto_front`, the trials no other beats on both).
"""

from __future__ import annotations

import itertools
import pathlib
from typing import Any, Mapping, Sequence

from matplotlib import ticker
from matplotlib.figure import Figure

from dlimaging.plots._base import MAX_CATEGORY_LABELS, better, log_x, save
from dlimaging.validation import check_choice


def at_least_as_good(a: float, b: float, direction: str) -> bool:
    return a >= b if direction == "max" else a <= b


def pareto_front(trials: list[Any], direction: str) -> list[Any]:
    """The completed trials that no other trial beats on both the objective and the size.

    The front is defined on two criteria, (objective, params): a trial is dominated
    when another has an objective at least as good (in `direction`) and at most as many
    parameters, and is strictly better on one of them. Latency is recorded but not a
    criterion, so the front is the 2-D picture of `plots/pareto.png`. Trials without a
    parameter count (logged before dlimaging measured it) are left out.

    Args:
        trials: `TrialRecord`s; the completed ones with `params` are considered.
        direction: "min" or "max": how the objective improves.

    Returns:
        The non-dominated trials, fewest parameters first.
    """
    check_choice("direction", direction, ("min", "max"))
    done = [t for t in trials if t.score is not None and t.params is not None]
    front = [
        t for t in done
        if not any(at_least_as_good(u.score, t.score, direction) and u.params <= t.params
                   and (u.score != t.score or u.params != t.params) for u in done)
    ]
    return sorted(front, key=lambda t: (t.params, t.trial))


def completed(trials: Sequence[Any]) -> list[Any]:
    return [t for t in trials if t.score is not None]


def objective_per_trial_figure(trials: Sequence[Any], objective: str, *, direction: str) -> Figure:
    """The objective of each completed trial, in the order they ran, with the best so far.

    Trials that pruning stopped early (`pruned_at` set) are drawn apart, as crosses, and
    left out of the best so far (they are not exported while a full trial exists).

    Args:
        trials: `dlimaging.tuning.results.TrialRecord`s (`trial`, `score`: None if unfinished,
            `pruned_at`: None unless pruned).
        objective: str. The objective's name, for the axis.
        direction: "max" or "min": how the objective improves.

    Returns:
        A `matplotlib.figure.Figure`.
    """
    done = completed(trials)
    fig = Figure(figsize=(6, 3.6), layout="tight")
    ax = fig.subplots()
    pruned = [t for t in done if getattr(t, "pruned_at", None) is not None]
    full = [t for t in done if getattr(t, "pruned_at", None) is None]
    if full:
        xs = [int(t.trial) for t in full]
        ys = [t.score for t in full]
        ax.plot(xs, ys, "o", label="trial")
        best_of = max if direction == "max" else min
        ax.plot(xs, list(itertools.accumulate(ys, best_of)), "-", label="best so far")
    if pruned:
        ax.plot([int(t.trial) for t in pruned], [t.score for t in pruned], "x", color="0.5",
                label="pruned (stopped early)")
    if done:
        ax.legend()
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.grid(alpha=0.3)
    return fig


def plot_objective_per_trial(trials: Sequence[Any], objective: str, path, *, direction: str) -> pathlib.Path:
    """Writes `objective_per_trial_figure(trials, objective, direction=...)` to a PNG file; returns its path."""
    return save(objective_per_trial_figure(trials, objective, direction=direction), path)


def pareto_figure(trials: Sequence[Any], objective: str, *, direction: str) -> Figure:
    """The objective against the parameter count, with the Pareto front marked.

    The front (`dlimaging.plots.trials.pareto_front`) is defined on (objective, params):
    no other trial has a better objective with as few parameters. Its trials are
    drawn larger, joined by a step line and labelled with their trial numbers;
    the x axis is logarithmic.

    Args:
        trials: `dlimaging.tuning.results.TrialRecord`s (`trial`, `score`, `params`).
        objective: str. The objective's name, for the axis.
        direction: "max" or "min": how the objective improves.

    Returns:
        A `matplotlib.figure.Figure`.
    """

    done = [t for t in completed(trials) if t.params is not None]
    front = pareto_front(done, direction)
    fig = Figure(figsize=(6, 3.8), layout="tight")
    ax = fig.subplots()
    if done:
        on_front = {t.trial for t in front}
        others = [t for t in done if t.trial not in on_front]
        ax.plot([t.params for t in others], [t.score for t in others], "o", color="0.6", label="trial")
        ax.plot([t.params for t in front], [t.score for t in front], "o-", drawstyle="steps-post",
                color="C3", markersize=7, label="Pareto front")
        for t in front:
            ax.annotate(str(t.trial), (t.params, t.score), textcoords="offset points", xytext=(4, 4), fontsize=8)
        log_x(ax, [t.params for t in done])
        ax.margins(x=0.08, y=0.12)  # room for the labels
        ax.legend(loc="lower right" if direction == "max" else "upper right")
    else:
        ax.text(0.5, 0.5, "no completed trial with a parameter count", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel("parameters")
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} against size ({better(direction)})", fontsize=10)
    ax.grid(alpha=0.3)
    return fig


def plot_pareto(trials: Sequence[Any], objective: str, path, *, direction: str) -> pathlib.Path:
    """Writes `pareto_figure(trials, objective, direction=...)` to a PNG file; returns its path."""
    return save(pareto_figure(trials, objective, direction=direction), path)


def _hyperparameter_panel(ax, name: str, done: Sequence[Any], objective: str) -> None:
    points = [(t.hyperparameters[name], t.score) for t in done if name in t.hyperparameters]
    values, scores = [p[0] for p in points], [p[1] for p in points]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        ax.plot(values, scores, "o")
        if min(values) > 0 and max(values) / min(values) > 10:
            log_x(ax, values)
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
        trials: `dlimaging.tuning.results.TrialRecord`s (`score`, `hyperparameters`).
        objective: str. The objective's name, the panels' y label.

    Returns:
        A `matplotlib.figure.Figure`, up to four panels a row.
    """
    done = completed(trials)
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
    return save(hyperparameters_figure(trials, objective), path)


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
    return save(learning_curves_figure(curves, metric), path)
