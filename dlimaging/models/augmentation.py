"""Data augmentation layers that act only in training.

Every layer returned here is the identity at inference (``training=False``,
``model.predict``, ``model.evaluate`` and exported SavedModels), so
augmentation never changes a prediction.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.validation import check_argument


def _per_sample(inputs) -> list:
    """The shape of one random value per sample, broadcast over the other axes."""
    return [ops.shape(inputs)[0]] + [1] * (len(inputs.shape) - 1)


def _sample_std(inputs):
    """Each sample's standard deviation over all its values: the scale of an additive change,
    so that it means the same on raw instrument values as on values in [0, 1]."""
    return ops.std(inputs, axis=tuple(range(1, len(inputs.shape))), keepdims=True)


class _SignalAugmentation(keras.layers.Layer):
    """A random change drawn anew for each sample, applied only in training.

    Subclasses implement `augment(inputs)`; `factor` is the size of the change
    (0 switches it off), `seed` the seed of the draws.
    """

    def __init__(self, factor: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.factor == 0.0:
            return inputs
        return self.augment(inputs)

    def augment(self, inputs):
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


@keras.saving.register_keras_serializable(package="dlimaging")
class RandomShift1D(_SignalAugmentation):
    """Shifts a signal along its length by up to `factor` of the length.

    The same offset moves every channel of a sample, with a new offset for each
    sample. `mode` says what comes in at the end the signal leaves:
    "circular" rolls it (what leaves one end comes back at the other, right for
    periodic signals), "edge" repeats the edge value (right for spectra, whose
    two ends are unrelated).
    """

    def __init__(self, factor: float, seed: int | None = None, mode: str = "circular", **kwargs):
        super().__init__(factor, seed, **kwargs)
        self.mode = check_argument("shift_mode", mode)

    def augment(self, inputs):
        length = ops.shape(inputs)[1]
        max_shift = ops.cast(ops.round(self.factor * ops.cast(length, "float32")), "int32")
        batch = ops.shape(inputs)[0]
        shifts = keras.random.randint(
            (batch,), -max_shift, max_shift + 1, seed=self.seed_generator, dtype="int32"
        )
        positions = ops.arange(length, dtype="int32")
        # out[b, t] = in[b, t - shift[b]]; that index wraps (circular) or stops at the ends (edge).
        index = positions[None, :] - shifts[:, None]
        index = ops.mod(index, length) if self.mode == "circular" else ops.clip(index, 0, length - 1)
        return ops.take_along_axis(inputs, index[:, :, None], axis=1)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="dlimaging")
class RandomBaseline(_SignalAugmentation):
    """Adds a random straight baseline `a + b·t` to each sample, t going from -1 to 1 along the length.

    `a` and `b` are drawn per sample in [-factor, factor] × the sample's standard
    deviation, and the same line is added to every channel: the smooth drift of a
    spectrometer's background (offset and tilt).
    """

    def augment(self, inputs):
        shape = _per_sample(inputs)
        scale = _sample_std(inputs)
        offset = keras.random.uniform(shape, -self.factor, self.factor, seed=self.seed_generator)
        slope = keras.random.uniform(shape, -self.factor, self.factor, seed=self.seed_generator)
        t = ops.reshape(ops.linspace(-1.0, 1.0, ops.shape(inputs)[1]), [1, -1] + [1] * (len(inputs.shape) - 2))
        baseline = (ops.cast(offset, inputs.dtype) + ops.cast(slope, inputs.dtype) * ops.cast(t, inputs.dtype)) * scale
        return inputs + baseline


@keras.saving.register_keras_serializable(package="dlimaging")
class RandomScatter(_SignalAugmentation):
    """Multiplicative and additive scatter: `gain · x + offset` per sample.

    The gain is drawn in [1 - factor, 1 + factor] (as `RandomScale`) and the offset in
    [-factor, factor] × the sample's standard deviation: the model that multiplicative
    scatter correction (MSC) undoes in spectroscopy.
    """

    def augment(self, inputs):
        shape = _per_sample(inputs)
        scale = _sample_std(inputs)
        gain = keras.random.uniform(shape, 1.0 - self.factor, 1.0 + self.factor, seed=self.seed_generator)
        offset = keras.random.uniform(shape, -self.factor, self.factor, seed=self.seed_generator)
        return inputs * ops.cast(gain, inputs.dtype) + ops.cast(offset, inputs.dtype) * scale


@keras.saving.register_keras_serializable(package="dlimaging")
class RandomScale(_SignalAugmentation):
    """Multiplies each sample by a random gain in [1 - factor, 1 + factor]."""

    def augment(self, inputs):
        shape = _per_sample(inputs)
        gain = keras.random.uniform(
            shape, 1.0 - self.factor, 1.0 + self.factor, seed=self.seed_generator
        )
        return inputs * ops.cast(gain, inputs.dtype)


def _check_fraction(name: str, value: Any) -> float:
    # The rule of each option is in `dlimaging.validation.ARGUMENT_CHECKS`, shared with the
    # experiment schema's `[search.augmentation]` checks.
    return float(check_argument(name, value))


def flip_layer(value, seed=None):
    check_argument("flip", value)
    return None if value is None else keras.layers.RandomFlip(value, seed=seed, name="flip")


def rotation_layer(value, seed=None):
    value = _check_fraction("rotation", value)
    return keras.layers.RandomRotation(value, fill_mode="reflect", seed=seed, name="rotation") if value else None


def zoom_layer(value, seed=None):
    value = _check_fraction("zoom", value)
    return keras.layers.RandomZoom(value, fill_mode="reflect", seed=seed, name="zoom") if value else None


def translation_layer(value, seed=None):
    value = _check_fraction("translation", value)
    if not value:
        return None
    return keras.layers.RandomTranslation(value, value, fill_mode="reflect", seed=seed, name="translation")


def contrast_layer(value, seed=None):
    value = _check_fraction("contrast", value)
    return keras.layers.RandomContrast(value, value_range=(0, 1), seed=seed, name="contrast") if value else None


def brightness_layer(value, seed=None):
    value = _check_fraction("brightness", value)
    return keras.layers.RandomBrightness(value, value_range=(0, 1), seed=seed, name="brightness") if value else None


def noise_layer(value, seed=None):
    value = _check_fraction("noise", value)
    return keras.layers.GaussianNoise(value, seed=seed, name="noise") if value else None


def shift_layer(value, seed=None, shift_mode="circular"):
    value = _check_fraction("shift", value)
    check_argument("shift_mode", shift_mode)
    return RandomShift1D(value, seed=seed, mode=shift_mode, name="shift") if value else None


def shift_mode_setting(value, seed=None):
    """`shift_mode` is a setting of `shift`'s layer (its registry entry lists it), not a layer."""
    check_argument("shift_mode", value)
    return None


