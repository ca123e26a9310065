"""Keras Tuner hypermodels over the builders: the only module where `hp.*` appears.

A search space is plain data: a dict from a name to a spec. A spec is

* a fixed value: `3`, `"relu"`, `[16, 32]`;
* `{"choice": [...]}`: one of the values (lists are allowed: `[[16, 32], [32, 64]]`);
* `{"min": a, "max": b}` with optional `"step"` and `"sampling"` ("linear",
  "log" or "reverse_log"): an int range when `a`, `b` (and `step`) are ints,
  a float range otherwise.

Either kind may hold a `"default"`: the value used when a model is built
from an `hp` that has not been sampled yet (`hypermodel.build(HyperParameters())`).

Names are the builders' argument names (`dropout`, `l2`, `learning_rate`,
`activation`, ...), plus `num_blocks` and `filters_1`, `filters_2`, ... for
CNN depth and width, `num_layers` and `units_1`, ... for MLP depth and width,
`augmentation` (a dict of specs for the augmentation options) and
`batch_size` and `epochs` (used by `fit`).

A learning-rate `schedule` other than "constant" (or a `warmup_epochs`) needs
the length of the training, which the model is built before `fit` could tell:
whoever makes the hypermodel calls `hypermodel.training_length(...)` first
(`dlimaging tune` does).
"""

from __future__ import annotations

import copy
import math
import weakref
from typing import Any, Mapping

import keras_tuner

from dlimaging import registry
from dlimaging.data.streaming import reading_files
from dlimaging.errors import InputError
from dlimaging.models.standardization import adapt
from dlimaging.tuning.spaces import (
    DEFAULT_AUGMENTATION_SPACE,
    DEFAULT_STANDARDIZE_SPACE,
)
from dlimaging.validation import check_input_shape, check_positive_int

FIT_KEYS = registry.FIT_KEYS


def default_space(family: str, input_shape, task: str | None = None) -> dict[str, Any]:
    """The default search space of a family for an input shape (and task), as data."""
    return registry.family(family).load_hypermodel().default_space(input_shape, task)


def _encode(value):
    """Keras Tuner's Choice holds scalars: lists travel as "16-32"."""
    if isinstance(value, (list, tuple)):
        return "-".join(str(v) for v in value)
    return value


def _decode(value, original_choices):
    for choice in original_choices:
        if _encode(choice) == value:
            return tuple(choice) if isinstance(choice, list) else choice
    return value


def sample(hp: keras_tuner.HyperParameters, name: str, spec: Any, **conditions):
    """Registers `spec` under `name` in `hp` and returns the current value."""
    default = spec.get("default") if isinstance(spec, Mapping) else None
    if isinstance(spec, Mapping) and "choice" in spec:
        choices = list(spec["choice"])
        if all(isinstance(c, bool) for c in choices):
            return hp.Boolean(name, default=bool(choices[0] if default is None else default), **conditions)
        encoded, default = [_encode(c) for c in choices], None if default is None else _encode(default)
        if {type(c) for c in encoded} == {int, float}:  # Keras Tuner's Choice holds one type: 0 and 0.5 as floats
            encoded, default = [float(c) for c in encoded], None if default is None else float(default)
        value = hp.Choice(name, encoded, default=default, **conditions)
        return _decode(value, choices)
    if isinstance(spec, Mapping) and "min" in spec:
        low, high = spec["min"], spec["max"]
        step, sampling = spec.get("step"), spec.get("sampling", "linear")
        integers = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) and (
            step is None or isinstance(step, int)
        )
        if integers:
            return hp.Int(name, low, high, step=step or 1, sampling=sampling, default=default, **conditions)
        default = None if default is None else float(default)
        return hp.Float(name, float(low), float(high), step=step, sampling=sampling, default=default, **conditions)
    if isinstance(spec, (list, tuple)):
        return tuple(spec)
    if spec is None:
        return None
    return hp.Fixed(name, spec, **conditions)


