"""What segmentation means for a model: per-pixel losses (cross-entropy, soft Dice, their sum),
class weights, and mean IoU and Dice over the classes.

The labels are integer masks of the input's spatial shape, `(batch, *spatial)`; the model's
output is one softmax over `num_classes` per pixel (or per point of a signal),
`(batch, *spatial, num_classes)`. Each loss returns one value per sample, the mean over its
pixels (cross-entropy) or over the classes (Dice).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np

from dlimaging.errors import InputError

BALANCED = "balanced"


def class_frequencies(masks: Sequence[np.ndarray] | np.ndarray, num_classes: int) -> list[float]:
    """The fraction of pixels of each class in `masks` (integer class ids).

    Example:
    >>> class_frequencies(np.array([[0, 0, 0, 1]]), 2)
    [0.75, 0.25]
    """
    counts = np.zeros(num_classes, "float64")
    for mask in (masks if isinstance(masks, (list, tuple)) else [masks]):
        counts += np.bincount(np.asarray(mask, "int64").reshape(-1), minlength=num_classes)[:num_classes]
    return [float(c) for c in counts / max(counts.sum(), 1.0)]


def check_class_weight(class_weight: Any, num_classes: int, frequencies: Sequence[float] | None) -> list[float] | None:
    """The weight of each class: None (all 1), "balanced" (inverse frequency, scaled so that the
    average pixel weighs 1; needs the data's `class_frequencies`), or one number >= 0 per class."""
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        if class_weight != BALANCED:
            raise InputError(f"`class_weight` must be 'balanced', None or one weight per class. "
                             f"Received: class_weight={class_weight!r}")
        if frequencies is None:
            raise InputError(
                "class_weight='balanced' needs the training masks' class frequencies (`class_frequencies`, which "
                "`dlimaging train` and `tune` take from the data; see `class_frequencies(masks, num_classes)`). "
                "Received: class_frequencies=None")
        present = [f for f in frequencies if f > 0]
        weights = [1.0 / (len(present) * f) if f > 0 else 0.0 for f in frequencies]
        return [float(w) for w in weights]
    if isinstance(class_weight, dict):
        class_weight = [class_weight.get(i, class_weight.get(str(i), 1.0)) for i in range(num_classes)]
    try:
        weights = [float(w) for w in class_weight]
    except (TypeError, ValueError):
        weights = None
    if weights is None or len(weights) != num_classes or not all(np.isfinite(w) and w >= 0 for w in weights) \
            or not any(weights):
        raise InputError(f"`class_weight` must be 'balanced', None or {num_classes} numbers >= 0 (one per class, "
                         f"not all 0). Received: class_weight={class_weight!r}")
    return weights


def _flatten(y_true, y_pred):
    """Labels as one-hot (batch, pixels, C) and probabilities as (batch, pixels, C)."""
    classes = keras.ops.shape(y_pred)[-1]
    y_pred = keras.ops.reshape(y_pred, (keras.ops.shape(y_pred)[0], -1, classes))
    labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (keras.ops.shape(y_pred)[0], -1))
    return keras.ops.one_hot(labels, classes, dtype=y_pred.dtype), y_pred


class _SegmentationLoss(keras.losses.Loss):
    """A per-pixel loss on integer masks, with optional class weights."""

    def __init__(self, class_weight=None, name=None, reduction="sum_over_batch_size", dtype=None, **_ignored):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.class_weight = None if class_weight is None else [float(w) for w in class_weight]

    def _weights(self, dtype):
        return None if self.class_weight is None else keras.ops.convert_to_tensor(self.class_weight, dtype)

    def crossentropy(self, one_hot, y_pred):
        probabilities = keras.ops.clip(y_pred, keras.config.epsilon(), 1.0)
        pixel = -keras.ops.sum(one_hot * keras.ops.log(probabilities), axis=-1)
        weights = self._weights(y_pred.dtype)
        if weights is not None:
            pixel = pixel * keras.ops.sum(one_hot * weights, axis=-1)
        return keras.ops.mean(pixel, axis=-1)

    def dice(self, one_hot, y_pred):
        """1 − the soft Dice, per sample: the mean over the classes (weighted, with weights)."""
        intersection = keras.ops.sum(one_hot * y_pred, axis=1)
        total = keras.ops.sum(one_hot + y_pred, axis=1)
        score = (2.0 * intersection + 1.0) / (total + 1.0)
        weights = self._weights(y_pred.dtype)
        if weights is None:
            return 1.0 - keras.ops.mean(score, axis=-1)
        return 1.0 - keras.ops.sum(score * weights, axis=-1) / keras.ops.sum(weights)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "class_weight": self.class_weight}


@keras.saving.register_keras_serializable(package="dlimaging")
class SegmentationCrossentropy(_SegmentationLoss):
    """Cross-entropy per pixel on integer masks, averaged over the pixels; with `class_weight`,
    each pixel's term is multiplied by the weight of its true class."""

    def __init__(self, class_weight=None, name="crossentropy", **kwargs):
        super().__init__(class_weight=class_weight, name=name, **kwargs)

    def call(self, y_true, y_pred):
        return self.crossentropy(*_flatten(y_true, y_pred))