def scale_layer(value, seed=None):
    value = _check_fraction("scale", value)
    return RandomScale(value, seed=seed, name="scale") if value else None


def scatter_layer(value, seed=None):
    value = _check_fraction("scatter", value)
    return RandomScatter(value, seed=seed, name="scatter") if value else None


def baseline_layer(value, seed=None):
    value = _check_fraction("baseline", value)
    return RandomBaseline(value, seed=seed, name="baseline") if value else None


def _pipeline(options: dict[str, Any], seed, name: str) -> keras.layers.Layer:
    """The options' layers in the registry's order; the identity when every option is off."""
    layers = []
    for option, value in options.items():
        entry = registry.AUGMENTATIONS[option]
        settings = {setting: options[setting] for setting in entry.settings if setting in options}
        layer = registry.resolve(entry.factory)(value, seed, **settings)
        if layer is not None:
            layers.append(layer)
    if not layers:
        return keras.layers.Identity(name=name)
    return keras.Sequential(layers, name=name)


def image_augmentation(
    flip: str | None = None,
    rotation: float = 0.0,
    zoom: float = 0.0,
    translation: float = 0.0,
    contrast: float = 0.0,
    brightness: float = 0.0,
    noise: float = 0.0,
    *,
    seed: int | None = None,
    name: str = "augmentation",
) -> keras.layers.Layer:
    """Image augmentation for inputs scaled to [0, 1], active only in training.

    Args:
        flip: None, "horizontal", "vertical" or "horizontal_and_vertical".
            Defaults to None.
        rotation: float in [0, 1]. Largest rotation, as a fraction of a full
            turn (0.1 is ±36°). Defaults to 0.0.
        zoom: float in [0, 1]. Largest zoom in or out, as a fraction of the
            size. Defaults to 0.0.
        translation: float in [0, 1]. Largest shift, as a fraction of the
            height and width. Defaults to 0.0.
        contrast: float in [0, 1]. Largest contrast change. Defaults to 0.0.
        brightness: float in [0, 1]. Largest brightness change, as a fraction
            of the value range. Defaults to 0.0.
        noise: float in [0, 1]. Standard deviation of added Gaussian noise.
            Defaults to 0.0.
        seed: int or None. Seed of the random draws. Defaults to None.
        name: str. Name of the returned layer. Defaults to "augmentation".

    Returns:
        A Keras layer that is the identity when `training=False` (and always,
        when every option is off).

    Example:
    >>> aug = image_augmentation(flip="horizontal", rotation=0.1)
    """
    options = dict(flip=flip, rotation=rotation, zoom=zoom, translation=translation,
                   contrast=contrast, brightness=brightness, noise=noise)
    return _pipeline(options, seed, name)


