"""The kinds of entry of `dlimaging.registry`'s tables: what a family, a task, a source, an
optimizer, an augmentation option and a search algorithm each say. `dlimaging.registry` re-exports
them; its tables are the entries themselves.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from dlimaging._references import resolve


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family: a builder and the hypermodel that searches its arguments.

    Attributes:
        builder: reference to the builder function (plain values in, model out).
        hypermodel: reference to its Keras Tuner hypermodel class.
        default_space: reference to its default search space (a dict, as data).
        depth_key, width_key, layers_argument: the search keys for the number
            of layers and the width of each (`num_blocks`, `filters_i`), and
            the builder argument they become (`filters`).
        ranks: the input ranks (without the batch axis) the builder accepts.
        description: one line for `--help` and the docs.
        tasks: the tasks (of `TASKS`) the family can be built for; the first is its default.
        data_arguments: builder arguments that the training code takes from the dataset
            bundle's attribute of the same name (`max_val`), when the bundle has it.
    """

    builder: str
    hypermodel: str
    default_space: str
    depth_key: str
    width_key: str
    layers_argument: str
    ranks: tuple[int, ...]
    description: str
    tasks: tuple[str, ...] = ("classification", "binary", "multilabel", "regression")
    data_arguments: tuple[str, ...] = ()

    def load_builder(self):
        return resolve(self.builder)

    def load_hypermodel(self):
        return resolve(self.hypermodel)

    def load_default_space(self) -> dict[str, Any]:
        return resolve(self.default_space)


@dataclasses.dataclass(frozen=True)
class Task:
    """What a task means, for the builders, the data, the search and the export.

    Attributes:
        output_activation: activation of the output layer.
        units: where the number of output units comes from: "num_classes",
            "num_outputs", an int, or "channels" (one output per input channel at
            every position: an image or signal out, the input's shape).
        min_classes: the least `num_classes` accepted (when `units` is "num_classes").
        losses: the losses a user may pick, name → Keras loss (a name, or a reference
            `"module:attribute"`); the first is the default.
        metrics: (Keras metric class, or a reference `"module:Class"`, name, keyword
            arguments) compiled into the model.
        objective: the default search objective.
        directions: metric name → "min" or "max", for the objectives.
        label_dtype: dtype of the labels the data delivers.
        label_rank: 1 for one label per sample, 2 for a vector per sample, None
            for targets of the input's shape (of its spatial shape, for masks).
        labels: what the labels hold, which `load_dataset` checks: "classes"
            (integer class ids), "two classes" (0/1, one per sample), "0/1
            vectors" (one 0/1 per label), "numbers" (float targets), "clean
            signals" (the clean image or signal, of the input's shape) or "masks"
            (integer class ids, of the input's spatial shape).
        outputs: the served outputs, in order (see `dlimaging.serving.export`).
        class_names: whether the data's class names go with the model.
        description: one line for the docs.
        smoothed_loss: reference to the loss class used with `label_smoothing` > 0: it takes
            `label_smoothing=` and the labels as the data delivers them. None: the task has no
            classes to smooth, and `label_smoothing` is refused.
        input_ranks: metric or loss name → the input ranks (without the batch axis) it is
            defined for (SSIM: images only); a name not listed applies to every rank.
        builder_defaults: builder argument → its default for this task where it differs from
            the builder's own (regression: no dropout, no batch norm); used when the caller
            leaves the argument None.
    """

    output_activation: str
    units: str | int
    losses: Mapping[str, str]
    metrics: tuple[tuple[str, str, Mapping[str, Any]], ...]
    objective: str
    directions: Mapping[str, str]
    label_dtype: str
    label_rank: int | None
    labels: str
    outputs: tuple[str, ...]
    class_names: bool
    description: str
    min_classes: int = 1
    smoothed_loss: str | None = None
    input_ranks: Mapping[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)
    builder_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def applies(self, name: str, input_rank: int) -> bool:
        """Whether the metric or loss `name` is defined for inputs of this rank."""
        return input_rank in self.input_ranks.get(name, (input_rank,))

    @property
    def objectives(self) -> dict[str, str]:
        """Every objective a search may use, with its direction."""
        return {f"{prefix}{metric}": direction for metric, direction in self.directions.items()
                for prefix in ("val_", "")}

    def direction(self, objective: str) -> str:
        return self.objectives[objective]


@dataclasses.dataclass(frozen=True)
class Source:
    """A data source.

    Attributes:
        loader: reference to (or the function) `loader(source, **options)`, returning
            `(arrays, class_names, name)` or `(arrays, class_names, name, info)`:
            arrays holds `x`, `y` and optionally `x_test`, `y_test`; info may
            give "axis", "axis_name", "feature_names", "target_names" and
            "task" (the task the source means when none is declared).
        description: one line for `dlimaging datasets` and the docs.
        prefix, suffix, folder: how a source string that is not a name picks
            this entry: it starts with `prefix`, ends with `suffix`, or is a
            folder. A named source has none of these.
        options: the `load_dataset` arguments, beyond the common ones, that
            this source takes ("target", "features", "test"); others refuse them.
        clean: reference to `clean(source, **options)` returning
            `(items, (max_val, name))`, the source's samples as clean items
            (name, array) for a restoration task (labels "clean signals"), or
            None: the source is labelled data only, and restoration refuses it.
        masks: reference to `masks(source, **options)` returning `(images, masks,
            class_names, name)`, the source's images (height, width, channels) or
            signals (length, channels) and their integer masks, for a segmentation
            task (labels "masks"); or None: segmentation refuses the source.
        stream: True when `loader(source, prefix=, task=, image_size=, settings=, cache=)`
            streams: it returns the `DatasetBundle` itself, never holding the data (tfds).
    """

    loader: str
    description: str
    prefix: str | None = None
    suffix: str | None = None
    folder: bool = False
    options: tuple[str, ...] = ()
    clean: str | None = None
    masks: str | None = None
    stream: bool = False

    def load(self, source: str, **options):
        return resolve(self.loader)(source, **options)


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """An optimizer: its Keras class and the builder arguments that apply to it.

    An argument that is not listed is refused; an argument not given keeps
    Keras's default. `learning_rate` applies to every optimizer.
    """

    factory: str
    arguments: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """One augmentation option: the inputs it applies to and its layer factory.

    `factory(value, seed, **settings)` checks the value and returns a layer, or
    None when the value switches the option off. `settings` names the options
    that configure this option's layer rather than add one (`shift_mode` of
    `shift`); their own factory only checks their value.
    """

    inputs: tuple[str, ...]  # "image" (height, width, channels) and/or "signal" (length, channels)
    factory: str
    settings: tuple[str, ...] = ()
    moves: bool = False  # moves values to other positions: a target that is an image no longer lines up


@dataclasses.dataclass(frozen=True)
class Tuner:
    """A Keras Tuner search algorithm.

    Attributes:
        factory: reference to the Keras Tuner class.
        arguments: its budget arguments, each taken from a `[tuner]` setting
            (argument name → setting name), computed from the settings (a
            function of the `TunerSettings`), or a fixed value.
        oracle: reference to its Keras Tuner oracle class, for an algorithm that
            `[tuner] pruning` can stop trials of (`dlimaging.tuning.pruning`); None
            for one that prunes by its own schedule (Hyperband).
    """

    factory: str
    arguments: Mapping[str, Any]
    oracle: str | None = None
