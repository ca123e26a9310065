"""Augmentation: active in training only, the signal layers' behaviour, the options' checks."""

import keras
import numpy as np
import pytest

import dlimaging as dli


@pytest.mark.parametrize(
    "builder, input_shape, augmentation",
    [
        (dli.build_cnn, (16, 16, 1), {"flip": "horizontal", "rotation": 0.2, "noise": 0.3}),
        (dli.build_cnn, (40, 1), {"shift": 0.2, "scale": 0.3, "noise": 0.3}),
        (dli.build_mlp, (16, 16, 1), {"zoom": 0.2, "translation": 0.2, "contrast": 0.3, "brightness": 0.3}),
    ],
)
def test_dropout_and_augmentation_inactive_at_inference(builder, input_shape, augmentation, rng):
    model = builder(input_shape, 4, dropout=0.5, augmentation=augmentation)
    x = rng.uniform(0, 1, (6,) + input_shape).astype("float32")
    first = model.predict(x, verbose=0)
    second = model.predict(x, verbose=0)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(model(x, training=False), first, rtol=1e-5, atol=1e-6)
    a = model(x, training=True).numpy()
    b = model(x, training=True).numpy()
    assert not np.allclose(a, b)


def test_augmentation_layers_act_only_in_training(rng):
    x = rng.uniform(0, 1, (4, 16, 16, 1)).astype("float32")
    aug = dli.image_augmentation(flip="horizontal_and_vertical", rotation=0.25, noise=0.1)
    np.testing.assert_array_equal(aug(x, training=False), x)
    assert not np.allclose(aug(x, training=True), x)
    s = rng.normal(size=(4, 40, 2)).astype("float32")
    saug = dli.signal_augmentation(shift=0.25, scale=0.5)
    np.testing.assert_array_equal(saug(s, training=False), s)
    out = saug(s, training=True).numpy()
    assert out.shape == s.shape and not np.allclose(out, s)


def test_signal_shift_is_a_circular_roll():
    from dlimaging.models.augmentation import RandomShift1D

    signal = np.arange(40, dtype="float32")
    x = np.tile(signal[None, :, None], (16, 1, 2))  # 16 samples, 2 channels
    out = RandomShift1D(0.25, seed=1)(x, training=True).numpy()
    shifts = []
    for sample in out:
        shift = int(-sample[0, 0]) % 40  # out[t] = x[t - shift], so out[0] = x[-shift]
        np.testing.assert_array_equal(sample[:, 0], np.roll(signal, shift))
        np.testing.assert_array_equal(sample[:, 1], sample[:, 0])  # one shift for all channels
        shifts.append(shift if shift <= 20 else shift - 40)
    assert max(abs(s) for s in shifts) <= 10  # at most 0.25 of the length
    assert len(set(shifts)) > 1  # a new shift for each sample


def test_augmentation_accepts_a_keras_layer():
    layer = keras.layers.GaussianNoise(0.1, name="my_noise")
    model = dli.build_cnn((8, 8, 1), 2, filters=(4,), augmentation=layer)
    assert model.get_layer("my_noise") is layer


