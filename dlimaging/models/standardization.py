"""Adapting a model's standardisation on the training split: `adapt`.

The builders' `standardize` and `scale_targets` options put `Normalization` layers in the
model; `adapt` sets their means and variances from the training data only, so that the model,
and its export, take raw values and return real units.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from dlimaging.errors import InputError
from dlimaging.models.blocks import STANDARDIZE
from dlimaging.models.heads import TARGET_SCALING

_FLOAT32_MAX = float(np.finfo("float32").max)
_CHUNK = 4096  # samples converted to float64 at a time


def _what(layer) -> str:
    return "targets" if layer.name == TARGET_SCALING else "inputs"


def _statistics(layer, batches) -> tuple[np.ndarray, np.ndarray]:
    """The mean and variance over every axis the layer does not keep, in float64, batch by batch
    (Chan's update): float32 sums of squares overflow near 1.8e19 though the values fit."""
    count, mean, m2 = 0, 0.0, 0.0
    for batch in batches:
        batch = np.asarray(batch, "float64")
        if not np.isfinite(batch).all():
            raise InputError(f"adapt: the training {_what(layer)} hold NaN or infinite values; "
                             f"layer {layer.name!r} cannot be standardised on them.")
        largest = float(np.max(np.abs(batch))) if batch.size else 0.0
        if largest > _FLOAT32_MAX:
            raise InputError(f"adapt: the training {_what(layer)} hold values up to {largest:.4g}, beyond float32's "
                             f"range (±{_FLOAT32_MAX:.4g}); rescale them (other units).")
        keep = {d % batch.ndim for d in layer.axis}
        reduce = tuple(d for d in range(batch.ndim) if d not in keep)
        size = int(np.prod([batch.shape[d] for d in reduce]))
        if size == 0:
            continue
        batch_mean = batch.mean(axis=reduce)
        batch_m2 = np.square(batch - batch.mean(axis=reduce, keepdims=True)).sum(axis=reduce)
        delta, total = batch_mean - mean, count + size
        mean = mean + delta * (size / total)
        m2 = m2 + batch_m2 + np.square(delta) * (count * size / total)
        count = total
    if count == 0:
        raise InputError(f"adapt: the training {_what(layer)} are empty (0 samples); layer {layer.name!r} needs "
                         "at least one sample to be standardised on.")
    return np.asarray(mean), np.asarray(m2 / count)


def _set_statistics(layer, batches) -> None:
    """Sets the layer's mean and variance from the training values. A feature (or target) that
    never varies gets variance 1: standardising it then subtracts its mean and divides by 1,
    rather than multiplying any later change by 1/√ε. A feature whose standard deviation is below
    1e-6 of its magnitude counts as constant: in float32 it is."""
    mean, variance = _statistics(layer, batches)
    largest = float(np.max(variance))
    if largest > _FLOAT32_MAX:
        raise InputError(
            f"adapt: the training {_what(layer)} spread too widely for float32: their variance reaches "
            f"{largest:.4g} (standard deviation {np.sqrt(largest):.4g}), beyond float32's range "
            f"(±{_FLOAT32_MAX:.4g}); layer {layer.name!r} cannot hold it. Rescale them (other units)."
        )
    constant = variance <= np.square(1e-6 * np.maximum(np.abs(mean), 1.0))
    layer.adapt_mean.assign(mean.astype("float32").reshape(layer.adapt_mean.shape))
    layer.adapt_variance.assign(np.where(constant, 1.0, variance).astype("float32").reshape(layer.adapt_variance.shape))
    layer.finalize_state()


def _split(train, y):
    """(inputs, targets) as iterables of numpy batches, from either form `adapt` takes."""
    import tensorflow as tf

    if isinstance(train, tf.data.Dataset):
        if y is not None:
            raise InputError("adapt: `y` goes with array inputs; a dataset already holds (x, y) batches. "
                             f"Received: y of type {type(y).__name__}")

        def targets(x, y, *rest):
            y = tf.cast(y, "float64")
            return y[:, None] if y.shape.rank == 1 else y

        def batches(ds):  # a generator: nothing runs unless the layer is there to adapt
            yield from ds.as_numpy_iterator()

        return batches(train.map(lambda x, *rest: x)), batches(train.map(targets))
    inputs = np.asarray(train)
    chunks = lambda a: (a[i:i + _CHUNK] for i in range(0, max(len(a), 1), _CHUNK))  # noqa: E731
    if y is None:
        return chunks(inputs), None
    y = np.asarray(y)
    y = y[:, None] if y.ndim == 1 else y
    if y.ndim == 0 or len(y) != len(inputs):
        raise InputError(f"adapt: `y` must have one row per sample of the inputs ({len(inputs)}). "
                         f"Received: y of shape {y.shape}")
    return chunks(inputs), chunks(y)


def adapt(model: keras.Model, train: Any, y: Any = None) -> keras.Model:
    """Sets the model's standardisation from the training split; call it before `fit`.

    Adapts the "standardize" layer (`standardize="global"` or `"per_feature"`) on the training
    inputs and the "target_scaling" layer (`scale_targets`) on the training targets. Use the
    training split only: the validation and test splits are then standardised with statistics
    they did not contribute to, as new data will be. `dlimaging.training.train` and the
    hypermodels' `fit` (so `tune`) call it. The means and variances are computed in float64
    (targets near 1e21 are fine as long as their variance fits in float32). A constant feature
    or target gets variance 1, so nothing is divided by zero. Empty inputs, `y` with another
    number of rows than the inputs, and NaN, infinite or out-of-float32 values are refused.
    A model without these layers is returned unchanged.

    Args:
        model: keras.Model. A model from `build_mlp` or `build_cnn`.
        train: a `tf.data.Dataset` of (x, y) batches, or an array of inputs.
        y: array or None. The targets, when `train` is an array. Defaults to None
            (then the target scaling, if any, is left as it is).

    Returns:
        The model, adapted in place.

    Example:
    >>> model = build_mlp((3,), task="regression", standardize="per_feature")
    >>> x = np.random.default_rng(0).normal(5, 2, (64, 3))
    >>> adapt(model, x, 1000 + 500 * x[:, :1])
    """
    layers = {layer.name: layer for layer in model.layers if layer.name in (STANDARDIZE, TARGET_SCALING)}
    if not layers:
        return model
    inputs, targets = _split(train, y)
    if STANDARDIZE in layers:
        _set_statistics(layers[STANDARDIZE], inputs)
    if TARGET_SCALING in layers and targets is not None:
        _set_statistics(layers[TARGET_SCALING], targets)
    # The statistics are constants inside traced functions: trace again with the new ones.
    for attribute in ("train_function", "test_function", "predict_function"):
        if getattr(model, attribute, None) is not None:
            setattr(model, attribute, None)
    return model
