"""Data augmentation layers that act only in training.

Every layer returned here is the identity at inference (``training=False``,
``model.predict``, ``model.evaluate`` and exported SavedModels), so
augmentation never changes a prediction.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from dlimaging.validation import check_choice, check_number

FLIP_MODES = (None, "horizontal", "vertical", "horizontal_and_vertical")


@keras.saving.register_keras_serializable(package="dlimaging")
class RandomShift1D(keras.layers.Layer):
    """Shifts a signal along its length by up to `factor` of the length.

    The signal is rolled circularly, by the same offset for every channel of a
    sample and a new offset for each sample.
    """

    def __init__(self, factor: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.factor == 0.0:
            return inputs
        length = ops.shape(inputs)[1]
        max_shift = ops.cast(ops.round(self.factor * ops.cast(length, "float32")), "int32")
        batch = ops.shape(inputs)[0]
        shifts = keras.random.randint(
            (batch,), -max_shift, max_shift + 1, seed=self.seed_generator, dtype="int32"
        )
        positions = ops.arange(length, dtype="int32")
        # index[b, t] = (t - shift[b]) mod length: a circular roll per sample.
        index = ops.mod(positions[None, :] - shifts[:, None], length)
        return ops.take_along_axis(inputs, index[:, :, None], axis=1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


@keras.saving.register_keras_serializable(package="dlimaging")
class RandomScale(keras.layers.Layer):
    """Multiplies each sample by a random gain in [1 - factor, 1 + factor]."""

    def __init__(self, factor: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.factor = float(factor)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.factor == 0.0:
            return inputs
        shape = [ops.shape(inputs)[0]] + [1] * (len(inputs.shape) - 1)
        gain = keras.random.uniform(
            shape, 1.0 - self.factor, 1.0 + self.factor, seed=self.seed_generator
        )
        return inputs * ops.cast(gain, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "seed": self.seed}


def _check_fraction(name: str, value: Any) -> float:
    return float(check_number(name, value, low=0.0, high=1.0))


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
) -> keras.Sequential:
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
        noise: float >= 0. Standard deviation of added Gaussian noise.
            Defaults to 0.0.
        seed: int or None. Seed of the random draws. Defaults to None.
        name: str. Name of the returned layer. Defaults to "augmentation".

    Returns:
        A `keras.Sequential` layer; it is the identity when `training=False`.

    Example:
    >>> aug = image_augmentation(flip="horizontal", rotation=0.1)
    """
    check_choice("flip", flip, FLIP_MODES)
    rotation = _check_fraction("rotation", rotation)
    zoom = _check_fraction("zoom", zoom)
    translation = _check_fraction("translation", translation)
    contrast = _check_fraction("contrast", contrast)
    brightness = _check_fraction("brightness", brightness)
    noise = float(check_number("noise", noise, low=0.0))

    layers = []
    if flip is not None:
        layers.append(keras.layers.RandomFlip(flip, seed=seed, name="flip"))
    if rotation:
        layers.append(
            keras.layers.RandomRotation(rotation, fill_mode="reflect", seed=seed, name="rotation")
        )
    if zoom:
        layers.append(keras.layers.RandomZoom(zoom, fill_mode="reflect", seed=seed, name="zoom"))
    if translation:
        layers.append(
            keras.layers.RandomTranslation(
                translation, translation, fill_mode="reflect", seed=seed, name="translation"
            )
        )
    if contrast:
        layers.append(
            keras.layers.RandomContrast(contrast, value_range=(0, 1), seed=seed, name="contrast")
        )
    if brightness:
        layers.append(
            keras.layers.RandomBrightness(
                brightness, value_range=(0, 1), seed=seed, name="brightness"
            )
        )
    if noise:
        layers.append(keras.layers.GaussianNoise(noise, seed=seed, name="noise"))
    return keras.Sequential(layers, name=name)


def signal_augmentation(
    shift: float = 0.0,
    scale: float = 0.0,
    noise: float = 0.0,
    *,
    seed: int | None = None,
    name: str = "augmentation",
) -> keras.Sequential:
    """Augmentation for 1D signals and spectra `(length, channels)`, training only.

    Args:
        shift: float in [0, 1]. Largest circular shift, as a fraction of the
            length. Defaults to 0.0.
        scale: float in [0, 1). Largest relative change of the gain.
            Defaults to 0.0.
        noise: float >= 0. Standard deviation of added Gaussian noise.
            Defaults to 0.0.
        seed: int or None. Seed of the random draws. Defaults to None.
        name: str. Name of the returned layer. Defaults to "augmentation".

    Returns:
        A `keras.Sequential` layer; it is the identity when `training=False`.

    Example:
    >>> aug = signal_augmentation(shift=0.1, noise=0.05)
    """
    shift = _check_fraction("shift", shift)
    scale = float(check_number("scale", scale, low=0.0, high=1.0, high_inclusive=False))
    noise = float(check_number("noise", noise, low=0.0))
    layers = []
    if shift:
        layers.append(RandomShift1D(shift, seed=seed, name="shift"))
    if scale:
        layers.append(RandomScale(scale, seed=seed, name="scale"))
    if noise:
        layers.append(keras.layers.GaussianNoise(noise, seed=seed, name="noise"))
    return keras.Sequential(layers, name=name)


IMAGE_AUGMENTATION_KEYS = ("flip", "rotation", "zoom", "translation", "contrast", "brightness", "noise")
SIGNAL_AUGMENTATION_KEYS = ("shift", "scale", "noise")


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
        raise ValueError(
            "`augmentation` must be None, a dict of options or a Keras layer. "
            f"Received: augmentation={augmentation!r}"
        )
    if len(input_shape) == 2:
        factory, keys = signal_augmentation, SIGNAL_AUGMENTATION_KEYS
    elif len(input_shape) == 3:
        factory, keys = image_augmentation, IMAGE_AUGMENTATION_KEYS
    else:
        raise ValueError(
            "`augmentation` as a dict needs 1D signals (length, channels) or 2D images "
            f"(height, width, channels); input_shape={input_shape} has no such factory. "
            "Pass a Keras layer instead."
        )
    unknown = sorted(set(augmentation) - set(keys) - {"seed"})
    if unknown:
        raise ValueError(
            f"Unknown `augmentation` option(s) {unknown} for input_shape={input_shape}. "
            f"Allowed: {', '.join(keys)}. Received: augmentation={augmentation!r}"
        )
    if not any(augmentation.get(k) for k in keys):
        return None
    return factory(**augmentation)
