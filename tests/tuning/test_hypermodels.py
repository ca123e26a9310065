import keras
import keras_tuner as kt
import numpy as np
import pytest

from dlimaging.tuning.hypermodels import CNNHyperModel, MLPHyperModel, default_space
from dlimaging.tuning.spaces import DEFAULT_CNN_SPACE, DEFAULT_MLP_SPACE


def _convs(model):
    return [layer for layer in model.layers if "_conv" in layer.name]


def test_cnn_defaults_are_sensible():
    hp = kt.HyperParameters()
    model = CNNHyperModel((8, 8, 1), 10).build(hp)
    assert [c.filters for c in _convs(model)] == [32, 32]
    assert hp.values["num_blocks"] == 2 and hp.values["filters_1"] == 32
    assert hp.values["learning_rate"] == pytest.approx(1e-3)
    assert hp.values["beta_1"] == pytest.approx(0.9) and hp.values["beta_2"] == pytest.approx(0.999)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    expected = {"activation", "dropout", "l1", "l2", "batch_norm", "kernel_size", "conv", "pooling", "head",
                "dense_units", "learning_rate", "beta_1", "beta_2", "augmentation_rotation", "augmentation_zoom"}
    assert expected <= set(hp.values)


def test_mlp_defaults_cover_depth_and_width():
    hp = kt.HyperParameters()
    model = MLPHyperModel((40, 1), 10).build(hp)
    dense = [layer for layer in model.layers if layer.name.startswith("dense") and layer.name[5:].isdigit()]
    assert [d.units for d in dense] == [128, 128]
    assert {"num_layers", "units_1", "units_2", "augmentation_shift", "augmentation_noise"} <= set(hp.values)
    # Signals are standardised inside the model, and the spectra augmentations are searched.
    assert {"standardize", "augmentation_scatter", "augmentation_baseline"} <= set(hp.values)
    assert hp.values["standardize"] == "global" and model.get_layer("standardize").axis == ()
    assert "standardize" not in default_space("cnn", (8, 8, 1))  # images come in [0, 1]


def test_every_standardize_and_spectra_augmentation_choice_builds():
    hypermodel = CNNHyperModel((40, 1), 3)
    for standardize in ("global", "per_feature"):
        for scatter, baseline in ((0.0, 0.0), (0.2, 0.2)):
            hp = kt.HyperParameters()
            hp.Fixed("standardize", standardize)
            hp.Fixed("augmentation_scatter", scatter)
            hp.Fixed("augmentation_baseline", baseline)
            hp.Fixed("augmentation_shift", 0.0)
            hp.Fixed("augmentation_noise", 0.0)
            model = hypermodel.build(hp)
            names = [layer.name for layer in model.layers]
            assert names[names.index("standardize") - 1] == ("augmentation" if scatter else "input")
            if scatter:
                assert [layer.name for layer in model.get_layer("augmentation").layers] == ["scatter", "baseline"]


@pytest.mark.parametrize("as_dataset", [True, False])
def test_fit_adapts_the_standardisation_on_the_training_data(as_dataset):
    import tensorflow as tf

    space = {"standardize": "per_feature", "num_layers": 1, "units_i": 4}
    hypermodel = MLPHyperModel((3,), task="regression", space=space)
    hp = kt.HyperParameters()
    model = hypermodel.build(hp)
    rng = np.random.default_rng(0)
    x = rng.normal([10.0, 200.0, -3.0], [1.0, 50.0, 2.0], (64, 3)).astype("float32")
    y = (1000 + 500 * x[:, :1]).astype("float32")
    validation = (x[:8] + 100, y[:8] + 1e4)  # far away: the statistics must not come from here
    if as_dataset:
        train = (tf.data.Dataset.from_tensor_slices((x, y)).batch(16),)
        hypermodel.fit(hp, model, *train, validation_data=validation, epochs=1, verbose=0, shuffle=False)
    else:
        hypermodel.fit(hp, model, x=x, y=y, validation_data=validation, epochs=1, batch_size=16, verbose=0)
    np.testing.assert_allclose(np.squeeze(model.get_layer("standardize").mean), x.mean(0), rtol=1e-4)
    np.testing.assert_allclose(np.squeeze(model.get_layer("target_scaling").mean), y.mean(), rtol=1e-4)


