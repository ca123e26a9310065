"""TensorFlow Datasets sources (`tfds:NAME[/CONFIG]`), streamed: never converted to numpy.

`tfds.load(name, split=..., as_supervised=True)` feeds the pipeline directly: the images are
decoded inside `tf.data`, scaled as the in-memory sources are (uint8 by 255, uint16 by 65535,
other types kept as float32), resized to `image_size` when it is given, cached as `cache` says
(`dlimaging.data.streaming.choose_cache`), shuffled, batched and prefetched.

The split is a seeded split on the examples' positions, made without a file: one pass reads the
labels only (the images are skipped undecoded), and `split_samples` splits the positions as it
splits a class folder's files (stratified by class, by seed), so the split is the one the
in-memory loader made. Each split then reads the set's `train` split in order and keeps its own
positions (an image left to another split is never decoded). The set's own `test` split is the
test set when it has one; validation comes from `train` by `validation_split`, and without an own
test split, test does too by `test_split`. `items` names the positions (`"train[12]"`) for
`splits.json`. Uncached, training samples are reshuffled each epoch within a buffer of
`DISK_SHUFFLE_BUFFER` samples (memory stays bounded); cached in memory, all of them are.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from dlimaging import registry
from dlimaging.data.bundle import DatasetBundle
from dlimaging.data.images import integer_scale
from dlimaging.data.labels import declared_task, read_labels
from dlimaging.data.streaming import (
    DISK_SHUFFLE_BUFFER,
    attach_cache,
    cached,
    check_split_sizes,
    choose_cache,
    split_samples,
)
from dlimaging.errors import InputError


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _builder(spec: str, name: str, data_dir):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises its own DatasetNotFoundError
        raise InputError(f"`source` {spec!r}: TensorFlow Datasets has no dataset {name!r} "
                         f"({_first_line(error)})") from None
    supervised = builder.info.supervised_keys
    if not supervised:
        raise InputError(f"`source` {spec!r} has no (image, label) pairs; only image classification sets are supported.")
    label = builder.info.features[supervised[1]]
    if not hasattr(label, "num_classes"):
        raise InputError(f"`source` {spec!r}: its label is not a class label; only image classification sets are supported.")
    return builder, builder.info.features[supervised[0]], list(label.names)


class _Split:
    """One tfds split, read lazily: `load(decode)` gives its (image, label) pairs, the images
    decoded or skipped (raw bytes, for the label pass)."""

    def __init__(self, name: str, split: str, data_dir, feature, key: str):
        import tensorflow_datasets as tfds

        self.name, self.split, self.data_dir, self.feature, self.key = name, split, data_dir, feature, key
        self.skippable = isinstance(feature, tfds.features.Image)

    def load(self, decode: bool) -> tf.data.Dataset:
        import tensorflow_datasets as tfds

        decoders = None
        if self.skippable:  # filter first, decode after: an image of another split is never decoded
            decoders = {self.key: tfds.decode.SkipDecoding()}
        ds = tfds.load(self.name, split=self.split, as_supervised=True, data_dir=self.data_dir,
                       shuffle_files=False, decoders=decoders)
        if decode and self.skippable:
            ds = ds.map(lambda x, y: (self.feature.decode_example(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        return ds

    def labels(self) -> np.ndarray:
        """Every label, in order (one pass; the images are not decoded where tfds can skip them)."""
        ds = self.load(decode=False).map(lambda x, y: y)
        return np.fromiter((int(y) for y in ds.batch(4096).unbatch().as_numpy_iterator()), "int64")


def _sample_shape(spec: str, feature, image_size) -> tuple[tuple[int, ...], np.dtype]:
    shape = tuple(feature.shape)
    dtype = np.dtype(getattr(feature, "np_dtype", None) or feature.dtype.as_numpy_dtype)
    if len(shape) == 2:  # (height, width): one channel added
        shape = (*shape, 1)
    if image_size is not None and len(shape) == 3:
        shape = (*image_size, shape[-1])
    if None in shape:
        raise InputError(f"`source` {spec!r} holds images of different sizes {feature.shape}: give `image_size` "
                         "to resize them to one size. Received: image_size=None")
    return tuple(int(d) for d in shape), dtype


def _prepare(shape, dtype, image_size):
    """A map function: an image to float32 of `shape`, scaled as the in-memory sources are."""
    scale = integer_scale(dtype)

    def prepare(x, y):
        x = tf.cast(x, tf.float32)
        if scale is not None:
            x = x / scale
        x = tf.reshape(x, tf.concat([tf.shape(x)[:2], [-1]], 0)) if len(shape) == 3 else x
        if image_size is not None:
            x = tf.image.resize(x, image_size)
        return tf.ensure_shape(x, shape), y

    return prepare


def stream_tfds(spec: str, *, prefix: str, task, image_size, settings: dict, cache: str) -> DatasetBundle:
    """The `DatasetBundle` of a `tfds:` source, streamed; see the module's docstring. `settings`
    holds `load_dataset`'s validation_split, test_split, batch_size, seed and data_dir."""
    name = spec[len(prefix):]
    if not name:
        raise InputError(f"`source` {spec!r} needs a dataset name, e.g. '{prefix}mnist'. Received: source={spec!r}")
    data_dir, seed = settings["data_dir"], settings["seed"]
    builder, feature, class_names = _builder(spec, name, data_dir)
    shape, dtype = _sample_shape(spec, feature, image_size)
    key = builder.info.supervised_keys[0]
    train = _Split(name, "train", data_dir, feature, key)
    try:
        y = train.labels()
    except Exception as error:  # noqa: BLE001  not downloaded, no network, a damaged record
        raise InputError(f"`source` {spec!r}: could not load its 'train' split; is the data downloaded? "
                         f"({_first_line(error)})") from None
    arrays, test = {"y": y}, None
    # Under tfds.testing.mock_data `info.splits` is empty: ask for the test split rather than reading it there.
    if not builder.info.splits or "test" in builder.info.splits:
        test = _Split(name, "test", data_dir, feature, key)
        try:
            arrays["y_test"] = test.labels()
        except Exception:  # noqa: BLE001  no test split: it comes from train
            test = None
    task = declared_task(spec, task, arrays, class_names, {})
    labels = read_labels(spec, task, arrays, class_names, {})
    stratified = registry.task(task).labels in ("classes", "two classes")
    validation_split, test_split = settings["validation_split"], settings["test_split"]
    total = len(y)
    validation_count = round(total * validation_split)
    test_count = 0 if test is not None else round(total * test_split)
    check_split_sizes(spec, total, validation_split, validation_count, 0 if test is not None else test_split,
                      test_count)
    positions, rest, test_positions, _ = split_samples(np.arange(total), y, test_count, seed,
                                                       f"`test_split`={test_split} of {spec!r}", stratified)
    positions, _, val_positions, _ = split_samples(positions, rest, validation_count, seed,
                                                   f"`validation_split`={validation_split} of {spec!r}", stratified)
    member = np.zeros(total, "int8")
    member[val_positions], member[test_positions] = 1, 2
    mode, note, disk = choose_cache(cache, len(positions), shape)
    label_of = _labels(task)
    prepare = _prepare(shape, dtype, image_size)
    member = tf.constant(member)

    def make(source: _Split, which: int | None, count: int, split: str):
        if not count:
            return None
        ds = source.load(decode=False)
        if which is not None:
            ds = ds.enumerate().filter(lambda i, xy: member[i] == which).map(lambda i, xy: xy)
        if source.skippable:
            ds = ds.map(lambda x, y: (source.feature.decode_example(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        ds = cached(ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).map(label_of), mode, disk, split)
        if split == "train":
            buffer = count if mode == "memory" else min(count, DISK_SHUFFLE_BUFFER)
            ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        return ds.batch(settings["batch_size"]).prefetch(tf.data.AUTOTUNE)

    num_test = len(arrays["y_test"]) if test is not None else len(test_positions)
    return attach_cache(DatasetBundle(
        train=make(train, 0, len(positions), "train"), validation=make(train, 1, len(val_positions), "validation"),
        test=make(test, None, num_test, "test") if test is not None else make(train, 2, num_test, "test"),
        input_shape=shape, num_classes=labels["num_classes"], class_names=labels["class_names"], task=task,
        name=name.replace("/", "_"), num_train=len(positions), num_validation=len(val_positions), num_test=num_test,
        value_range=_value_range(train, prepare, dtype), target_names=labels["target_names"],
        num_outputs=labels["num_outputs"], cache=mode, cache_note=note,
        items={"train": [f"train[{i}]" for i in sorted(positions)],
               "validation": [f"train[{i}]" for i in sorted(val_positions)],
               "test": ([f"test[{i}]" for i in range(num_test)] if test is not None
                        else [f"train[{i}]" for i in sorted(test_positions)])}), disk)


def _labels(task: str):
    """A map function: a tfds label to the task's (class id int64; 0/1 float32 of shape (1,) for binary)."""
    entry = registry.task(task)
    dtype, rank = tf.as_dtype(entry.label_dtype), entry.label_rank

    def label(x, y):
        y = tf.cast(y, dtype)
        return x, (tf.reshape(y, (1,)) if rank == 2 else y)

    return label


def _value_range(train: _Split, prepare, dtype) -> tuple[float, float]:
    """(0, 1) for integer images scaled by their type; other values: their own range, in one pass."""
    if integer_scale(dtype) is not None:
        return 0.0, 1.0
    ds = train.load(decode=True).map(prepare).map(lambda x, y: (tf.reduce_min(x), tf.reduce_max(x)))
    low, high = ds.reduce((np.float32(np.inf), np.float32(-np.inf)),
                          lambda acc, v: (tf.minimum(acc[0], v[0]), tf.maximum(acc[1], v[1])))
    return float(low), float(high)
