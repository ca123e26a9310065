"""Standardisation inside the model and target scaling: adapted on the training split, exported raw-in."""

import keras
import numpy as np
import pytest

import dlimaging as dli
from dlimaging.models.standardization import adapt


@pytest.mark.parametrize("builder", [dli.build_mlp, dli.build_cnn])
@pytest.mark.parametrize("mode, stat_shape", [("global", ()), ("per_feature", (40, 2))])
def test_standardize_is_adapted_on_the_training_inputs(builder, mode, stat_shape, rng):
    model = builder((40, 2), 3, standardize=mode, compile=False)
    assert model.layers[1].name == "standardize"  # right after the input
    x = rng.normal(300.0, 50.0, (64, 40, 2)).astype("float32")
    adapt(model, x)
    layer = model.get_layer("standardize")
    axis = None if mode == "global" else 0
    mean, std = x.mean(axis=axis), x.std(axis=axis)
    np.testing.assert_allclose(np.squeeze(layer.mean), mean, rtol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.squeeze(layer.variance)), std, rtol=1e-3)
    standardized = np.asarray(layer(x))
    assert abs(standardized.mean()) < 1e-3 and standardized.std() == pytest.approx(1.0, rel=1e-3)


def test_adapt_reads_a_dataset_of_batches_and_uses_the_training_split_only(rng):
    import tensorflow as tf

    model = dli.build_mlp((3,), task="regression", standardize="per_feature", hidden_units=(4,))
    x = rng.normal([10.0, -5.0, 1000.0], [1.0, 3.0, 100.0], (96, 3)).astype("float32")
    y = (1000 + 500 * x[:, 0]).astype("float32")  # shape (N,): one output
    adapt(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(32))
    np.testing.assert_allclose(np.squeeze(model.get_layer("standardize").mean), x.mean(0), rtol=1e-4)
    np.testing.assert_allclose(np.squeeze(model.get_layer("target_scaling").mean), y.mean(), rtol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.squeeze(model.get_layer("target_scaling").variance)), y.std(), rtol=1e-3)


def test_a_constant_feature_is_not_divided_by_zero(rng):
    model = dli.build_mlp((3,), task="regression", standardize="per_feature", hidden_units=(4,))
    x = rng.normal(0.0, 1.0, (64, 3)).astype("float32")
    x[:, 1] = 7.0  # a constant column (a dead detector pixel)
    y = np.full((64, 1), 3.0, "float32")  # and a constant target
    adapt(model, x, y)
    np.testing.assert_array_equal(np.squeeze(model.get_layer("standardize").variance)[1], 1.0)
    np.testing.assert_array_equal(np.squeeze(model.get_layer("target_scaling").variance), 1.0)
    probe = x.copy()
    probe[:, 1] = 7.5  # a new value of the constant feature is not blown up by 1/sqrt(epsilon)
    standardized = np.asarray(model.get_layer("standardize")(probe))
    np.testing.assert_allclose(standardized[:, 1], 0.5, rtol=1e-5)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(model.predict(probe, verbose=0)).all()
    assert np.isfinite(model.get_weights()[0]).all()


def test_adapt_refuses_non_finite_training_values(rng):
    model = dli.build_mlp((3,), 2, standardize="global")
    x = rng.normal(size=(8, 3)).astype("float32")
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match="training inputs hold NaN or infinite values"):
        adapt(model, x)


def test_an_exported_standardized_model_takes_raw_values(rng, tmp_path):
    model = dli.build_mlp((5,), 2, standardize="per_feature", hidden_units=(8,))
    x = rng.normal(2000.0, 300.0, (32, 5)).astype("float32")
    adapt(model, x)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded.get_layer("standardize").mean, model.get_layer("standardize").mean)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)