def signal_augmentation(
    shift: float = 0.0,
    shift_mode: str = "circular",
    scale: float = 0.0,
    scatter: float = 0.0,
    baseline: float = 0.0,
    noise: float = 0.0,
    *,
    seed: int | None = None,
    name: str = "augmentation",
) -> keras.layers.Layer:
    """Augmentation for 1D signals and spectra `(length, channels)`, training only.

    The layers act in this order: shift, scale, scatter, baseline, noise. In a
    builder they come before the "standardize" layer, so they act on the raw
    values; `scatter` and `baseline` are relative to each sample's standard
    deviation and mean the same at any scale, while `noise` is in the input's
    own units.

    Args:
        shift: float in [0, 1]. Largest shift along the length, as a fraction
            of the length. Defaults to 0.0.
        shift_mode: str. "circular": the signal wraps around (periodic
            signals); "edge": the values shifted in repeat the edge value.
            Spectra should use "edge": their two ends are unrelated.
            Defaults to "circular".
        scale: float in [0, 1). Largest relative change of the gain.
            Defaults to 0.0.
        scatter: float in [0, 1). Multiplicative and additive scatter: a gain
            in [1 - scatter, 1 + scatter] and an offset of up to ±scatter × the
            sample's standard deviation. Defaults to 0.0.
        baseline: float in [0, 1]. A straight baseline `a + b·t` added to each
            sample (t from -1 to 1 along the length), with offset `a` and tilt
            `b` each up to ±baseline × the sample's standard deviation.
            Defaults to 0.0.
        noise: float in [0, 1]. Standard deviation of added Gaussian noise.
            Defaults to 0.0.
        seed: int or None. Seed of the random draws. Defaults to None.
        name: str. Name of the returned layer. Defaults to "augmentation".

    Returns:
        A Keras layer that is the identity when `training=False` (and always,
        when every option is off).

    Example:
    >>> aug = signal_augmentation(shift=0.02, shift_mode="edge", scatter=0.1, baseline=0.2)
    """
    options = dict(shift=shift, shift_mode=shift_mode, scale=scale, scatter=scatter, baseline=baseline, noise=noise)
    return _pipeline(options, seed, name)


_FACTORIES = {"image": image_augmentation, "signal": signal_augmentation}


def resolve_augmentation(augmentation: Any, input_shape: tuple[int, ...]):
    """Turns the builders' `augmentation` argument into a layer or None.

    A dict picks the factory from the input rank: `(length, channels)` gives
    `signal_augmentation`, `(height, width, channels)` gives
    `image_augmentation`.
    """
    if augmentation is None:
        return None
    if isinstance(augmentation, keras.layers.Layer):
        return augmentation
    if not isinstance(augmentation, dict):
        raise InputError(
            "`augmentation` must be None, a dict of options or a Keras layer. "
            f"Received: augmentation={augmentation!r}"
        )
    kind = registry.AUGMENTATION_INPUTS.get(len(input_shape))
    if kind is None:
        raise InputError(
            "`augmentation` as a dict needs 1D signals (length, channels) or 2D images "
            f"(height, width, channels); input_shape={input_shape} has no such factory. "
            "Pass a Keras layer instead."
        )
    keys = registry.augmentation_keys(input_shape)
    unknown = sorted(set(augmentation) - set(keys) - {"seed"})
    if unknown:
        raise InputError(
            f"Unknown `augmentation` option(s) {unknown} for input_shape={input_shape}. "
            f"Allowed: {', '.join(keys)}. Received: augmentation={augmentation!r}"
        )
    layer = _FACTORIES[kind](**augmentation)
    return None if isinstance(layer, keras.layers.Identity) else layer