def test_fixed_values_override_the_space():
    hp = kt.HyperParameters()
    hp.Fixed("num_blocks", 1)
    hp.Fixed("filters_1", 16)
    hp.Fixed("dropout", 0.3)
    hp.Fixed("activation", "tanh")
    hp.Fixed("conv", "separable")
    hp.Fixed("kernel_size", 3)
    hp.Fixed("batch_norm", False)
    model = CNNHyperModel((8, 8, 1), 10).build(hp)
    assert [c.filters for c in _convs(model)] == [16]
    # depthwise 3x3 on 1 channel + pointwise 1x16 + bias; a standard conv has 3*3*16 + 16.
    assert _convs(model)[0].count_params() == 3 * 3 * 1 + 1 * 16 + 16
    assert model.get_layer("block1_dropout").rate == pytest.approx(0.3)
    assert model.get_layer("block1_act1").activation is keras.activations.tanh


def test_list_choices_and_plain_values():
    space = {"filters": {"choice": [[16, 32], [32, 64]]}, "kernel_size": 5, "dense_units": [8],
             "augmentation": {"rotation": {"choice": [0.0, 0.1]}}}
    hp = kt.HyperParameters()
    hp.Fixed("filters", "32-64")
    model = CNNHyperModel((8, 8, 1), 10, space=space).build(hp)
    assert [c.filters for c in _convs(model)] == [32, 64]
    assert model.get_layer("block1_conv1").kernel_size == (5, 5)
    assert model.get_layer("head_dense1").units == 8
    assert set(hp.values) == {"filters", "kernel_size", "augmentation_rotation"}


def test_a_choice_of_ints_and_floats_is_one_choice_of_numbers():
    # Keras Tuner's Choice holds one type: {choice = [0, 0.5]} was a TypeError in the first trial.
    from dlimaging.tuning.hypermodels import sample

    hp = kt.HyperParameters()
    assert sample(hp, "dropout", {"choice": [0, 0.5], "default": 0.5}) == 0.5
    assert hp.get("dropout") == 0.5 and [h.values for h in hp.space] == [[0.0, 0.5]]
    assert sample(kt.HyperParameters(), "l2", {"choice": [0, 1e-4]}) == 0


def test_depth_is_capped_by_the_input_size():
    for shape, limit in (((8, 8, 1), 3), ((4, 4, 1), 2), ((40, 1), 3)):
        hp = kt.HyperParameters()
        CNNHyperModel(shape, 2).build(hp)
        assert hp._hps["num_blocks"][0].max_value == limit


def test_every_sample_of_the_default_space_builds():
    # Draw from the space the way a tuner does and build each model.
    hypermodel = CNNHyperModel((8, 8, 1), 10).training_length(steps_per_epoch=10, epochs=5)
    oracle = kt.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=12, seed=1)
    hp = kt.HyperParameters()
    hypermodel.build(hp)
    oracle.hyperparameters = hp
    for _ in range(12):
        values = oracle.populate_space(str(_))["values"]
        sample = hp.copy()
        sample.values = values
        keras.backend.clear_session()
        model = hypermodel.build(sample)
        assert model.output_shape == (None, 10)


def test_3d_space_has_no_separable_conv():
    assert "conv" not in default_space("cnn", (4, 8, 8, 1))
    assert "conv" in DEFAULT_CNN_SPACE and "units_i" in DEFAULT_MLP_SPACE


def test_batch_size_and_epochs_are_tuned_in_fit():
    import tensorflow as tf

    space = {"batch_size": {"choice": [16, 50]}, "epochs": {"min": 1, "max": 3}}
    hypermodel = MLPHyperModel((4,), 2, space=space)
    hp = kt.HyperParameters()
    hp.Fixed("batch_size", 16)
    hp.Fixed("epochs", 2)
    model = hypermodel.build(hp)
    x = np.random.default_rng(0).normal(size=(100, 4)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, np.arange(100) % 2)).batch(32)

    class Count(keras.callbacks.Callback):
        batches = 0

        def on_train_batch_end(self, batch, logs=None):
            Count.batches += 1

    history = hypermodel.fit(hp, model, data, epochs=10, verbose=0, callbacks=[Count()], shuffle=False)
    assert len(history.history["loss"]) == 2
    assert Count.batches == 2 * 7  # ceil(100 / 16) batches per epoch


def test_widths_without_depth_are_refused():
    with pytest.raises(ValueError, match="`units_i` sets the width of each layer and needs `num_layers`"):
        MLPHyperModel((4,), 2, space={"units_i": {"choice": [8, 16]}})


def test_depth_alone_takes_the_default_widths():
    hp = kt.HyperParameters()
    MLPHyperModel((4,), 2, space={"num_layers": 2}).build(hp)
    assert hp._hps["units_1"][0].values == DEFAULT_MLP_SPACE["units_i"]["choice"]


