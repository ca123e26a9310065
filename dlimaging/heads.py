"""What a task means for a model: its output units and layer, its loss and metrics, its optimizer.

The builders call these with plain values; the meaning of each task and
optimizer is read from `dlimaging.registry`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.validation import check_argument, check_choice, check_number, check_positive_int


def output_units(task, num_classes, num_outputs) -> int:
    """Returns the number of output units for the task; refuses settings the task does not use."""
    entry = registry.task(task)
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


def _check_optimizer(optimizer, learning_rate, settings: dict[str, Any]) -> dict[str, Any]:
    """The optimizer arguments that were given, checked; those that do not apply are refused."""
    check_argument("learning_rate", learning_rate)
    given = {key: value for key, value in settings.items() if value is not None}
    if isinstance(optimizer, keras.optimizers.Optimizer):
        if given:
            key = next(iter(given))
            raise InputError(
                f"`{key}` applies to an optimizer given by name; set it on the optimizer object instead. "
                f"Received: {key}={given[key]!r} with optimizer={type(optimizer).__name__}"
            )
        return {}
    entry = registry.lookup(registry.OPTIMIZERS, "optimizer", optimizer)
    for key, value in given.items():
        if key not in entry.arguments:
            takers = [name for name, other in registry.OPTIMIZERS.items() if key in other.arguments]
            raise InputError(
                f"`{key}` does not apply to optimizer={optimizer!r} (it applies to {', '.join(takers)}). "
                f"Received: {key}={value!r}"
            )
        check_argument(key, value)
    return given


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
    variance, one per output, are set by `dlimaging.models.adapt` from the training targets."""
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


def _make_optimizer(optimizer, learning_rate, settings: dict[str, Any]):
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    factory = registry.resolve(registry.OPTIMIZERS[optimizer].factory)
    return factory(learning_rate=learning_rate, **settings)


def loss_and_metrics(task: str, loss: str | None = None, scaling=None):
    """The loss and metrics that go with a task (the task's default loss when `loss` is None);
    with a `target_scaling` layer, the loss is computed on standardised targets."""
    entry = registry.task(task)
    name = entry.losses[loss or next(iter(entry.losses))]
    if scaling is not None:
        loss_fn = ScaledTargetLoss(name, scaling=scaling)
    else:
        loss_fn = getattr(keras.losses, name)() if name[:1].isupper() else name
    return loss_fn, [getattr(keras.metrics, cls)(name=metric, **kwargs) for cls, metric, kwargs in entry.metrics]


def check_training(*, task, loss, optimizer, learning_rate, beta_1, beta_2, epsilon, momentum,
                    weight_decay) -> dict[str, Any]:
    """The settings `finish` compiles with, checked before anything is built."""
    losses = registry.task(task).losses
    if loss is not None:
        if len(losses) == 1:
            raise InputError(
                f"`loss` cannot be chosen for task={task!r}: its loss is {next(iter(losses))}. "
                f"Received: loss={loss!r}"
            )
        check_choice("loss", loss, losses)
    settings = dict(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, momentum=momentum, weight_decay=weight_decay)
    return dict(task=task, loss=loss, optimizer=optimizer, learning_rate=learning_rate,
                settings=_check_optimizer(optimizer, learning_rate, settings))


def finish(model, *, compile, task, loss, optimizer, learning_rate, settings):
    if compile:
        scaling = next((layer for layer in model.layers if layer.name == TARGET_SCALING), None)
        loss_fn, metrics = loss_and_metrics(task, loss, scaling)
        model.compile(
            optimizer=_make_optimizer(optimizer, learning_rate, settings),
            loss=loss_fn,
            metrics=metrics,
        )
        # Create the optimizer's slots now, eagerly. Created inside the first traced
        # train step, each slot is initialised through a tf.cond whose branch functions
        # stay registered in TensorFlow's context after the model is gone: about 5 MB
        # leaked per trained model, which adds up over a hyperparameter search.
        model.optimizer.build(model.trainable_variables)
        _build_metrics(model, task)
    return model


def _build_metrics(model, task: str) -> None:
    """Creates the compiled metrics' variables now, eagerly, for the same reason as the slots.

    AUC, F1 and R² size their variables from the first batch they see; built inside the
    traced train step, their initialisers leave tf.cond functions registered for good.
    One eager update on a zero sample builds them; the update is then reset.
    """
    import numpy as np

    entry = registry.task(task)
    x = np.zeros((1,) + tuple(int(d) for d in model.inputs[0].shape[1:]), "float32")
    y_pred = model(x, training=False)
    shape = (1,) if entry.label_rank == 1 else (1, int(y_pred.shape[-1]))
    model.compute_metrics(x, np.zeros(shape, entry.label_dtype), y_pred)
    model.reset_metrics()
