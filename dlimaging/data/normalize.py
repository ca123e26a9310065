"""Intensities of scientific images: `normalize = "dtype" | "percentile"`.

`"dtype"` (the default) keeps what `dlimaging.data.images` reads: integer pixels scaled by their
type's maximum, floats as they are. `"percentile"` then maps each image's (or volume's) 1st and
99.8th percentiles, over all its pixels and channels, to 0 and 1 (CSBDeep's default,
`csbdeep.utils.normalize`); values beyond them stay beyond. `"percentile:LOW,HIGH"` sets both
bounds, e.g. `"percentile:0.5,99.9"`. For restoration, the input and its target are normalised
with the INPUT's percentiles, so the model learns the target in the input's units; `predict`
applies the same map to each input and maps the output back (`denormalize`).

>>> import numpy as np
>>> check_normalize("percentile:2,98")
(2.0, 98.0)
>>> x = np.arange(101, dtype="float32").reshape(1, 101, 1, 1)  # one image of the values 0..100
>>> y, (low, high) = normalize_array(x, (1.0, 99.8))  # 1 -> 0, 99.8 -> 1
>>> round(float(y.min()), 4), float(y[0, 1, 0, 0]), round(float(y.max()), 4)
(-0.0101, 0.0, 1.002)
>>> bool(np.allclose(denormalize(y, low, high), x))
True
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from dlimaging.data.normalize_options import (  # noqa: F401  public here
    DEFAULT_PERCENTILES,
    check_normalize,
    normalize_name,
)
from dlimaging.errors import InputError

EPSILON = 1e-7  # a flat image (high == low) becomes 0, not NaN

def check_rank(bounds, shape, source: str) -> None:
    """Percentile normalisation is for images and volumes (samples of rank 3 or 4 with channels)."""
    if bounds is not None and len(shape) not in (3, 4):
        raise InputError(f"`normalize` {normalize_name(bounds)!r} applies to images and volumes; `source` {source!r} "
                         f"holds samples of shape {tuple(shape)}. Received: normalize={normalize_name(bounds)!r}")


def normalize_array(x: np.ndarray, bounds, reference: np.ndarray | None = None):
    """A batch `x` (N, ...) with each sample mapped by its own percentiles, or by those of the same
    sample of `reference` (a restoration's input); returns (normalised float32, (low, high)), low
    and high of shape (N, 1, ..., 1), for `denormalize`."""
    x = np.asarray(x, "float32")
    reference = x if reference is None else np.asarray(reference, "float32")
    flat = reference.reshape(len(reference), -1)
    low, high = (np.percentile(flat, q, axis=1).astype("float32").reshape((-1,) + (1,) * (x.ndim - 1))
                 for q in bounds)
    return (x - low) / np.maximum(high - low, EPSILON), (low, high)


def normalize_item(item: np.ndarray, bounds, reference: np.ndarray | None = None) -> np.ndarray:
    """One image or volume (no batch axis), normalised as `normalize_array` does."""
    return normalize_array(item[None], bounds, None if reference is None else reference[None])[0][0]


def denormalize(y: np.ndarray, low, high) -> np.ndarray:
    """`normalize_array`'s map undone: a model's output back in its input's units."""
    return y * np.maximum(high - low, EPSILON) + low


def _percentile(ordered, q: float):
    """numpy's default (linear) percentile `q` of each row of sorted rows."""
    n = tf.shape(ordered)[1]
    position = q / 100.0 * tf.cast(n - 1, tf.float32)
    below = tf.cast(tf.floor(position), tf.int32)
    above = tf.minimum(below + 1, n - 1)
    fraction = position - tf.cast(below, tf.float32)
    return ordered[:, below] + fraction * (ordered[:, above] - ordered[:, below])


def normalize_tensor(x, bounds):
    """`normalize_array` inside `tf.data`: a batch of images or volumes, each by its own percentiles."""
    ordered = tf.sort(tf.reshape(tf.cast(x, tf.float32), (tf.shape(x)[0], -1)), axis=1)
    shape = tf.concat([tf.shape(x)[:1], tf.ones(tf.rank(x) - 1, tf.int32)], 0)
    low, high = (tf.reshape(_percentile(ordered, q), shape) for q in bounds)
    return (tf.cast(x, tf.float32) - low) / tf.maximum(high - low, EPSILON)


def normalize_bundle(bundle, bounds, source: str):
    """A bundle whose inputs are images or volumes, each sample normalised by its own percentiles
    in every split (batched `(x, y)` datasets and `arrays`'s `x_*`); targets are left as they are."""
    if bounds is None:
        return bundle
    check_rank(bounds, bundle.input_shape, source)

    def mapped(ds):
        return None if ds is None else ds.map(lambda x, y: (normalize_tensor(x, bounds), y),
                                              num_parallel_calls=tf.data.AUTOTUNE)

    bundle.train, bundle.validation, bundle.test = map(mapped, (bundle.train, bundle.validation, bundle.test))
    for key in [k for k in bundle.arrays if k.startswith("x_") and len(bundle.arrays[k])]:
        bundle.arrays[key] = normalize_array(bundle.arrays[key], bounds)[0]
    bundle.normalize, bundle.value_range = normalize_name(bounds), (0.0, 1.0)
    return bundle


def predict_normalized(predict, x: np.ndarray, normalize, key: str | None, *, back: bool):
    """`predict(x)[key]` (all of `predict(x)` when `key` is None) for a model trained with `normalize`
    (an export's metadata: "dtype" or "percentile:LOW,HIGH"): each sample of `x` mapped by its own
    percentiles first, and, when `back`, the output mapped back into the input's units (a restoration's)."""
    bounds = check_normalize(normalize)
    scaled, (low, high) = normalize_array(x, bounds) if bounds is not None else (x, (None, None))
    y = predict(scaled)
    y = y if key is None else y[key]
    return denormalize(y, low, high) if back and bounds is not None else y
