"""Augmentation of image and target together: one random draw moves the pixels of both.

A segmentation's mask (or a restoration's clean image) must follow every flip, rotation, zoom
and translation of its image, or the pair no longer lines up. `joint_augmentation(options)`
returns a function `(dataset, seed) -> dataset` that maps `(image, target)` pairs, in the
training pipeline, before batching:

- moving options, drawn once per pair and applied to both: `flip` ("horizontal", "vertical",
  "horizontal_and_vertical", or True for both), `rotate90` (True: a random quarter turn, square
  images only), `rotation` (a fraction of a full turn, at most ±value), `zoom` (at most ±value of
  the size) and `translation` (at most ±value of each side). Images are interpolated bilinearly,
  masks by nearest neighbour (class ids stay integers); the border is reflected.
- intensity options, on the image only: `contrast` and `brightness` (at most ±value) and `noise`
  (Gaussian of standard deviation `value` times the image's).

Signals (length, channels) take `flip` (reversed) only. Volumes (depth, height, width, channels)
take `flip` and `rotate90` in the (height, width) plane (the same for every slice), and the
intensity options. A restoration's training patches are
cut and moved (`move_pair`) before they are corrupted, so the noisy and the clean patch move
together; it takes the moving options only.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import tensorflow as tf

from dlimaging.data.joint_options import (  # noqa: F401
    FLIPS,
    INTENSITY,
    MOVING,
    SIGNAL_OPTIONS,
    check_joint_options,
)


def _affine(key, options, height, width):
    """The projective transform (8 numbers, output → input) of a random rotation, zoom and translation
    about the image's centre."""
    draw = lambda n, low, high: tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(key, n),  # noqa: E731
                                                           low, high)
    angle = draw(10, -1.0, 1.0) * options.get("rotation", 0.0) * 2 * math.pi
    scale = 1.0 + draw(11, -1.0, 1.0) * options.get("zoom", 0.0)
    shift = options.get("translation", 0.0)
    dy, dx = draw(12, -1.0, 1.0) * shift * height, draw(13, -1.0, 1.0) * shift * width
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    # input = R(-angle)/scale · (output − centre − shift) + centre
    a0, a1 = cos, -sin
    b0, b1 = sin, cos
    a2 = cx - a0 * (cx + dx) - a1 * (cy + dy)
    b2 = cy - b0 * (cx + dx) - b1 * (cy + dy)
    return tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])[None]


def _warp(image, transform, interpolation):
    """`image` (height, width, channels) through `transform`, its border reflected."""
    shape = tf.shape(image)[:2]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=shape, fill_value=0.0,
        interpolation=interpolation, fill_mode="REFLECT")[0]


def move_pair(x, y, key, options):
    """One draw of the moving options, applied to the image `x` and the target `y` alike."""
    fold = lambda n: tf.random.experimental.stateless_fold_in(key, n)  # noqa: E731
    signal = x.shape.rank == 2
    plane = 1 if x.shape.rank == 4 else 0  # the first of the (height, width) axes: a volume's slices
    mask = y.shape.rank == x.shape.rank - 1  # a mask has no channel axis: give it one meanwhile
    y = y[..., None] if mask else y
    if "flip" in options:  # (up-down, left-right) for images; a signal is reversed
        for axis, wanted in enumerate((True,) if signal else FLIPS[options["flip"]]):
            if wanted:
                flip = tf.random.stateless_uniform([], fold(axis + 1)) < 0.5
                x = tf.where(flip, tf.reverse(x, [plane + axis]), x)
                y = tf.where(flip, tf.reverse(y, [plane + axis]), y)
    if "rotate90" in options and not signal and x.shape[plane] == x.shape[plane + 1]:
        k = tf.random.stateless_uniform([], fold(3), 0, 4, tf.int32)
        x, y = tf.image.rot90(x, k), tf.image.rot90(y, k)
    if not signal and not plane and any(k in options for k in ("rotation", "zoom", "translation")):
        size = tf.cast(tf.shape(x)[:2], tf.float32)
        transform = _affine(key, options, size[0], size[1])
        x = _warp(x, transform, "BILINEAR")
        if mask or y.dtype.is_integer:
            y = tf.cast(_warp(tf.cast(y, tf.float32), transform, "NEAREST"), y.dtype)
        else:
            y = _warp(y, transform, "BILINEAR")
    return x, (y[..., 0] if mask else y)


def _intensity(x, key, options):
    fold = lambda n: tf.random.experimental.stateless_fold_in(key, n)  # noqa: E731
    if "contrast" in options:
        factor = 1.0 + tf.random.stateless_uniform([], fold(20), -1.0, 1.0) * options["contrast"]
        mean = tf.reduce_mean(x)
        x = (x - mean) * factor + mean
    if "brightness" in options:
        x = x + tf.random.stateless_uniform([], fold(21), -1.0, 1.0) * options["brightness"]
    if "noise" in options:
        x = x + tf.random.stateless_normal(tf.shape(x), fold(22)) * options["noise"] * tf.math.reduce_std(x)
    return x


def joint_augmentation(options: Mapping[str, Any] | None, image: bool = True, volume: bool = False):
    """A function `(dataset, seed) -> dataset` that augments `(image, target)` pairs (see the
    module's docstring), with a fresh draw for each pair at each epoch; None when no option is on.

    Example:
    >>> augment = joint_augmentation({"flip": True, "rotation": 0.1, "contrast": 0.2})
    >>> pairs = tf.data.Dataset.from_tensor_slices((tf.zeros((4, 8, 8, 1)), tf.zeros((4, 8, 8), tf.int32)))
    >>> [tuple(t.shape) for t in next(iter(augment(pairs, 0)))]
    [(8, 8, 1), (8, 8)]
    """
    options = check_joint_options(options, image, volume=volume)
    if not options:
        return None

    def pair(element, key):
        x, y = element
        seed = tf.stack([key, tf.constant(0x1A2B, tf.int64)])
        x, y = move_pair(x, y, seed, options)
        return _intensity(x, tf.random.experimental.stateless_fold_in(seed, 99), options), y

    def augment(dataset: tf.data.Dataset, seed: int) -> tf.data.Dataset:
        keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        return tf.data.Dataset.zip((dataset, keys)).map(pair, num_parallel_calls=tf.data.AUTOTUNE,
                                                        deterministic=True)

    return augment
