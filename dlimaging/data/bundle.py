"""The dataset bundle, what `load_dataset` returns, and how a source string finds its registry entry.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np
import tensorflow as tf

from dlimaging import registry
from dlimaging.data.corruption import describe
from dlimaging.errors import InputError


@dataclasses.dataclass
class DatasetBundle:
    """A dataset ready for training: batched `tf.data` splits and what describes them.

    Attributes:
        train, validation, test: `tf.data.Dataset`s of `(x, y)` batches; train
            is shuffled each epoch; all are prefetched, and cached as `cache` says.
        input_shape: shape of one sample, without the batch axis.
        num_classes: number of classes (of labels, for multilabel; 2 for
            binary), or None for a task with numeric targets (regression).
        class_names: the class (or label) names, in label order; [] when the
            task has none.
        task: a task of `dlimaging.registry.TASKS`; the labels follow its
            `label_dtype` and `label_rank`.
        name: the source's name.
        num_train, num_validation, num_test: the size of each split.
        value_range: (low, high) of the input values.
        arrays: the splits as numpy arrays (`x_train`, `y_train`, ...) for the
            in-memory sources; empty for a class folder, which is streamed.
        target_names: the names of the targets (regression) or of the labels
            (multilabel), in column order; None for other tasks.
        num_outputs: the number of numeric targets (regression); 1 otherwise.
        axis: the signal's axis, one float per point (a CSV file's numeric
            header, the generator's wavenumbers), or None.
        axis_name: what `axis` measures, e.g. "wavenumber (cm⁻¹)", or None.
        feature_names: a CSV file's feature columns, in order; None otherwise.
        max_val: the data's white for PSNR and SSIM (1.0 for images scaled to
            [0, 1]; the clean signals' range for spectra), for a restoration
            task; None otherwise.
        corruption: the checked corruption steps of a restoration task
            (`dlimaging.data.corruption.check_corruption`); None otherwise.
        items: the names of the whole images (or signals) in each split
            ("train", "validation", "test") of a restoration or segmentation task,
            or the files of a class folder (relative to it); None otherwise.
            `train` and `tune` write them to `splits.json`.
        self_supervised: True for Noise2Void (`target="self"`): the targets are the noisy
            inputs with a mask channel (`dlimaging.data.n2v`), and no clean image is read.
        cache: what is kept of the decoded data ("memory", "disk" or "none"; see
            `load_dataset`'s `cache`); None for sources that build their own pipeline.
        cache_note: one line saying which cache was chosen and why, or None.
        class_frequencies: the fraction of the training pixels in each class, for a
            segmentation task (`class_weight="balanced"` uses it); None otherwise.
        normalize: how the inputs' intensities were mapped: "dtype" (as read) or
            "percentile:LOW,HIGH" (`dlimaging.data.normalize`); exports record it.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset | None
    input_shape: tuple[int, ...]
    num_classes: int | None
    class_names: list[str]
    task: str
    name: str
    num_train: int
    num_validation: int
    num_test: int
    value_range: tuple[float, float]
    arrays: dict[str, np.ndarray] = dataclasses.field(repr=False, default_factory=dict)
    target_names: list[str] | None = None
    num_outputs: int = 1
    axis: list[float] | None = dataclasses.field(repr=False, default=None)
    axis_name: str | None = None
    feature_names: list[str] | None = dataclasses.field(repr=False, default=None)
    max_val: float | None = None
    corruption: tuple[dict, ...] | None = None
    items: dict[str, list[str]] | None = dataclasses.field(repr=False, default=None)
    class_frequencies: list[float] | None = dataclasses.field(repr=False, default=None)
    self_supervised: bool = False
    cache: str | None = None
    cache_note: str | None = dataclasses.field(repr=False, default=None)
    normalize: str = "dtype"

    def summary(self) -> str:
        if self.corruption is not None:
            return describe_bundle(self)
        if self.num_classes is None:
            what = f"{self.num_outputs} target(s) {', '.join(self.target_names or [])}"
        else:
            what = f"{self.num_classes} classes"
        return (
            f"{self.name}: input {self.input_shape}, {what} ({self.task}), "
            f"train/validation/test = {self.num_train}/{self.num_validation}/{self.num_test}"
        )


def find_source(source: str) -> registry.Source:
    """The registry entry for a source: by name, by prefix, by suffix, or a folder."""
    if source in registry.named_sources():
        return registry.SOURCES[source]
    path = pathlib.Path(source)
    for entry in registry.SOURCES.values():
        if entry.prefix and source.startswith(entry.prefix):
            return entry
        if entry.suffix and path.suffix.lower() == entry.suffix:
            return entry
        if entry.folder and path.is_dir():
            return entry
    if path.is_file():
        if path.suffix.lower() == ".npy":
            raise InputError(
                f"`source` {source!r}: a .npy file holds one array; save `x` and `y` together "
                "with numpy.savez as a .npz file."
            )
        kinds = ", ".join(name for name in registry.SOURCES if name not in registry.named_sources())
        raise InputError(f"`source` {source!r} is a file dlimaging cannot read; expected one of: {kinds}.")
    if os.sep in source or "." in source or path.exists():
        raise InputError(f"`source` {source!r}: no such file or folder.")
    raise InputError(
        f"`source` {source!r} is not a known dataset. Built-ins: {', '.join(registry.named_sources())}; "
        f"or one of: {', '.join(name for name in registry.SOURCES if name not in registry.named_sources())}."
    )


def check_pair_settings(settings: dict, task) -> None:
    """Refuses the settings of image-to-image tasks (`registry.PAIR_SETTINGS`) for another task."""
    for argument, kinds in registry.PAIR_SETTINGS.items():
        if settings[argument] is not None:
            takers = [name for name, e in registry.TASKS.items() if e.labels in kinds]
            raise InputError(f"`{argument}` applies to task {' or '.join(map(repr, takers))}, not to task={task!r}. "
                             f"Received: {argument}={settings[argument]!r}")


def describe_bundle(bundle) -> str:
    """One line for a restoration bundle's summary: the patches, the corruption and `max_val`."""
    noise = f"corrupted by {describe(bundle.corruption)}" if bundle.corruption else "noisy as read"
    if bundle.self_supervised:
        noise += ", Noise2Void (the noisy patch is its own target)"
    return (f"{bundle.name}: patches {bundle.input_shape}, {noise}, "
            f"max_val {bundle.max_val:g}; patches per epoch/validation/test = "
            f"{bundle.num_train}/{bundle.num_validation}/{bundle.num_test} from "
            f"{'/'.join(str(len(bundle.items[s])) for s in ('train', 'validation', 'test'))} whole items")
