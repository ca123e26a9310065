"""Noise2Void's blind-spot masking (Krull et al., CVPR 2019), inside the `tf.data` pipeline.

At `fraction` of the pixels of a noisy patch (at least one), chosen at random, the input takes
the value of a random neighbour, never the pixel itself, from the `WINDOW`×`WINDOW` window
around it (`WINDOW` points along a signal). The target is the noisy patch, unchanged, with one
more channel: the mask, 1 at the replaced pixels. `dlimaging.models.metrics.Noise2VoidLoss`
reads that channel and scores the prediction at those pixels only, so the network cannot learn
the identity and learns what the neighbourhood says of a pixel: its clean value, when the noise
is independent from pixel to pixel. A standard Keras `fit` trains on these pairs.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from dlimaging.data.n2v_options import WINDOW


def _neighbours(points, sizes, seed):
    """A random neighbour of each point, within the window, never the point itself; an offset that
    leaves the patch is turned back (its sign flipped), then clipped for patches under the window."""
    rank = points.shape[-1]
    radius = WINDOW // 2
    cells = WINDOW ** rank
    # An index into the window without its centre, then the offsets of that cell.
    index = tf.random.stateless_uniform([tf.shape(points)[0]], seed, 0, cells - 1, tf.int64)
    index = index + tf.cast(index >= cells // 2, tf.int64)
    offsets = tf.stack([(index // WINDOW ** (rank - 1 - a)) % WINDOW - radius for a in range(rank)], axis=-1)
    moved = points + offsets
    outside = (moved < 0) | (moved >= sizes)
    moved = tf.where(outside, points - offsets, moved)
    return tf.clip_by_value(moved, 0, sizes - 1)


def mask_patch(noisy, fraction: float, seed):
    """(input, target) of one noisy patch (length, channels) or (height, width, channels).

    Args:
        noisy: float32 tensor.
        fraction: float in (0, 0.1]. Of the patch's pixels, those masked (at least one).
        seed: int tensor of shape (2,): the draw.

    Returns:
        The input, with the masked pixels replaced by neighbours, and the target of shape
        (..., channels + 1): the noisy patch and the mask.
    """
    noisy = tf.convert_to_tensor(noisy, tf.float32)
    spatial = noisy.shape[:-1]
    rank = len(spatial)
    sizes = tf.constant(list(spatial), tf.int64)
    count = max(1, int(round(fraction * float(np.prod(spatial)))))
    fold = lambda n: tf.random.experimental.stateless_fold_in(seed, n)  # noqa: E731
    points = tf.stack([tf.random.stateless_uniform([count], fold(a), 0, spatial[a], tf.int64)
                       for a in range(rank)], axis=-1)
    values = tf.gather_nd(noisy, _neighbours(points, sizes, fold(rank)))
    masked = tf.tensor_scatter_nd_update(noisy, points, values)
    mask = tf.minimum(tf.scatter_nd(points, tf.ones([count], tf.float32), sizes), 1.0)
    return masked, tf.concat([noisy, mask[..., None]], axis=-1)


def masked_dataset(noisy: tf.data.Dataset, fraction: float, seed: int) -> tf.data.Dataset:
    """`(input, target)` pairs of a dataset of `(key, noisy patch)`: patch `key`'s mask is the draw
    (seed, key), so a fixed set of patches (validation, test) has a fixed mask."""
    def pair(key, patch):
        return mask_patch(patch, fraction, tf.stack([tf.constant(seed, tf.int64), tf.cast(key, tf.int64)]))

    return noisy.map(pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def mask_once(noisy: np.ndarray, fraction: float, seed: int):
    """`(inputs, targets)` arrays of a fixed set of noisy patches, each masked once (seeded)."""
    if not len(noisy):
        return noisy, np.zeros(noisy.shape[:-1] + (noisy.shape[-1] + 1,), "float32")
    ds = masked_dataset(tf.data.Dataset.from_tensor_slices((tf.range(len(noisy), dtype=tf.int64), noisy)),
                        fraction, seed)
    inputs, targets = zip(*ds.batch(256).as_numpy_iterator())
    return np.concatenate(inputs), np.concatenate(targets)
