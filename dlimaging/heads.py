"""What a task means for a model: its output units and layer, its loss and metrics, its optimizer.

The builders call these with plain values; the meaning of each task and
optimizer is read from `dlimaging.registry`.
"""

from __future__ import annotations

from typing import Any

import keras

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


def _make_optimizer(optimizer, learning_rate, settings: dict[str, Any]):
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    factory = registry.resolve(registry.OPTIMIZERS[optimizer].factory)
    return factory(learning_rate=learning_rate, **settings)


def loss_and_metrics(task: str, loss: str | None = None):
    """The loss and metrics that go with a task (the task's default loss when `loss` is None)."""
    entry = registry.task(task)
    name = entry.losses[loss or next(iter(entry.losses))]
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
        loss_fn, metrics = loss_and_metrics(task, loss)
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
    return model
