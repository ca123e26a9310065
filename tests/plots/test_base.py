"""The plots: PNG files of the expected size, no pyplot, no backend change, readable log axes."""

import json
import os
import pathlib
import subprocess
import sys
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from dlimaging import plots
from dlimaging.plots import _base as plots_base
from dlimaging.tuning.results import TrialRecord


ROOT = pathlib.Path(__file__).resolve().parents[2]


HISTORY = {"loss": [1.0, 0.6, 0.5], "val_loss": [1.1, 0.8, 0.7], "accuracy": [0.5, 0.7, 0.8],
           "val_accuracy": [0.4, 0.6, 0.7], "learning_rate": [1e-3, 1e-3, 1e-4]}


# Two regression targets, three classes, and twelve spectra of length 50 on a wavenumber axis.
_RNG = np.random.default_rng(3)


Y_TRUE = _RNG.normal(5.0, 1.0, (40, 2))


Y_PRED = Y_TRUE + _RNG.normal(0.0, [0.3, 0.8], (40, 2))


LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])


PREDICTED = np.array([0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 0, 2])


AXIS = np.linspace(4000.0, 400.0, 50)


SPECTRA = _RNG.normal(0.0, 1.0, (12, 50, 1)) + LABELS[:, None, None]


def _trial(trial, score, hyperparameters):
    status = "COMPLETED" if score is not None else "RUNNING"
    return TrialRecord(trial=trial, trial_id=str(trial - 1), status=status, score=score,
                       hyperparameters=hyperparameters)


def _trials(learning_rates=(1e-4, 1e-3, 1e-2)):
    return [_trial(i + 1, 0.5 + 0.1 * i,
                   {"learning_rate": lr, "activation": ("relu", "tanh")[i % 2], "units": 16 * (i + 1),
                    "dropout": 0.2, "tuner/epochs": 2})
            for i, lr in enumerate(learning_rates)] + [_trial(9, None, {"units": 1})]


def _sized_trials():
    """Trials with parameter counts: (score, params); 2, 4 and 5 are the Pareto front (higher is better)."""
    sized = [(0.90, 12_000), (0.95, 3_000), (0.93, 40_000), (0.97, 150_000), (0.80, 900), (0.96, 400_000)]
    return [TrialRecord(trial=i, trial_id=str(i - 1), status="COMPLETED", score=score, params=params)
            for i, (score, params) in enumerate(sized, start=1)] + [_trial(9, None, {})]


def _draw_everything(folder):
    """Calls every plot function; returns {file name: (returned path, expected (width, height))}."""
    folder = pathlib.Path(folder)
    return {
        "history.png": (plots.plot_history(HISTORY, folder / "a" / "history.png", title="t"), (1000, 360)),
        "objective.png": (plots.plot_objective_per_trial(_trials(), "val_accuracy", folder / "objective.png", direction="max"),
                          (600, 360)),
        # learning_rate, activation and units varied: three panels; dropout and tuner/ keys are left out.
        "hyperparameters.png": (plots.plot_hyperparameters(_trials(), "val_accuracy", folder / "hyperparameters.png"),
                                (1080, 300)),
        "curves.png": (plots.plot_learning_curves({"trial 1": HISTORY, "trial 2": HISTORY}, folder / "curves.png",
                                                  metric="accuracy"), (600, 360)),
        "parity.png": (plots.plot_parity(Y_TRUE, Y_PRED, folder / "parity.png", ["glucose", "lactate"]), (760, 342)),
        "residuals.png": (plots.plot_residuals(Y_TRUE[:, 0], Y_PRED[:, 0], folder / "residuals.png"), (380, 342)),
        "confusion.png": (plots.plot_confusion_matrix(LABELS, PREDICTED, ["arabica", "robusta", "blend"],
                                                      folder / "confusion.png"), (535, 435)),
        "spectra.png": (plots.plot_spectra(SPECTRA, LABELS, folder / "spectra.png", axis=AXIS), (700, 400)),
        "pareto.png": (plots.plot_pareto(_sized_trials(), "val_accuracy", folder / "pareto.png", direction="max"),
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
    figures = [plots.history_figure(HISTORY, title="t"), plots.objective_per_trial_figure(_trials(), "val_loss", direction="min"),
               plots.hyperparameters_figure(_trials(), "val_loss"), plots.learning_curves_figure({"a": HISTORY})]
    assert all(isinstance(fig, Figure) for fig in figures)
    assert [len(fig.axes) for fig in figures] == [2, 1, 3, 1]
    assert [ax.get_title() for ax in figures[2].axes] == ["activation", "learning_rate", "units"]
    assert len(figures[3].axes[0].get_lines()) == 2  # training and validation
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("learning_rates", [(1e-4, 1e-3, 1e-2), (3e-4, 5e-3), (1e-5, 1e-4, 2e-1)])
def test_log_axis_labels_are_readable(learning_rates):
    fig = plots.hyperparameters_figure(_trials(learning_rates), "val_accuracy")
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
