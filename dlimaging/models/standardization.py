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


def _constant_to_unit_variance(layer) -> None:
    """A feature (or target) that never varies gets variance 1: standardising it then subtracts
    its mean and divides by 1, rather than multiplying any later change by 1/√ε. A feature whose
    standard deviation is below 1e-6 of its magnitude counts as constant: in float32 it is."""
    mean = np.asarray(layer.adapt_mean, "float64")
    variance = np.asarray(layer.adapt_variance, "float64")
    if not (np.isfinite(mean).all() and np.isfinite(variance).all()):
        what = "targets" if layer.name == TARGET_SCALING else "inputs"
        raise InputError(f"adapt: the training {what} hold NaN or infinite values; "
                         f"layer {layer.name!r} cannot be standardised on them.")
    constant = variance <= np.square(1e-6 * np.maximum(np.abs(mean), 1.0))
    layer.adapt_variance.assign(np.where(constant, 1.0, variance).astype("float32"))
    layer.finalize_state()


def _split(train, y):
    """(inputs, targets) as a dataset of batches or arrays, from either form `adapt` takes."""
    import tensorflow as tf

    if isinstance(train, tf.data.Dataset):
        if y is not None:
            raise InputError("adapt: `y` goes with array inputs; a dataset already holds (x, y) batches. "
                             f"Received: y of type {type(y).__name__}")
        inputs = train.map(lambda x, *rest: x)

        def targets(x, y, *rest):
            y = tf.cast(y, "float32")
            return y[:, None] if y.shape.rank == 1 else y

        return inputs, train.map(targets)
    inputs = np.asarray(train, "float32")
    if y is None:
        return inputs, None
    y = np.asarray(y, "float32")
    return inputs, (y[:, None] if y.ndim == 1 else y)


def adapt(model: keras.Model, train: Any, y: Any = None) -> keras.Model:
    """Sets the model's standardisation from the training split; call it before `fit`.

    Adapts the "standardize" layer (`standardize="global"` or `"per_feature"`) on the training
    inputs and the "target_scaling" layer (`scale_targets`) on the training targets. Use the
    training split only: the validation and test splits are then standardised with statistics
    they did not contribute to, as new data will be. `dlimaging.training.train` and the
    hypermodels' `fit` (so `tune`) call it. A constant feature or target gets variance 1, so
    nothing is divided by zero. A model without these layers is returned unchanged.

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
        layers[STANDARDIZE].adapt(inputs)
        _constant_to_unit_variance(layers[STANDARDIZE])
    if TARGET_SCALING in layers and targets is not None:
        layers[TARGET_SCALING].adapt(targets)
        _constant_to_unit_variance(layers[TARGET_SCALING])
    # The statistics are constants inside traced functions: trace again with the new ones.
    for attribute in ("train_function", "test_function", "predict_function"):
        if getattr(model, attribute, None) is not None:
            setattr(model, attribute, None)
    return model
