"""Figures of a search's trials: categories thinned, the Pareto front."""

import plot_data
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from dlimaging import plots
from dlimaging.plots import _base as plots_base


def _labels(ax, minor):
    low, high = ax.get_xlim()
    return [label for label in ax.get_xticklabels(minor=minor) if low <= label.get_position()[0] <= high]


def test_many_categories_are_thinned_and_rotated():
    trials = [plot_data.trial(i + 1, i / 20, {"optimizer": f"optimizer_{i:02d}"}) for i in range(20)]
    fig = plots.hyperparameters_figure(trials, "val_loss")
    FigureCanvasAgg(fig).draw()
    labels = [label for label in fig.axes[0].get_xticklabels() if label.get_text()]
    assert 2 <= len(labels) <= plots_base.MAX_CATEGORY_LABELS
    assert labels[0].get_text() == "optimizer_00"
    assert all(label.get_rotation() == 30 for label in labels)


@pytest.mark.parametrize("direction, front", [("max", ["5", "2", "4"]), ("min", ["5"])])
def test_pareto_plot_labels_the_front_on_a_log_axis(direction, front):
    fig = plots.pareto_figure(plot_data.sized_trials(), "val_accuracy", direction=direction)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "parameters" and ax.get_ylabel() == "val_accuracy"
    assert [text.get_text() for text in ax.texts] == front  # each front trial labelled with its number
    trials, marked = ax.get_lines()
    assert sorted(marked.get_xdata()) == sorted(t.params for t in plot_data.sized_trials() if str(t.trial) in front)
    assert len(trials.get_xdata()) == 6 - len(front)  # the others, unlabelled; the unfinished one left out
    FigureCanvasAgg(fig).draw()
    assert 2 <= len(_labels(ax, minor=False)) <= 5  # 900 to 400,000: a few decades labelled, not crowded


def test_pareto_plot_without_parameter_counts_says_so():
    fig = plots.pareto_figure(plot_data.trials(), "val_loss", direction="min")
    assert [text.get_text() for text in fig.axes[0].texts] == ["no completed trial with a parameter count"]
