"""One compile path for every builder: the optimizer, its learning-rate schedule, the loss and metrics.

`check_compile` checks a builder's compile arguments (`COMPILE_ARGUMENTS`) before anything is
built; `compile_model` compiles the built model with them. The meaning of each task and optimizer
is read from `dlimaging.registry`.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

import keras
import numpy as np

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.models.heads import (
    TARGET_SCALING,
    ScaledTargetLoss,
    check_label_smoothing,
)
from dlimaging.models.metrics import MASKED_ERRORS, Noise2VoidLoss
from dlimaging.validation import check_argument, check_choice


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


def make_optimizer(optimizer, learning_rate, settings: dict[str, Any], schedule: dict[str, Any]):
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    factory = registry.resolve(registry.OPTIMIZERS[optimizer].factory)
    return factory(learning_rate=learning_rate_schedule(learning_rate, **schedule), **settings)


# The builder arguments that configure `compile()`: every builder takes them, under these names,
# and hands them to `check_compile` as they are.
COMPILE_ARGUMENTS = ("compile", "loss", "optimizer", "learning_rate", "beta_1", "beta_2", "epsilon", "momentum",
                     "weight_decay", "schedule", "warmup_epochs", "epochs", "steps_per_epoch", "label_smoothing")


def _data_settings(cls, **available) -> dict[str, Any]:
    """Those of `available` (the data's `max_val`, `num_classes`, `class_weight`) that `cls` takes
    and that were given: PSNR takes `max_val`, a segmentation metric `num_classes`."""
    parameters = inspect.signature(cls).parameters
    return {key: value for key, value in available.items() if key in parameters and value is not None}


def loss_and_metrics(task: str, loss: str | None = None, *, scaling=None, label_smoothing: float = 0.0,
                     max_val: float | None = None, input_rank: int | None = None, num_classes: int | None = None,
                     class_weight: list[float] | None = None, self_supervised: bool = False):
    """The loss and metrics of a task, from its entry in `dlimaging.registry.TASKS`.

    `loss` None is the task's default loss. With a `target_scaling` layer (`scaling`), the loss is
    computed on standardised targets; with `label_smoothing`, the task's `smoothed_loss` is used.
    Losses and metrics named by reference (`"module:Class"`, PSNR and SSIM) take the data's
    `max_val` (and segmentation's the number of classes and the class weights); metrics not defined
    for inputs of rank `input_rank` (SSIM of signals) are left out. `self_supervised` (Noise2Void):
    the loss is scored at the masked pixels only (`Noise2VoidLoss`), and there are no metrics: with
    no clean image, the masked loss is the only score.
    """
    if self_supervised:
        return Noise2VoidLoss(loss or "mse"), []
    entry = registry.task(task)
    reference = entry.losses[loss or next(iter(entry.losses))]
    if label_smoothing:
        loss_fn = registry.resolve(entry.smoothed_loss)(label_smoothing=label_smoothing)
    elif scaling is not None:
        loss_fn = ScaledTargetLoss(reference, scaling=scaling)
    elif ":" in reference:
        factory = registry.resolve(reference)
        loss_fn = factory(**_data_settings(factory, max_val=max_val, class_weight=class_weight))
    else:
        loss_fn = getattr(keras.losses, reference)() if reference[:1].isupper() else reference
    metrics = []
    for cls, name, kwargs in entry.metrics:
        if input_rank is not None and not entry.applies(name, input_rank):
            continue
        if ":" in cls:
            factory = registry.resolve(cls)
            metrics.append(factory(name=name, **kwargs, **_data_settings(factory, max_val=max_val,
                                                                          num_classes=num_classes)))
        else:
            metrics.append(getattr(keras.metrics, cls)(name=name, **kwargs))
    return loss_fn, metrics


def _check_loss(task: str, loss, input_rank: int | None):
    """`loss`, one of the task's losses that is defined for inputs of rank `input_rank` (SSIM: images)."""
    entry = registry.task(task)
    if loss is not None:
        if len(entry.losses) == 1:
            raise InputError(
                f"`loss` cannot be chosen for task={task!r}: its loss is {next(iter(entry.losses))}. "
                f"Received: loss={loss!r}"
            )
        check_choice("loss", loss, entry.losses)
    name = loss or next(iter(entry.losses))
    if input_rank is not None and not entry.applies(name, input_rank):
        usable = [key for key in entry.losses if entry.applies(key, input_rank)]
        ranks = " or ".join(f"{r - 1}D" for r in entry.input_ranks[name])
        raise InputError(
            f"loss={name!r} is defined on {ranks} inputs, not on {input_rank - 1}D inputs: use one of "
            f"{', '.join(map(repr, usable))}. Received: loss={name!r}"
        )
    return loss


def check_compile(task: str, arguments: Mapping[str, Any], *, input_rank: int | None = None,
                  max_val: float | None = None, num_classes: int | None = None,
                  class_weight: list[float] | None = None) -> dict[str, Any]:
    """The settings `compile_model` compiles with, checked before anything is built.

    Args:
        task: str. A task of `dlimaging.registry.TASKS`.
        arguments: the builder's values of `COMPILE_ARGUMENTS` (a builder passes `locals()`);
            those missing take the defaults of `build_cnn`.
        input_rank: int or None. The input's rank without the batch axis, for losses and
            metrics defined on some ranks only.
        max_val: float or None. The data's value range, for PSNR and SSIM.
        num_classes, class_weight: int and list of floats, or None. Segmentation: the number of
            classes (for mean IoU and Dice) and the checked weight of each class (for the loss).
    """
    values = {key: arguments.get(key) for key in COMPILE_ARGUMENTS}
    values["schedule"] = values["schedule"] or "constant"
    values["warmup_epochs"] = values["warmup_epochs"] or 0
    values["label_smoothing"] = values["label_smoothing"] or 0.0
    optimizer, learning_rate = values["optimizer"], values["learning_rate"]
    settings = {key: values[key] for key in ("beta_1", "beta_2", "epsilon", "momentum", "weight_decay")}
    self_supervised = bool(arguments.get("self_supervised"))
    if self_supervised and registry.task(task).labels != registry.CLEAN:
        raise InputError(f"self_supervised=True (Noise2Void) applies to restoration, not to task={task!r}. "
                         "Received: self_supervised=True")
    if self_supervised and values["loss"] not in (None, *MASKED_ERRORS):
        raise InputError(f"Noise2Void (self_supervised=True) scores the masked pixels with {' or '.join(MASKED_ERRORS)}. "
                         f"Received: loss={values['loss']!r}")
    return dict(
        compile=values["compile"], task=task, loss=_check_loss(task, values["loss"], input_rank),
        self_supervised=self_supervised,
        optimizer=optimizer, learning_rate=learning_rate, input_rank=input_rank, max_val=max_val,
        num_classes=num_classes, class_weight=class_weight,
        settings=_check_optimizer(optimizer, learning_rate, settings),
        schedule=check_schedule(schedule=values["schedule"], warmup_epochs=values["warmup_epochs"],
                                epochs=values["epochs"], steps_per_epoch=values["steps_per_epoch"],
                                optimizer=optimizer),
        label_smoothing=check_label_smoothing(task, values["label_smoothing"]),
    )


def compile_model(model, settings: Mapping[str, Any]):
    """Records the task on the model (`model.dlimaging_task`, which export reads) and, unless
    `settings["compile"]` is False, compiles it with the settings of `check_compile`."""
    model.dlimaging_task = settings["task"]
    if not settings["compile"]:
        return model
    task = settings["task"]
    scaling = next((layer for layer in model.layers if layer.name == TARGET_SCALING), None)
    loss_fn, metrics = loss_and_metrics(task, settings["loss"], scaling=scaling,
                                        label_smoothing=settings["label_smoothing"], max_val=settings["max_val"],
                                        input_rank=settings["input_rank"], num_classes=settings.get("num_classes"),
                                        class_weight=settings.get("class_weight"),
                                        self_supervised=settings.get("self_supervised", False))
    optimizer = make_optimizer(settings["optimizer"], settings["learning_rate"], settings["settings"],
                               settings["schedule"])
    model.compile(optimizer=optimizer, loss=loss_fn, metrics=metrics)
    # What an ensemble of such models compiles with (`dlimaging.models.ensemble`), as a function: a
    # dict or list of metrics set on a Keras model would be tracked as the model's own metrics.
    model.dlimaging_compile_arguments = _compile_arguments(loss_fn, metrics)
    # Create the optimizer's slots now, eagerly. Created inside the first traced
    # train step, each slot is initialised through a tf.cond whose branch functions
    # stay registered in TensorFlow's context after the model is gone: about 5 MB
    # leaked per trained model, which adds up over a hyperparameter search.
    model.optimizer.build(model.trainable_variables)
    build_metrics(model, task)
    return model


def _compile_arguments(loss_fn, metrics):
    """A function giving the loss and new copies of the metrics that a model was compiled with."""
    return lambda: {"loss": loss_fn, "metrics": [_fresh(m) for m in metrics or []]}


def _fresh(metric):
    """A new metric object with `metric`'s configuration (no state shared); a string stays as it is."""
    if isinstance(metric, str):
        return metric
    try:
        return type(metric).from_config(metric.get_config())
    except Exception:  # noqa: BLE001  a metric that cannot be copied: the same object, harmless in an ensemble
        return metric


def build_metrics(model, task: str) -> None:
    """Creates the compiled metrics' variables now, eagerly, for the same reason as the slots.

    AUC, F1 and R² size their variables from the first batch they see; built inside the
    traced train step, their initialisers leave tf.cond functions registered for good.
    One eager update on a zero sample builds them; the update is then reset.
    """
    entry = registry.task(task)
    x = np.zeros((1,) + tuple(int(d) for d in model.inputs[0].shape[1:]), "float32")
    y_pred = model(x, training=False)
    shape = (1,) if entry.label_rank == 1 else tuple(int(d) for d in y_pred.shape)
    if entry.labels == registry.MASKS:  # class ids at each pixel: the output's shape without the classes
        shape = shape[:-1]
    model.compute_metrics(x, np.zeros(shape, entry.label_dtype), y_pred)
    model.reset_metrics()
