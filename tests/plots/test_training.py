"""Figures of a training run: parity and residuals, the confusion matrix, spectra."""

import re

import numpy as np
import plot_data
import pytest

from dlimaging import plots


def _numbers(text):
    return [float(v) for v in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", text)]


def test_parity_titles_give_sklearns_r2_and_rmse_per_target():
    from sklearn.metrics import mean_squared_error, r2_score

    fig = plots.parity_figure(plot_data.Y_TRUE, plot_data.Y_PRED, ["glucose", "lactate"])
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split(":")[0] for t in titles] == ["glucose", "lactate"]
    for k, title in enumerate(titles):
        r2, rmse = _numbers(title.split(":", 1)[1])
        assert r2 == pytest.approx(r2_score(plot_data.Y_TRUE[:, k], plot_data.Y_PRED[:, k]), abs=1e-4)
        assert rmse == pytest.approx(mean_squared_error(plot_data.Y_TRUE[:, k], plot_data.Y_PRED[:, k]) ** 0.5, rel=1e-3)
    # The points are the data: x true, y predicted; the grey line is the identity.
    identity, points = fig.axes[1].get_lines()
    np.testing.assert_allclose(points.get_xdata(), plot_data.Y_TRUE[:, 1])
    np.testing.assert_allclose(points.get_ydata(), plot_data.Y_PRED[:, 1])
    np.testing.assert_allclose(identity.get_xdata(), identity.get_ydata())


def test_a_perfect_fit_has_r2_of_one_and_a_constant_truth_is_not_a_division_by_zero():
    r2, rmse = plots.regression_scores(plot_data.Y_TRUE, plot_data.Y_TRUE)
    assert r2 == [1.0, 1.0] and rmse == [0.0, 0.0]
    r2, _ = plots.regression_scores(np.ones(5), np.arange(5.0))
    assert r2 == [0.0]


def test_residuals_are_predicted_minus_true_against_true():
    fig = plots.residuals_figure(plot_data.Y_TRUE, plot_data.Y_PRED)
    assert [ax.get_title() for ax in fig.axes] == ["target 1", "target 2"]
    points = fig.axes[0].get_lines()[-1]
    np.testing.assert_allclose(points.get_xdata(), plot_data.Y_TRUE[:, 0])
    np.testing.assert_allclose(points.get_ydata(), plot_data.Y_PRED[:, 0] - plot_data.Y_TRUE[:, 0])


def test_confusion_matrix_counts_equal_sklearns_with_class_names():
    from sklearn.metrics import confusion_matrix

    fig = plots.confusion_matrix_figure(plot_data.LABELS, plot_data.PREDICTED, ["arabica", "robusta", "blend"])
    ax = fig.axes[0]
    cells = np.array([int(t.get_text()) for t in ax.texts]).reshape(3, 3)
    np.testing.assert_array_equal(cells, confusion_matrix(plot_data.LABELS, plot_data.PREDICTED))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["arabica", "robusta", "blend"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["arabica", "robusta", "blend"]
    assert "accuracy = 0.8333" in ax.get_title()  # 10 of 12


def test_spectra_are_drawn_on_their_axis_per_class_and_per_target_range():
    fig = plots.spectra_figure(plot_data.SPECTRA, plot_data.LABELS, axis=plot_data.AXIS, class_names=["a", "b", "c"], per_group=2,
                               axis_label="wavenumber (cm⁻¹)")
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 6  # two per class
    np.testing.assert_allclose(lines[0].get_xdata(), plot_data.AXIS)
    np.testing.assert_allclose(lines[2].get_ydata(), plot_data.SPECTRA[4, :, 0])  # the first of class "b"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    assert ax.xaxis_inverted()  # a wavenumber axis stored from high to low is drawn that way
    assert ax.get_xlabel() == "wavenumber (cm⁻¹)"

    targets = np.linspace(0.0, 1.0, 12)
    fig = plots.spectra_figure(plot_data.SPECTRA, targets, target_names=["glucose"], per_group=1, groups=3)
    ax = fig.axes[0]
    assert [t.get_text().split()[0] for t in ax.get_legend().get_texts()] == ["glucose"] * 3
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), np.arange(50))  # no axis: the index
    assert ax.get_xlabel() == "index"
