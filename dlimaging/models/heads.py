"""What a task means for a model's output: its units, its output layer, target scaling and losses.

The builders call these with plain values; the meaning of each task is read from
`dlimaging.registry`. Compiling (optimizers, schedules, metrics) is `dlimaging.models.compile`'s.
"""

from __future__ import annotations

import keras
import numpy as np

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.validation import check_argument, check_number, check_positive_int


def output_units(task, num_classes, num_outputs) -> int:
    """Returns the number of output units for the task; refuses settings the task does not use."""
    entry = registry.task(task)
    if not isinstance(entry.units, int) and entry.units not in ("num_classes", "num_outputs"):
        takers = [name for name, family in registry.FAMILIES.items() if task in family.tasks]
        raise InputError(
            f"task={task!r} is not built by this builder (its output has the input's shape): use model "
            f"{' or '.join(map(repr, takers))}. Received: task={task!r}"
        )
    if entry.units == "num_classes":
        if num_classes is None:
            raise InputError(
                f"`num_classes` is required for task={task!r} and must be >= {entry.min_classes}. "
                "Received: num_classes=None"
            )
        units = int(check_number("num_classes", num_classes, low=entry.min_classes, integer=True))
    elif entry.units == "num_outputs":
        if num_classes is not None:
            raise InputError(
                f"task={task!r} has no classes: set `num_outputs`, not `num_classes`. "
                f"Received: num_classes={num_classes!r}"
            )
        units = check_positive_int("num_outputs", num_outputs)
    else:
        units = entry.units
        if num_classes is not None and (isinstance(num_classes, bool) or num_classes not in (1, 2)):
            raise InputError(
                f"task={task!r} has {units} output unit(s); `num_classes` must be None, 1 or 2. "
                f"Received: num_classes={num_classes!r}"
            )
    if entry.units != "num_outputs" and num_outputs != 1:
        raise InputError(
            f"`num_outputs` is for tasks with numeric outputs, not task={task!r} "
            f"(its outputs follow `num_classes`). Received: num_outputs={num_outputs!r}"
        )
    return units


def output_layer(x, task, units, regularizer):
    activation = registry.task(task).output_activation
    return keras.layers.Dense(
        units, activation=activation, kernel_regularizer=regularizer, name="output"
    )(x)


# The layer that turns the network's standardised outputs back into real units.
TARGET_SCALING = "target_scaling"


def has_numeric_outputs(task) -> bool:
    """Whether the task's outputs are numbers (its units come from `num_outputs`)."""
    return registry.task(task).units == "num_outputs"


def check_scale_targets(task, scale_targets) -> bool:
    """Whether targets are scaled: None means "when the task has numeric outputs"; an explicit
    True for a task without them is refused, like `num_outputs`."""
    if scale_targets is None:
        return has_numeric_outputs(task)
    check_argument("scale_targets", scale_targets)
    if scale_targets and not has_numeric_outputs(task):
        raise InputError(
            f"`scale_targets` is for tasks with numeric outputs, not task={task!r} "
            f"(its outputs are probabilities). Received: scale_targets={scale_targets!r}"
        )
    return scale_targets


def target_scaling_layer(outputs):
    """`Normalization(invert=True)` after the output layer: the network learns standardised
    targets, and the model (and so the exported model) returns real units. Its mean and
    variance, one per output, are set by `dlimaging.models.standardization.adapt` from the training targets."""
    return keras.layers.Normalization(axis=-1, invert=True, name=TARGET_SCALING)(outputs)


def _loss_function(name: str):
    """The registry's loss name as a function that returns one loss per sample (unreduced)."""
    if name[:1].isupper():  # a class, such as Huber
        return getattr(keras.losses, name)().call
    return keras.losses.get(name)


@keras.saving.register_keras_serializable(package="dlimaging")
class ScaledTargetLoss(keras.losses.Loss):
    """The task's loss on standardised targets: `loss((y - mean) / std, (ŷ - mean) / std)`.

    A model with a `target_scaling` layer outputs real units, so its metrics (RMSE, MAE) are in
    real units; the loss is computed on the scale the network learns, so each output weighs the
    same whatever its units, and the gradients do not grow with the targets' size.

    Args:
        loss: str. A loss name of `dlimaging.registry.TASKS` (`"mean_squared_error"`, `"Huber"`).
        scaling: the model's `target_scaling` layer, read at each call; or None.
        mean, variance: lists. Fixed statistics, used when `scaling` is None (a reloaded model).
    """

    def __init__(self, loss="mean_squared_error", scaling=None, mean=None, variance=None,
                 name=None, reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name or f"scaled_{loss}", reduction=reduction, dtype=dtype)
        self.loss = loss
        self.scaling = scaling
        self.fixed = None if mean is None else (np.asarray(mean, "float32"), np.asarray(variance, "float32"))
        self._fn = _loss_function(loss)

    def _statistics(self):
        if self.scaling is not None and getattr(self.scaling, "mean", None) is not None:
            return self.scaling.mean, self.scaling.variance
        return self.fixed

    def call(self, y_true, y_pred):
        statistics = self._statistics()
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        if statistics is not None:
            mean, variance = (keras.ops.cast(keras.ops.reshape(v, (-1,)), y_pred.dtype) for v in statistics)
            std = keras.ops.maximum(keras.ops.sqrt(variance), keras.config.epsilon())
            y_true, y_pred = (y_true - mean) / std, (y_pred - mean) / std
        return self._fn(y_true, y_pred)

    def get_config(self):
        config = {"loss": self.loss, "name": self.name, "reduction": self.reduction}
        statistics = self._statistics()
        if statistics is not None:
            config["mean"], config["variance"] = (np.asarray(v).reshape(-1).tolist() for v in statistics)
        return config


@keras.saving.register_keras_serializable(package="dlimaging")
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy with label smoothing, on integer class labels.

    Keras 3's `SparseCategoricalCrossentropy` has no `label_smoothing`: this loss one-hots the
    labels and calls `categorical_crossentropy`, whose target for class c is then
    `(1 - label_smoothing)·[c = label] + label_smoothing / C` over the C classes.

    Args:
        label_smoothing: float in [0, 1). Defaults to 0.0.
    """

    def __init__(self, label_smoothing=0.0, name="smoothed_sparse_categorical_crossentropy",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), keras.ops.shape(y_pred)[:-1])
        one_hot = keras.ops.one_hot(labels, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {"label_smoothing": self.label_smoothing, "name": self.name, "reduction": self.reduction}


def check_label_smoothing(task, label_smoothing) -> float:
    """`label_smoothing`, refused (when not 0) for a task whose registry entry has no `smoothed_loss`."""
    check_argument("label_smoothing", label_smoothing)
    if label_smoothing and registry.task(task).smoothed_loss is None:
        raise InputError(
            f"`label_smoothing` is for tasks with classes, not task={task!r} (its outputs are numbers). "
            f"Received: label_smoothing={label_smoothing!r}"
        )
    return float(label_smoothing)
