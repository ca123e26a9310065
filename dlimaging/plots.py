"""Matplotlib figures written to PNG files (no display needed)."""

from __future__ import annotations

import os
import pathlib
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig, path) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_history(history: Mapping[str, Sequence[float]], path: str | os.PathLike, title: str = "") -> pathlib.Path:
    """Training and validation curves of every metric: the overfitting picture.

    Args:
        history: a `keras.callbacks.History.history` dict, e.g.
            `{"loss": [...], "val_loss": [...], "accuracy": [...]}`.
        path: where to write the PNG.
        title: str. Figure title. Defaults to "".
    """
    metrics = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        epochs = range(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], "o-", label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_objective_per_trial(trials: Sequence[Mapping[str, Any]], objective: str, path) -> pathlib.Path:
    """The objective of each completed trial, in the order they ran, with the best so far."""
    done = [t for t in trials if t.get("score") is not None]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if done:
        xs = [int(t["trial"]) for t in done]
        ys = [t["score"] for t in done]
        ax.plot(xs, ys, "o", label="trial")
        best, running = [], None
        maximize = objective.endswith("accuracy") or objective.endswith("auc")
        for y in ys:
            running = y if running is None else (max(running, y) if maximize else min(running, y))
            best.append(running)
        ax.plot(xs, best, "-", label="best so far")
        ax.legend()
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_hyperparameters(trials: Sequence[Mapping[str, Any]], objective: str, path) -> pathlib.Path:
    """One panel per hyperparameter: its value against the objective."""
    done = [t for t in trials if t.get("score") is not None]
    names = sorted({k for t in done for k in t["hyperparameters"] if not k.startswith("tuner/")})
    # A fixed value says nothing about the objective: plot only what varied.
    names = [n for n in names if len({str(t["hyperparameters"].get(n)) for t in done}) > 1]
    cols = min(4, max(1, len(names)))
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        points = [(t["hyperparameters"].get(name), t["score"]) for t in done if name in t["hyperparameters"]]
        values = [p[0] for p in points]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            ax.plot(values, [p[1] for p in points], "o")
            positive = [v for v in values if v > 0]
            if positive and len(positive) == len(values) and max(values) / min(values) > 10:
                ax.set_xscale("log")
        else:
            labels = sorted({str(v) for v in values})
            ax.plot([labels.index(str(v)) for v in values], [p[1] for p in points], "o")
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(objective, fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_learning_curves(curves: Mapping[str, Mapping[str, Sequence[float]]], path, metric: str = "loss") -> pathlib.Path:
    """Training and validation `metric` of several trials, one colour per trial."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for index, (label, history) in enumerate(curves.items()):
        color = f"C{index % 10}"
        if metric in history:
            ax.plot(range(1, len(history[metric]) + 1), history[metric], "-", color=color, label=f"{label} training")
        if f"val_{metric}" in history:
            ax.plot(range(1, len(history[f"val_{metric}"]) + 1), history[f"val_{metric}"], "--",
                    color=color, label=f"{label} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7)
    return _save(fig, path)
