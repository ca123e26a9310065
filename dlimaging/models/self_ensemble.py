"""Self-ensembling at inference (geometric test-time augmentation; Timofte et al. 2016, used by
EDSR and DRUNet): a restoration model is applied to the 8 flips and quarter turns of an image (the
2 orientations of a signal), each result is turned back, and their mean is the output.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf


def _image_transforms():
    """(forward, inverse) pairs on (batch, height, width, channels): 4 quarter turns, each with and
    without a left-right flip."""
    pairs = []
    for turns in range(4):
        for flip in (False, True):
            def forward(x, k=turns, f=flip):
                x = tf.image.rot90(x, k)
                return tf.reverse(x, [2]) if f else x

            def inverse(y, k=turns, f=flip):
                y = tf.reverse(y, [2]) if f else y
                return tf.image.rot90(y, (4 - k) % 4)

            pairs.append((forward, inverse))
    return pairs


def transforms(rank: int):
    """The (forward, inverse) pairs for inputs of `rank` (with the batch axis): 8 for images
    (rank 4), 2 for signals (rank 3: as they are, and reversed)."""
    if rank == 4:
        return _image_transforms()
    reverse = lambda x: tf.reverse(x, [1])  # noqa: E731
    return [(lambda x: x, lambda y: y), (reverse, reverse)]


def self_ensemble(predict: Callable, x):
    """The mean of `predict` over the flips and rotations of `x`, each turned back.

    Args:
        predict: a callable from a batch to outputs of its spatial shape (a restoration model).
        x: float32 tensor (batch, height, width, channels) or (batch, length, channels).

    Returns:
        A tensor of `predict(x)`'s shape.

    Example:
    >>> x = tf.random.uniform((1, 8, 8, 1))
    >>> bool(tf.reduce_all(tf.abs(self_ensemble(lambda t: t * 2, x) - x * 2) < 1e-6))
    True
    """
    x = tf.convert_to_tensor(x, tf.float32)
    outputs = [inverse(predict(forward(x))) for forward, inverse in transforms(x.shape.rank)]
    return tf.add_n(outputs) / float(len(outputs))
