"""The corruption ops: a checked spec (`dlimaging.data.corruption`) applied to one clean sample in TensorFlow.

Every draw is stateless: the same `seed` gives the same corruption, so a
validation set corrupted once stays the same, and a training pipeline that
feeds a fresh seed per sample and per epoch gets a fresh draw each time.
"""

from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf

from dlimaging.data.corruption import blur_kernel


def _seed(seed, index: int):
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), index)


def _gaussian(x, step, seed, max_val):
    low, high = step["sigma"]
    sigma = tf.random.stateless_uniform([], _seed(seed, 0), low, high) if high > low else tf.constant(low)
    return x + sigma * tf.random.stateless_normal(tf.shape(x), _seed(seed, 1))


def _poisson(x, step, seed, max_val):
    counts = tf.maximum(x, 0.0) * (step["peak"] / max_val)
    return tf.random.stateless_poisson(tf.shape(x), _seed(seed, 0), counts, dtype=tf.float32) * (max_val / step["peak"])


def _blur(x, step, seed, max_val):
    """Convolution with the kernel, per channel, the borders mirrored (a flat image stays flat); a
    volume (depth, height, width, channels) is blurred in each of its (height, width) slices."""
    rank = len(x.shape)
    kernel = tf.constant(blur_kernel(step, min(rank, 3)))
    if rank == 2:  # a signal (length, channels) is an image of height 1
        kernel = kernel[None, :]
    channels = x.shape[-1]
    image = x if rank == 4 else x[None] if rank == 3 else x[None, None]  # a volume's slices: a batch
    pad_y, pad_x = kernel.shape[0] // 2, kernel.shape[1] // 2
    mode = "SYMMETRIC"  # unlike REFLECT, it accepts a pad as wide as the image
    image = tf.pad(image, [[0, 0], [pad_y, pad_y], [pad_x, pad_x], [0, 0]], mode=mode)
    filters = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    # depthwise_conv2d correlates; flipping the kernel makes it a convolution (a delta gives the kernel).
    out = tf.nn.depthwise_conv2d(image, filters[::-1, ::-1], strides=[1, 1, 1, 1], padding="VALID")
    return out if rank == 4 else out[0] if rank == 3 else out[0, 0]


def _baseline(x, step, seed, max_val):
    """offset + slope·t + curvature·t², t in [-1, 1] along the signal, each coefficient in ±amplitude."""
    a = step["amplitude"]
    coefficients = tf.random.stateless_uniform([3], _seed(seed, 0), -a, a)
    t = tf.linspace(-1.0, 1.0, tf.shape(x)[0])
    baseline = coefficients[0] + coefficients[1] * t + coefficients[2] * (t * t - 1.0 / 3.0)
    return x + baseline[:, None]


OPS = {"gaussian": _gaussian, "poisson": _poisson, "blur": _blur, "baseline": _baseline}


def corrupt(x, steps: tuple[Mapping[str, Any], ...], seed, max_val: float = 1.0):
    """One clean sample, corrupted.

    Args:
        x: float32 tensor (length, channels), (height, width, channels) or (depth, height, width, channels).
        steps: the checked steps, from `dlimaging.data.corruption.check_corruption`.
        seed: int tensor of shape (2,): the draw. The same seed, the same corruption.
        max_val: float. The data's white, which sets Poisson's scale.

    Returns:
        A float32 tensor of the same shape.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    for index, step in enumerate(steps):
        x = OPS[step["kind"]](x, step, _seed(seed, 100 + index), float(max_val))
    return x