@pytest.mark.parametrize("factory, shape", [(dli.image_augmentation, (2, 8, 8, 1)), (dli.signal_augmentation, (2, 40, 1))])
def test_all_default_augmentation_is_an_identity_layer(factory, shape, rng):
    layer = factory()
    assert isinstance(layer, keras.layers.Identity) and not isinstance(layer, keras.Sequential)
    x = rng.uniform(0, 1, shape).astype("float32")
    np.testing.assert_array_equal(layer(x, training=True), x)
    # a builder takes it (and, being the identity, adds nothing to the model)
    builder = dli.build_cnn if len(shape) == 4 else dli.build_mlp
    assert builder(shape[1:], 2, augmentation=layer, compile=False).count_params() > 0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: dli.image_augmentation(noise=2.0), r"^`noise` must be a number in \[0.0, 1.0\]. Received: noise=2.0$"),
        (lambda: dli.signal_augmentation(noise=2.0), r"^`noise` must be a number in \[0.0, 1.0\]. Received: noise=2.0$"),
        (lambda: dli.signal_augmentation(scale=1.0), r"^`scale` must be a number in \[0.0, 1.0\). Received: scale=1.0$"),
        (lambda: dli.image_augmentation(rotation=float("inf")), r"^`rotation` must be a finite number"),
        (lambda: dli.build_cnn((40, 1), 2, augmentation={"noise": 2.0}), r"^`noise` must be a number in \[0.0, 1.0\]"),
    ],
)
def test_augmentation_values_get_dlimagings_own_message(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "stddev" not in str(info.value)


def test_standardize_comes_after_augmentation_and_none_adds_no_layer():
    model = dli.build_cnn((40, 1), 2, filters=(4,), augmentation={"scale": 0.1}, standardize="global")
    assert [layer.name for layer in model.layers[:3]] == ["input", "augmentation", "standardize"]
    assert "standardize" not in [layer.name for layer in dli.build_cnn((40, 1), 2, filters=(4,)).layers]


@pytest.mark.parametrize("options", [{"baseline": 0.5}, {"scatter": 0.3}, {"shift": 0.2, "shift_mode": "edge"}])
def test_spectra_augmentation_acts_only_in_training(options, rng):
    layer = dli.signal_augmentation(**options, seed=3)
    x = (1000 + 100 * rng.normal(size=(8, 40, 2))).astype("float32")
    np.testing.assert_array_equal(layer(x, training=False), x)
    assert not np.allclose(layer(x, training=True), x)
    model = dli.build_cnn((40, 2), 2, filters=(4,), augmentation=options)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_edge_shift_repeats_the_edge_value_and_does_not_wrap():
    from dlimaging.models.augmentation import RandomShift1D

    signal = np.arange(40, dtype="float32") + 100
    x = np.tile(signal[None, :, None], (32, 1, 2))
    out = RandomShift1D(0.25, seed=1, mode="edge")(x, training=True).numpy()
    shifts = set()
    for sample in out:
        # out[t] = x[clip(t - s)]: nondecreasing, within the signal's values, never a wrap (a drop).
        assert (np.diff(sample[:, 0]) >= 0).all()
        first, last = sample[0, 0], sample[-1, 0]
        if first > signal[0]:  # shifted left: the right end repeats the last value
            s = int(first - signal[0])
            np.testing.assert_array_equal(sample[:, 0], np.concatenate([signal[s:], np.full(s, signal[-1])]))
            shifts.add(-s)
        else:  # shifted right (or not): the left end repeats the first value
            s = int(signal[-1] - last)
            np.testing.assert_array_equal(sample[:, 0], np.concatenate([np.full(s, signal[0]), signal[:40 - s]]))
            shifts.add(s)
        np.testing.assert_array_equal(sample[:, 1], sample[:, 0])
    assert max(abs(s) for s in shifts) <= 10 and len(shifts) > 3
    assert any(s < 0 for s in shifts) and any(s > 0 for s in shifts)


def test_baseline_adds_a_straight_line_scaled_by_the_samples_spread(rng):
    from dlimaging.models.augmentation import RandomBaseline

    x = (500 + 20 * rng.normal(size=(64, 50, 2))).astype("float32")
    out = RandomBaseline(0.5, seed=2)(x, training=True).numpy()
    added = out - x
    np.testing.assert_allclose(added[:, :, 0], added[:, :, 1], atol=1e-3)  # one curve for all channels
    t = np.linspace(-1, 1, 50)
    std = x.std(axis=(1, 2))
    slopes, offsets = [], []
    for curve, s in zip(added[:, :, 0], std):
        slope, offset = np.polyfit(t, curve, 1)
        np.testing.assert_allclose(curve, offset + slope * t, atol=2e-3 * s)  # a line, nothing else
        slopes.append(slope / s)
        offsets.append(offset / s)
    assert max(map(abs, slopes)) <= 0.5 + 1e-4 and max(map(abs, offsets)) <= 0.5 + 1e-4
    assert max(map(abs, slopes)) > 0.3 and max(map(abs, offsets)) > 0.3  # the whole range is used


def test_scatter_gain_and_offset_stay_in_their_bounds(rng):
    from dlimaging.models.augmentation import RandomScatter

    # Two values per sample recover its gain g and offset o: out = g·x + o.
    x = np.zeros((2000, 2, 1), "float32")
    x[:, 0, 0], x[:, 1, 0] = 1000.0, 1200.0
    out = RandomScatter(0.2, seed=4)(x, training=True).numpy()[:, :, 0]
    gain = (out[:, 1] - out[:, 0]) / 200.0
    offset = out[:, 0] - gain * 1000.0
    std = 100.0  # each sample's standard deviation
    assert gain.min() >= 0.8 - 1e-4 and gain.max() <= 1.2 + 1e-4
    assert np.abs(offset).max() <= 0.2 * std + 0.1
    assert gain.min() < 0.82 and gain.max() > 1.18 and np.abs(offset).max() > 0.18 * std
    assert np.corrcoef(gain, offset)[0, 1] ** 2 < 0.01  # drawn independently


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shift_mode": "reflect"}, "`shift_mode` must be one of 'circular', 'edge'. Received: shift_mode='reflect'"),
        ({"scatter": 1.0}, r"`scatter` must be a number in \[0.0, 1.0\). Received: scatter=1.0"),
        ({"baseline": -0.1}, r"`baseline` must be a number in \[0.0, 1.0\]. Received: baseline=-0.1"),
    ],
)
def test_spectra_augmentation_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dli.signal_augmentation(**kwargs)
    with pytest.raises(ValueError, match=match):
        dli.build_cnn((40, 1), 2, augmentation=kwargs)
