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
    variance, one per output, are set by `dlimaging.standardization.adapt` from the training targets."""
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


# ---------------------------------------------------------------- learning-rate schedules

# The exponential schedule ends the run at this fraction of `learning_rate`.
EXPONENTIAL_END = 0.01


@keras.saving.register_keras_serializable(package="dlimaging")
class Warmup(keras.optimizers.schedules.LearningRateSchedule):
    """A linear warm-up from 0 to `target` over `warmup_steps` steps, then `after(step - warmup_steps)`,
    or `target` itself when `after` is None.

    Built with `ops.where`, not a conditional: a `tf.cond` inside the traced train step would leave
    its branch functions registered in TensorFlow's context after the model is gone.
    """

    def __init__(self, target, warmup_steps, after=None):
        self.target = float(target)
        self.warmup_steps = int(warmup_steps)
        self.after = after

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup_steps = keras.ops.cast(self.warmup_steps, "float32")
        rising = self.target * step / warmup_steps
        later = self.target if self.after is None else self.after(keras.ops.maximum(step - warmup_steps, 0.0))
        return keras.ops.where(step < warmup_steps, rising, later)

    def get_config(self):
        after = None if self.after is None else keras.saving.serialize_keras_object(self.after)
        return {"target": self.target, "warmup_steps": self.warmup_steps, "after": after}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("after") is not None:
            config["after"] = keras.saving.deserialize_keras_object(config["after"])
        return cls(**config)


def _cosine(learning_rate, steps):
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps, alpha=0.0)


def _exponential(learning_rate, steps):
    return keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps=steps, decay_rate=EXPONENTIAL_END)


# `validation.SCHEDULES` name → the schedule over the steps after the warm-up (None: constant).
_SCHEDULES = {"constant": None, "cosine": _cosine, "exponential": _exponential}


def check_schedule(*, schedule, warmup_epochs, epochs, steps_per_epoch, optimizer) -> dict[str, Any]:
    """The schedule's settings, checked: a schedule other than a constant rate (or a warm-up)
    needs the length of the training, `epochs` and `steps_per_epoch`."""
    check_argument("schedule", schedule)
    warmup_epochs = check_argument("warmup_epochs", warmup_epochs)
    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if value is not None:
            check_argument(name, value)
    if schedule == "constant" and not warmup_epochs:
        return dict(schedule=schedule, warmup_steps=0, total_steps=None)
    what = f"schedule={schedule!r}" + (f" with warmup_epochs={warmup_epochs}" if warmup_epochs else "")
    if epochs is None or steps_per_epoch is None:
        raise InputError(
            f"{what} needs the length of the training: `epochs` and `steps_per_epoch` (`dlimaging train` "
            "and `dlimaging tune` pass them; calling the builder yourself, pass the values `fit` will run). "
            f"Received: epochs={epochs!r}, steps_per_epoch={steps_per_epoch!r}"
        )
    if warmup_epochs >= epochs:
        raise InputError(
            f"`warmup_epochs` must be smaller than `epochs`, leaving steps after the warm-up. "
            f"Received: warmup_epochs={warmup_epochs!r}, epochs={epochs!r}"
        )
    if isinstance(optimizer, keras.optimizers.Optimizer):
        raise InputError(
            f"{what} applies to an optimizer given by name; give the optimizer object its own "
            f"learning-rate schedule instead. Received: optimizer={type(optimizer).__name__}"
        )
    return dict(schedule=schedule, warmup_steps=warmup_epochs * steps_per_epoch, total_steps=epochs * steps_per_epoch)


def learning_rate_schedule(learning_rate, *, schedule, warmup_steps, total_steps):
    """The learning rate the optimizer takes: a float, or a schedule over `total_steps` steps whose
    first `warmup_steps` rise linearly from 0 to `learning_rate`. "cosine" then decays to 0 by the
    last step, "exponential" to `EXPONENTIAL_END`·`learning_rate`."""
    decay = _SCHEDULES[schedule]
    after = None if decay is None else decay(learning_rate, total_steps - warmup_steps)
    if not warmup_steps:
        return learning_rate if after is None else after
    return Warmup(learning_rate, warmup_steps, after)


def _make_optimizer(optimizer, learning_rate, settings: dict[str, Any], schedule: dict[str, Any]):
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    factory = registry.resolve(registry.OPTIMIZERS[optimizer].factory)
    return factory(learning_rate=learning_rate_schedule(learning_rate, **schedule), **settings)


def loss_and_metrics(task: str, loss: str | None = None, scaling=None, label_smoothing: float = 0.0):
    """The loss and metrics that go with a task (the task's default loss when `loss` is None);
    with a `target_scaling` layer, the loss is computed on standardised targets; with
    `label_smoothing`, the task's `smoothed_loss` is used."""
    entry = registry.task(task)
    name = entry.losses[loss or next(iter(entry.losses))]
    if label_smoothing:
        loss_fn = registry.resolve(entry.smoothed_loss)(label_smoothing=label_smoothing)
    elif scaling is not None:
        loss_fn = ScaledTargetLoss(name, scaling=scaling)
    else:
        loss_fn = getattr(keras.losses, name)() if name[:1].isupper() else name
    return loss_fn, [getattr(keras.metrics, cls)(name=metric, **kwargs) for cls, metric, kwargs in entry.metrics]


def check_training(*, task, loss, optimizer, learning_rate, beta_1, beta_2, epsilon, momentum,
                    weight_decay, schedule="constant", warmup_epochs=0, epochs=None, steps_per_epoch=None,
                    label_smoothing=0.0) -> dict[str, Any]:
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
                settings=_check_optimizer(optimizer, learning_rate, settings),
                schedule=check_schedule(schedule=schedule, warmup_epochs=warmup_epochs, epochs=epochs,
                                        steps_per_epoch=steps_per_epoch, optimizer=optimizer),
                label_smoothing=check_label_smoothing(task, label_smoothing))


def finish(model, *, compile, task, loss, optimizer, learning_rate, settings, schedule, label_smoothing):
    if compile:
        scaling = next((layer for layer in model.layers if layer.name == TARGET_SCALING), None)
        loss_fn, metrics = loss_and_metrics(task, loss, scaling, label_smoothing)
        model.compile(
            optimizer=_make_optimizer(optimizer, learning_rate, settings, schedule),
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