def test_target_scaling_lets_regression_on_targets_in_the_thousands_learn_fast(rng):
    x = rng.uniform(-1, 1, (256, 2)).astype("float32")
    y = 1000 + 500 * x[:, :1] - 200 * x[:, 1:]
    errors = {}
    for scale in (True, False):
        keras.utils.set_random_seed(0)
        model = dli.build_mlp((2,), task="regression", hidden_units=(16,), learning_rate=0.01, scale_targets=scale,
                              batch_norm=False, dropout=0.0)
        adapt(model, x, y)
        model.fit(x, y, epochs=10, batch_size=32, verbose=0)
        predictions = model.predict(x, verbose=0)
        errors[scale] = np.sqrt(np.mean((predictions - y) ** 2)) / y.std()
        if scale:
            # The model outputs real units: around 1000, not around 0.
            assert abs(predictions.mean() - 1000) < 30
            metrics = model.evaluate(x, y, return_dict=True, verbose=0)
            assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean((predictions - y) ** 2)), rel=1e-3)
    assert errors[True] < 0.15  # a low error relative to the targets' spread, in 10 epochs
    assert errors[False] > 1.0  # the same network without the scaling is still far off


def test_scaled_loss_weighs_outputs_on_their_own_scale_and_survives_a_reload(rng, tmp_path):
    model = dli.build_mlp((2,), task="regression", num_outputs=2, hidden_units=(4,))
    x = rng.normal(size=(64, 2)).astype("float32")
    y = np.stack([1000 + 500 * x[:, 0], 0.01 * x[:, 1]], axis=1)  # units a million times apart
    adapt(model, x, y)
    mean, std = y.mean(0), y.std(0)
    guess = y + std * np.array([0.5, 0.5])  # half a standard deviation off on each output
    assert float(model.loss(y, guess)) == pytest.approx(0.25, rel=1e-3)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert float(reloaded.loss(y, guess)) == pytest.approx(0.25, rel=1e-3)
    np.testing.assert_allclose(np.squeeze(reloaded.get_layer("target_scaling").mean), mean, rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"standardize": "minmax"}, "`standardize` must be one of 'none', 'global', 'per_feature'. "
                                    "Received: standardize='minmax'"),
        ({"scale_targets": True}, r"`scale_targets` is for tasks with numeric outputs, not task='classification'"),
        ({"scale_targets": "yes"}, "`scale_targets` must be True, False or None. Received: scale_targets='yes'"),
    ],
)
def test_standardize_and_scale_targets_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dli.build_cnn((40, 1), 3, **kwargs)


def test_scale_targets_false_keeps_the_plain_output_and_classification_is_untouched():
    plain = dli.build_mlp((4,), task="regression", scale_targets=False)
    assert plain.layers[-1].name == "output" and plain.loss == "mean_squared_error"
    assert dli.build_mlp((4,), 3, scale_targets=False).layers[-1].name == "output"


@pytest.mark.parametrize("form", ["arrays", "dataset"])
def test_statistics_are_float64_and_a_bad_training_split_is_named(form, rng):
    """Issue 21: finite targets near 3e21 overflowed float32 sums and were called "NaN or infinite";
    empty inputs got the same words, and `y` of 10 rows passed against `x` of 64."""
    import tensorflow as tf

    def adapted(x, y):
        model = dli.build_mlp((3,), task="regression", standardize="per_feature", hidden_units=(4,))
        if form == "arrays":
            return adapt(model, x, y)
        return adapt(model, tf.data.Dataset.from_tensor_slices((x.astype("float32"), y.astype("float32"))).batch(16))

    x = rng.normal(size=(64, 3))
    y = 3e21 + 1e17 * rng.normal(size=(64, 1))  # variance 1e34: float32 holds it, its float32 sums do not
    layer = adapted(x, y).get_layer("target_scaling")
    np.testing.assert_allclose(np.squeeze(layer.mean), y.mean(), rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.squeeze(layer.variance)), y.std(), rtol=1e-3)
    with pytest.raises(ValueError, match=r"training targets spread too widely for float32: their variance reaches "
                                         r"1\.\d+e\+42 .*Rescale them"):
        adapted(x, 3e21 + 1e21 * rng.normal(size=(64, 1)))
    with pytest.raises(ValueError, match=r"adapt: the training inputs are empty \(0 samples\)"):
        adapted(x[:0], y[:0])
    if form == "arrays":
        with pytest.raises(ValueError, match=r"`y` must have one row per sample of the inputs \(64\). "
                                             r"Received: y of shape \(10, 1\)"):
            adapted(x, y[:10])