@keras.saving.register_keras_serializable(package="dlimaging")
class DiceLoss(_SegmentationLoss):
    """1 − the soft Dice (Milletari et al. 2016), 2·Σpy / (Σp + Σy), of each class, averaged over
    the classes; insensitive to how many pixels each class has."""

    def __init__(self, class_weight=None, name="dice_loss", **kwargs):
        super().__init__(class_weight=class_weight, name=name, **kwargs)

    def call(self, y_true, y_pred):
        return self.dice(*_flatten(y_true, y_pred))


@keras.saving.register_keras_serializable(package="dlimaging")
class CrossentropyDiceLoss(_SegmentationLoss):
    """Cross-entropy plus the soft Dice loss."""

    def __init__(self, class_weight=None, name="crossentropy_dice", **kwargs):
        super().__init__(class_weight=class_weight, name=name, **kwargs)

    def call(self, y_true, y_pred):
        one_hot, y_pred = _flatten(y_true, y_pred)
        return self.crossentropy(one_hot, y_pred) + self.dice(one_hot, y_pred)


@keras.saving.register_keras_serializable(package="dlimaging")
class MeanIoU(keras.metrics.MeanIoU):
    """Mean intersection over union of the class map (the argmax of the probabilities) over the
    classes present in the labels or the prediction, accumulated over an epoch."""

    def __init__(self, num_classes: int = 2, name: str = "mean_iou", dtype=None, **_ignored):
        super().__init__(num_classes=int(num_classes), name=name, dtype=dtype, sparse_y_true=True,
                         sparse_y_pred=False)

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="dlimaging")
class MeanDice(MeanIoU):
    """Mean Dice (F1) of the class map over the classes present, accumulated over an epoch:
    2·TP / (2·TP + FP + FN) per class, from the same confusion matrix as `MeanIoU`."""

    def __init__(self, num_classes: int = 2, name: str = "dice", dtype=None, **kwargs):
        super().__init__(num_classes=num_classes, name=name, dtype=dtype, **kwargs)

    def result(self):
        matrix = keras.ops.cast(self.total_cm, "float32")
        true_positives = keras.ops.diagonal(matrix)
        total = keras.ops.sum(matrix, axis=0) + keras.ops.sum(matrix, axis=1)
        present = keras.ops.cast(total > 0, "float32")
        dice = keras.ops.where(total > 0, 2.0 * true_positives / keras.ops.maximum(total, 1.0), 0.0)
        return keras.ops.sum(dice) / keras.ops.maximum(keras.ops.sum(present), 1.0)


def dice_per_class(masks: np.ndarray, predicted: np.ndarray, num_classes: int) -> list[float | None]:
    """The Dice of each class between integer masks and predicted class maps (None for a class
    in neither).

    Example:
    >>> dice_per_class(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    [0.6666666666666666, 0.8]
    """
    masks, predicted = np.asarray(masks).reshape(-1), np.asarray(predicted).reshape(-1)
    scores = []
    for c in range(num_classes):
        truth, guess = masks == c, predicted == c
        total = int(truth.sum() + guess.sum())
        scores.append(2.0 * float(np.sum(truth & guess)) / total if total else None)
    return scores


def dice_of_each_class(model, dataset, class_names: Sequence[str]) -> dict[str, float]:
    """The Dice of each class of a segmentation model over a dataset of (images, masks) batches,
    accumulated batch by batch (memory holds one batch): `{"dice_<class>": value}`, a class found in
    neither the masks nor the predictions left out. Class names become keys with `_` for anything
    not a letter, digit or `_`, and the class index added where two would be the same."""
    import re

    count = len(class_names)
    both, total = np.zeros(count), np.zeros(count)
    for batch in dataset:
        masks = np.asarray(batch[1], "int64").reshape(-1)
        predicted = np.asarray(model(batch[0], training=False)).argmax(axis=-1).reshape(-1)
        both += np.bincount(masks[masks == predicted], minlength=count)[:count]
        total += np.bincount(masks, minlength=count)[:count] + np.bincount(predicted, minlength=count)[:count]
    keys = ["dice_" + re.sub(r"\W+", "_", str(name)) for name in class_names]
    keys = [key if keys.count(key) == 1 else f"{key}_{i}" for i, key in enumerate(keys)]  # "a+", "a-": a_0, a_1
    return {key: 2.0 * float(b) / float(t) for key, b, t in zip(keys, both, total) if t}


def iou_per_class(masks: np.ndarray, predicted: np.ndarray, num_classes: int) -> list[float | None]:
    """The IoU of each class between integer masks and predicted class maps (None for a class in neither)."""
    masks, predicted = np.asarray(masks).reshape(-1), np.asarray(predicted).reshape(-1)
    scores = []
    for c in range(num_classes):
        truth, guess = masks == c, predicted == c
        union = int(np.sum(truth | guess))
        scores.append(float(np.sum(truth & guess)) / union if union else None)
    return scores
