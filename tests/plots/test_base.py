"""The plots package: PNG files of the expected size, no pyplot, no backend change, readable log axes."""

import json
import os
import pathlib
import subprocess
import sys

import plot_data
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from dlimaging import plots
from dlimaging.plots import _base as plots_base

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _draw_everything(folder):
    """Calls every plot function; returns {file name: (returned path, expected (width, height))}."""
    folder = pathlib.Path(folder)
    return {
        "history.png": (plots.plot_history(plot_data.HISTORY, folder / "a" / "history.png", title="t"), (1000, 360)),
        "objective.png": (plots.plot_objective_per_trial(plot_data.trials(), "val_accuracy", folder / "objective.png", direction="max"),
                          (600, 360)),
        # learning_rate, activation and units varied: three panels; dropout and tuner/ keys are left out.
        "hyperparameters.png": (plots.plot_hyperparameters(plot_data.trials(), "val_accuracy", folder / "hyperparameters.png"),
                                (1080, 300)),
        "curves.png": (plots.plot_learning_curves({"trial 1": plot_data.HISTORY, "trial 2": plot_data.HISTORY}, folder / "curves.png",
                                                  metric="accuracy"), (600, 360)),
        "parity.png": (plots.plot_parity(plot_data.Y_TRUE, plot_data.Y_PRED, folder / "parity.png", ["glucose", "lactate"]), (760, 342)),
        "residuals.png": (plots.plot_residuals(plot_data.Y_TRUE[:, 0], plot_data.Y_PRED[:, 0], folder / "residuals.png"), (380, 342)),
        "confusion.png": (plots.plot_confusion_matrix(plot_data.LABELS, plot_data.PREDICTED, ["arabica", "robusta", "blend"],
                                                      folder / "confusion.png"), (535, 435)),
        "spectra.png": (plots.plot_spectra(plot_data.SPECTRA, plot_data.LABELS, folder / "spectra.png", axis=plot_data.AXIS), (700, 400)),
        "pareto.png": (plots.plot_pareto(plot_data.sized_trials(), "val_accuracy", folder / "pareto.png", direction="max"),
                       (600, 380)),
    }


SCRIPT = """
import json, sys, tempfile
import matplotlib
before = {before}
sys.path.insert(0, {tests!r})
import dlimaging.plots
from test_base import _draw_everything
with tempfile.TemporaryDirectory() as folder:
    _draw_everything(folder)
pyplot = "matplotlib.pyplot" in sys.modules  # read before get_backend, which may load pyplot
print(json.dumps({{"before": before, "pyplot": pyplot, "after": {after}}}))
"""


def _run_in_subprocess(backend, ask_backend):
    """Imports dlimaging.plots and draws everything in a fresh interpreter; returns what it saw."""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    if backend:
        env["MPLBACKEND"] = backend
    ask = "matplotlib.get_backend()" if ask_backend else "None"
    script = SCRIPT.format(before=ask, after=ask, tests=str(ROOT / "tests" / "plots"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _labels(ax, minor):
    low, high = ax.get_xlim()
    return [label for label in ax.get_xticklabels(minor=minor) if low <= label.get_position()[0] <= high]


def test_global_backend_is_left_alone():
    seen = _run_in_subprocess("svg", ask_backend=True)
    assert seen["before"] == "svg"
    assert seen["after"] == "svg"


def test_pyplot_is_never_imported():
    seen = _run_in_subprocess(None, ask_backend=False)
    assert seen["pyplot"] is False


def test_each_plot_is_a_png_of_the_expected_size(tmp_path):
    for name, (path, size) in _draw_everything(tmp_path).items():
        assert isinstance(path, pathlib.Path) and path.name == name and path.is_file()
        assert path.stat().st_size > 1000
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == size


def test_figure_functions_return_figures_without_writing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    figures = [plots.history_figure(plot_data.HISTORY, title="t"), plots.objective_per_trial_figure(plot_data.trials(), "val_loss", direction="min"),
               plots.hyperparameters_figure(plot_data.trials(), "val_loss"), plots.learning_curves_figure({"a": plot_data.HISTORY})]
    assert all(isinstance(fig, Figure) for fig in figures)
    assert [len(fig.axes) for fig in figures] == [2, 1, 3, 1]
    assert [ax.get_title() for ax in figures[2].axes] == ["activation", "learning_rate", "units"]
    assert len(figures[3].axes[0].get_lines()) == 2  # training and validation
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("learning_rates", [(1e-4, 1e-3, 1e-2), (3e-4, 5e-3), (1e-5, 1e-4, 2e-1)])
def test_log_axis_labels_are_readable(learning_rates):
    fig = plots.hyperparameters_figure(plot_data.trials(learning_rates), "val_accuracy")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    ax = next(ax for ax in fig.axes if ax.get_title() == "learning_rate")
    assert ax.get_xscale() == "log"
    assert [label.get_text() for label in _labels(ax, minor=True)] == [""] * len(_labels(ax, minor=True))
    majors = [label for label in _labels(ax, minor=False) if label.get_text()]
    assert len(majors) >= 2
    boxes = sorted((label.get_window_extent(canvas.get_renderer()) for label in majors), key=lambda b: b.x0)
    assert all(left.x1 < right.x0 for left, right in zip(boxes, boxes[1:]))  # no two labels overlap


@pytest.mark.parametrize("values, expected", [((2e-3, 8e-3), ["2e-03", "5e-03"]),
                                              ((3e-4, 5e-3), ["5e-04", "1e-03", "2e-03", "5e-03"]),
                                              ((1.1e-3, 1.9e-3), ["1.1e-03", "1.9e-03"])])
def test_log_axis_within_a_decade_has_two_labels(values, expected):
    fig = Figure()
    ax = fig.subplots()
    ax.plot(values, [0, 1], "o")
    plots_base.log_x(ax, values)
    FigureCanvasAgg(fig).draw()
    assert [label.get_text() for label in _labels(ax, minor=False)] == expected
    assert not any(label.get_text() for label in _labels(ax, minor=True))