class BuilderHyperModel(keras_tuner.HyperModel):
    """Translates a Keras Tuner `hp` into the arguments of its family's builder.

    The family is the registry entry whose `hypermodel` is this class.
    """

    def __init__(
        self,
        input_shape,
        num_classes: int | None = None,
        *,
        task: str | None = None,
        num_outputs: int = 1,
        space: Mapping[str, Any] | None = None,
        fixed: Mapping[str, Any] | None = None,
        name: str | None = None,
        tunable: bool = True,
    ):
        super().__init__(name=name, tunable=tunable)
        self.family = registry.family_of_hypermodel(type(self))
        self.entry = registry.family(self.family)
        # The family's builder would refuse the shape only in `build`; refuse it here, where
        # the default space (and the CNN's depth limit) first reads it.
        self.input_shape = check_input_shape(input_shape, self.entry.ranks, type(self).__name__)
        self.num_classes = num_classes
        self.task = task = task or self.entry.tasks[0]  # None: the family's first task
        self.num_outputs = num_outputs
        self.space = dict(self.default_space(self.input_shape, task) if space is None else space)
        self.fixed = dict(fixed or {})
        # The training length a learning-rate schedule needs; see `training_length`.
        self.steps_per_epoch: int | None = None
        self.epochs: int | None = None
        self.samples: int | None = None
        count_key, width_key = self.entry.depth_key, self.entry.width_key
        if width_key in self.space and count_key not in self.space:
            raise InputError(
                f"`{width_key}` sets the width of each layer and needs `{count_key}` for the depth. "
                f"Received: space with {width_key} and no {count_key}"
            )

    @classmethod
    def default_space(cls, input_shape, task: str | None = None) -> dict[str, Any]:
        """The family's default space, with the augmentation options (and standardisation) for this
        input rank; without `label_smoothing` for a task that has no classes to smooth. `task`
        None is the family's first task."""
        entry = registry.family(registry.family_of_hypermodel(cls))
        space = copy.deepcopy(entry.load_default_space())
        if registry.task(task or entry.tasks[0]).smoothed_loss is None:
            space.pop("label_smoothing", None)
        kind = registry.AUGMENTATION_INPUTS.get(len(input_shape))
        if kind:
            space["augmentation"] = copy.deepcopy(DEFAULT_AUGMENTATION_SPACE[kind])
        if kind in DEFAULT_STANDARDIZE_SPACE:
            space["standardize"] = copy.deepcopy(DEFAULT_STANDARDIZE_SPACE[kind])
        return space

    def training_length(self, steps_per_epoch: int | None, epochs: int | None, samples: int | None = None):
        """Tells the hypermodel how long `fit` will train, for the learning-rate schedules it builds.

        A schedule is built with the model, before `fit`, so the training code calls this once,
        before the search, with what its `fit` will run.

        Args:
            steps_per_epoch: int. Batches per epoch of the training data as given to `fit`.
            epochs: int. The epochs `fit` runs, when the space does not search `epochs` (a space's
                `epochs` wins; under Hyperband, each trial's own `tuner/epochs` −
                `tuner/initial_epoch` wins).
            samples: int or None. Training samples: needed when the space searches `batch_size`,
                which sets the steps per epoch to ceil(samples / batch_size).

        Returns:
            The hypermodel.

        Example:
        >>> hypermodel = CNNHyperModel((40, 1), 10)
        >>> hypermodel = hypermodel.training_length(steps_per_epoch=63, epochs=30, samples=4000)
        """
        for name, value in (("steps_per_epoch", steps_per_epoch), ("epochs", epochs), ("samples", samples)):
            if value is not None:
                check_positive_int(name, value)
        self.steps_per_epoch, self.epochs, self.samples = steps_per_epoch, epochs, samples
        return self

    def _length(self, hp, args) -> dict[str, Any]:
        """`epochs` and `steps_per_epoch` for the builder, when the sampled schedule needs them."""
        if args.get("schedule", "constant") == "constant" and not args.get("warmup_epochs"):
            return {}
        if "tuner/epochs" in hp.values:  # Hyperband: this trial's fit runs from initial_epoch to epochs
            epochs = hp.values["tuner/epochs"] - hp.values.get("tuner/initial_epoch", 0)
        elif "epochs" in self.space:
            epochs = sample(hp, "epochs", self.space["epochs"])
        else:
            epochs = self.epochs
        steps = self.steps_per_epoch
        if "batch_size" in self.space:
            batch_size = sample(hp, "batch_size", self.space["batch_size"])
            steps = None if self.samples is None else math.ceil(self.samples / batch_size)
        if epochs is None or steps is None:
            searched = " and the space searches `batch_size`, so pass `samples` too" if "batch_size" in self.space else ""
            raise InputError(
                f"{type(self).__name__}: schedule={args.get('schedule', 'constant')!r} needs the length of the "
                f"training: call hypermodel.training_length(steps_per_epoch, epochs) before the search{searched} "
                "(`dlimaging tune` does). Received: "
                f"steps_per_epoch={self.steps_per_epoch!r}, epochs={self.epochs!r}, samples={self.samples!r}"
            )
        return {"epochs": epochs, "steps_per_epoch": steps}

    # -- translation from hp to builder arguments

    def _depth(self, hp):
        """`num_blocks` + `filters_<i>` (or `num_layers` + `units_<i>`) → a tuple, or None."""
        count_key, width_key = self.entry.depth_key, self.entry.width_key
        count_spec = self.space.get(count_key)
        if count_spec is None:
            return None
        width_spec = self.space.get(width_key, self.default_space(self.input_shape)[width_key])
        count_spec = self._within_depth_limit(count_spec)
        count = sample(hp, count_key, count_spec)
        prefix = width_key[:-2]
        widths = []
        for index in range(1, max(_spec_values(count_spec)) + 1):
            # Each width exists only while the depth reaches it.
            parents = [v for v in _spec_values(count_spec) if v >= index]
            with hp.conditional_scope(count_key, parents):
                value = sample(hp, f"{prefix}_{index}", width_spec)
            if index <= count:
                widths.append(value)
        return tuple(widths)

    def _within_depth_limit(self, count_spec):
        """A range of depths cut at `_depth_limit` (its default too), so every draw builds."""
        if isinstance(count_spec, Mapping) and "max" in count_spec:
            high = min(count_spec["max"], self._depth_limit())
            count_spec = dict(count_spec, max=high, min=min(count_spec["min"], high))
            if "default" in count_spec:
                count_spec["default"] = min(count_spec["default"], high)
        return count_spec

    def _depth_limit(self) -> int:
        return 100

    def arguments(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """The builder arguments for the current values of `hp`."""
        args: dict[str, Any] = {}
        for key, spec in self.space.items():
            if key in FIT_KEYS or key in (self.entry.depth_key, self.entry.width_key):
                continue
            if key == "augmentation":
                args["augmentation"] = {
                    option: sample(hp, f"augmentation_{option}", option_spec)
                    for option, option_spec in spec.items()
                }
                continue
            args[key] = sample(hp, key, spec)
        if isinstance(self.space.get("optimizer"), Mapping):  # several optimizers, each with its settings
            args = _applicable_optimizer_arguments(args)
        args.update(self.fixed)
        return args

    def build_arguments(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """`arguments`, plus the layer widths from the depth and width keys."""
        args = self.arguments(hp)
        widths = self._depth(hp)
        builder_key = self.entry.layers_argument
        if widths is not None and builder_key not in self.space:
            args[builder_key] = widths
        return args

    def build(self, hp: keras_tuner.HyperParameters):
        args = self.build_arguments(hp)
        args.update(self._length(hp, args))
        return self.entry.load_builder()(
            self.input_shape, self.num_classes, task=self.task, num_outputs=self.num_outputs, **args
        )

    def fit(self, hp, model, *args, **kwargs):
        with reading_files(StreamedFileError):  # a streamed file that breaks: the search stops, one line
            return self._fit(hp, model, *args, **kwargs)

    def _fit(self, hp, model, *args, **kwargs):
        # The standardisation and target scaling come from the training data `x` (a dataset
        # of (x, y) batches, or arrays x and y), before any step, as `training.train` does.
        train = args[0] if args else kwargs.get("x")
        if train is not None:
            targets = args[1] if len(args) > 1 else kwargs.get("y")
            adapt(model, train, targets)
        # Batch size and epochs are hyperparameters of fit, not of the model.
        if "batch_size" in self.space:
            batch_size = sample(hp, "batch_size", self.space["batch_size"])
            args = tuple(_rebatch(a, batch_size) for a in args)
            if "validation_data" in kwargs:
                kwargs["validation_data"] = _rebatch(kwargs["validation_data"], batch_size)
        if "epochs" in self.space and "tuner/epochs" not in hp.values:
            kwargs["epochs"] = sample(hp, "epochs", self.space["epochs"])
        return model.fit(*args, **kwargs)


class StreamedFileError(InputError, keras_tuner.errors.FatalError):
    """A streamed file that breaks mid-search (damaged, moved, deleted): the search stops on it,
    in one line, rather than failing trial after trial."""


def _applicable_optimizer_arguments(args: dict[str, Any]) -> dict[str, Any]:
    """Drops the optimizer settings that the sampled optimizer does not take (`momentum` when
    Adam is drawn, say): a space that searches several optimizers holds the settings of each.
    A space with one optimizer keeps them all, and the builder refuses those that do not apply."""
    optimizer = args.get("optimizer", registry.DEFAULT_OPTIMIZER)
    entry = registry.OPTIMIZERS.get(optimizer) if isinstance(optimizer, str) else None
    if entry is None:
        return args
    foreign = set(registry.optimizer_arguments()) - set(entry.arguments)
    return {key: value for key, value in args.items() if key not in foreign}


_SAMPLE_COUNTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _sample_count(data) -> int:
    """Samples in a batched dataset, counted once per dataset rather than once per trial."""
    if data not in _SAMPLE_COUNTS:
        _SAMPLE_COUNTS[data] = int(data.unbatch().reduce(0, lambda total, _: total + 1))
    return _SAMPLE_COUNTS[data]


def _spec_values(spec) -> list[int]:
    if isinstance(spec, Mapping) and "choice" in spec:
        return [int(v) for v in spec["choice"]]
    if isinstance(spec, Mapping) and "min" in spec:
        return list(range(int(spec["min"]), int(spec["max"]) + 1, int(spec.get("step") or 1)))
    return [int(spec)]


def _rebatch(data, batch_size):
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        count = _sample_count(data)
        # A known length lets Keras end each epoch without an "ran out of data" warning.
        batches = tf.data.experimental.assert_cardinality(math.ceil(count / batch_size))
        return data.unbatch().batch(batch_size).apply(batches).prefetch(tf.data.AUTOTUNE)
    return data


class CNNHyperModel(BuilderHyperModel):
    """Searches `build_cnn`'s arguments.

    Args:
        input_shape: tuple. Shape of one sample, channels last.
        num_classes: int or None. As in `build_cnn`.
        task: str. As in `build_cnn`. Defaults to "classification".
        num_outputs: int. Regression outputs. Defaults to 1.
        space: dict or None. The search space (see this module's docstring).
            Defaults to None (`DEFAULT_CNN_SPACE`, plus augmentation).
        fixed: dict or None. Builder arguments that are not searched.

    Example:
    >>> hypermodel = CNNHyperModel((8, 8, 1), 10)
    >>> hp = keras_tuner.HyperParameters()
    >>> hp.Fixed("dropout", 0.2)
    >>> model = hypermodel.build(hp)
    """

    @classmethod
    def default_space(cls, input_shape, task: str | None = None) -> dict[str, Any]:
        space = super().default_space(input_shape, task)
        if len(input_shape) == 4:
            space.pop("conv")  # no 3D depthwise convolution in Keras
        return space

    def _depth_limit(self) -> int:
        # Each block halves the spatial size with pooling: stop before it reaches 0.
        smallest = min(self.input_shape[:-1])
        return max(1, int(math.log2(smallest)))


class MLPHyperModel(BuilderHyperModel):
    """Searches `build_mlp`'s arguments; takes the same arguments as `CNNHyperModel`."""


class UNetHyperModel(BuilderHyperModel):
    """Searches `build_unet`'s arguments; takes the same arguments as `CNNHyperModel` (`num_classes`
    and `num_outputs` are not used: the output has the input's shape).

    Its default space (`DEFAULT_UNET_SPACE`) has no augmentation: the builder's augmentation acts on
    the input alone, and one that moves pixels would no longer line up with the clean target.

    Example:
    >>> hypermodel = UNetHyperModel((64, 64, 1), fixed={"max_val": 1.0})
    >>> model = hypermodel.build(keras_tuner.HyperParameters())
    """

    @classmethod
    def default_space(cls, input_shape, task: str | None = None) -> dict[str, Any]:
        space = super().default_space(input_shape, task)
        space.pop("augmentation", None)
        space.pop("standardize", None)  # the output is in the input's units: nothing to standardise
        losses = list(registry.task(task or registry.family(registry.family_of_hypermodel(cls)).tasks[0]).losses)
        if "loss" in space and not set(space["loss"]["choice"]) <= set(losses):  # segmentation's losses
            space["loss"] = {"choice": losses, "default": losses[0]}
        return space

    def _depth_limit(self) -> int:
        # Each level halves the size: 2^depth must not exceed the smallest side.
        return max(1, int(math.log2(min(self.input_shape[:-1]))))

    def build_arguments(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """`arguments`, plus the depth (cut at what the input allows) and the width, which are
        the builder's own arguments."""
        args = self.arguments(hp)
        for key in (self.entry.depth_key, self.entry.width_key):
            if key in self.space and key not in self.fixed:
                spec = self.space[key]
                args[key] = sample(hp, key, self._within_depth_limit(spec) if key == self.entry.depth_key else spec)
        return args

    def build(self, hp: keras_tuner.HyperParameters):
        args = self.build_arguments(hp)
        args.update(self._length(hp, args))
        classes = self.num_classes if registry.task(self.task).units == "num_classes" else None
        return self.entry.load_builder()(self.input_shape, classes, task=self.task, **args)


def hypermodel_for(family: str, input_shape, num_classes, *, task=None, space=None, fixed=None):
    """The hypermodel of a registered family."""
    cls = registry.family(family).load_hypermodel()
    return cls(input_shape, num_classes, task=task, space=space, fixed=fixed)