@pytest.mark.parametrize(
    "cls, shape, match",
    [
        (CNNHyperModel, (64,), r"CNNHyperModel takes \(length, channels\), \(height, width, channels\), "
                               r"\(depth, height, width, channels\)\. Received: input_shape=\(64,\)"),
        (CNNHyperModel, (), r"Received: input_shape=\(\)"),
        (MLPHyperModel, (2, 2, 2, 2, 1), r"MLPHyperModel takes \(features,\), .*Received: input_shape=\(2, 2, 2, 2, 1\)"),
        (CNNHyperModel, (8, 0, 1), r"Received: input_shape=\(8, 0, 1\)"),
    ],
)
def test_a_shape_the_family_cannot_take_is_refused_when_the_hypermodel_is_made(cls, shape, match):
    # Before: "min() arg is an empty sequence" from the CNN's depth limit.
    with pytest.raises(ValueError, match=match) as info:
        cls(shape, 2)
    assert "min()" not in str(info.value)


# ---------------------------------------------------------------- issue 11: blocks, dilation, schedules, smoothing


def _schedule_steps(model):
    """(warm-up steps, total steps) of the model's learning-rate schedule."""
    schedule = model.optimizer._learning_rate
    warmup = getattr(schedule, "warmup_steps", 0)
    after = getattr(schedule, "after", schedule)
    return warmup, warmup + after.decay_steps


def test_default_cnn_space_searches_blocks_dilation_schedule_and_smoothing():
    space = default_space("cnn", (40, 1))
    assert space["block"]["choice"] == ["plain", "residual"]
    assert space["schedule"]["choice"] == ["constant", "cosine"]
    assert {"dilation_rate", "label_smoothing"} <= set(space)
    # Regression has no classes to smooth: its default space leaves label_smoothing out.
    assert "label_smoothing" not in default_space("cnn", (40, 1), "regression")
    hp = kt.HyperParameters()
    CNNHyperModel((40, 1), task="regression").build(hp)
    assert "label_smoothing" not in hp.values and hp.values["schedule"] == "constant"


def test_sampled_residual_dilated_cosine_model_gets_the_training_length():
    hypermodel = CNNHyperModel((40, 1), 10).training_length(steps_per_epoch=7, epochs=12)
    hp = kt.HyperParameters()
    for name, value in (("block", "residual"), ("dilation_rate", 2), ("schedule", "cosine"), ("label_smoothing", 0.1)):
        hp.Fixed(name, value)
    model = hypermodel.build(hp)
    assert "block1_add" in [layer.name for layer in model.layers]
    assert model.get_layer("block2_conv2").dilation_rate == (2,)
    assert model.loss.label_smoothing == pytest.approx(0.1)
    assert _schedule_steps(model) == (0, 7 * 12)


def test_schedule_length_follows_searched_epochs_batch_size_and_hyperband():
    space = {"schedule": "cosine", "warmup_epochs": 1, "epochs": {"choice": [3, 4]},
             "batch_size": {"choice": [10, 32]}}
    hypermodel = MLPHyperModel((4,), 2, space=space).training_length(steps_per_epoch=None, epochs=None, samples=100)
    hp = kt.HyperParameters()
    hp.Fixed("epochs", 4)
    hp.Fixed("batch_size", 32)
    assert _schedule_steps(hypermodel.build(hp)) == (4, 4 * 4)  # ceil(100 / 32) = 4 steps per epoch
    hyperband = kt.HyperParameters()
    hyperband.values.update({"tuner/epochs": 6, "tuner/initial_epoch": 2, "batch_size": 10})
    assert _schedule_steps(hypermodel.build(hyperband)) == (10, 4 * 10)  # this trial's fit runs 4 epochs


def test_a_schedule_without_the_training_length_is_refused():
    hp = kt.HyperParameters()
    hp.Fixed("schedule", "cosine")
    with pytest.raises(ValueError, match=r"CNNHyperModel: schedule='cosine' needs the length of the training: "
                                         r"call hypermodel.training_length\(steps_per_epoch, epochs\)"):
        CNNHyperModel((40, 1), 10).build(hp)
    with pytest.raises(ValueError, match="the space searches `batch_size`, so pass `samples` too"):
        MLPHyperModel((4,), 2, space={"schedule": "cosine", "batch_size": {"choice": [8, 16]}}).training_length(
            10, 5).build(kt.HyperParameters())
    with pytest.raises(ValueError, match="Received: samples=0"):
        MLPHyperModel((4,), 2).training_length(10, 5, samples=0)
