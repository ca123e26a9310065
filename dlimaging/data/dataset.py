"""Datasets: offline built-ins, TensorFlow Datasets, image folders, .npz and CSV files, spectra.

Every source becomes numpy arrays first, is checked, its labels are read as
the task's (class ids, 0/1, 0/1 vectors or numbers), split (stratified where
the labels are classes) and then fed through `tf.data`.
"""

from __future__ import annotations

import functools
import os
import warnings

import numpy as np
import tensorflow as tf

from dlimaging import registry
from dlimaging.data.bundle import DatasetBundle, check_pair_settings, find_source
from dlimaging.data.images import integer_scale
from dlimaging.data.labels import declared_task, read_labels
from dlimaging.data.n2v_options import check_self_supervised, is_self
from dlimaging.data.normalize import check_normalize, normalize_bundle
from dlimaging.data.pairs import is_pairs, load_pairs
from dlimaging.data.restoration import load_restoration
from dlimaging.data.segmentation import load_segmentation
from dlimaging.data.streaming import (
    attach_cache,
    cached,
    check_cache,
    check_split_sizes,
    choose_cache,
    file_dataset,
    list_class_folder,
    relative_names,
)
from dlimaging.data.streaming import split_samples as _split
from dlimaging.errors import InputError
from dlimaging.validation import check_number, check_positive_int, check_seed

_FLOAT32_MAX = float(np.finfo("float32").max)


def list_datasets() -> dict[str, str]:
    """The built-in datasets and the other accepted sources, with a one-line description each.

    Read from `dlimaging.registry.SOURCES`.

    Example:
    >>> sorted(list_datasets())[:2]
    ['PATH.npz', 'PATH/']
    """
    return {name: entry.description for name, entry in registry.SOURCES.items()}


def _check_arrays(source: str, arrays: dict[str, np.ndarray]):
    for x_key, y_key in (("x", "y"), ("x_test", "y_test")):
        if x_key not in arrays:
            continue
        x, y = arrays[x_key], arrays[y_key]
        if len(x) != len(y):
            raise InputError(
                f"`source` {source!r}: `{x_key}` and `{y_key}` have different lengths "
                f"({len(x)} and {len(y)})."
            )
        if len(x) == 0:
            raise InputError(f"`source` {source!r}: `{x_key}` is empty.")
        if x.ndim < 2 or 0 in x.shape[1:]:
            raise InputError(
                f"`source` {source!r}: `{x_key}` has shape {x.shape}, so each sample is "
                f"{'a single number' if x.ndim < 2 else 'empty'}; it needs (N, features), "
                "(N, length, channels), (N, height, width[, channels]) or (N, depth, height, width, channels)."
            )
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise InputError(f"`source` {source!r}: `{x_key}` must hold numbers. Received dtype {x.dtype}.")
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            bad = int(np.count_nonzero(~np.isfinite(x)))
            raise InputError(f"`source` {source!r}: `{x_key}` holds {bad} NaN or inf value(s).")
        if np.issubdtype(x.dtype, np.floating) and x.dtype.itemsize > 4:
            largest = float(np.max(np.abs(x)))
            if largest > _FLOAT32_MAX:
                raise InputError(
                    f"`source` {source!r}: `{x_key}` holds values up to {largest:.4g} in magnitude, beyond "
                    f"float32's range (±{_FLOAT32_MAX:.4g}): they would become inf. Rescale `{x_key}`."
                )


def _to_float(x: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """float32 values and their range: uint8 and uint16 images are scaled to [0, 1] by the white
    of their type; other numbers are kept as they are, with the range they span."""
    scale = integer_scale(x.dtype)
    if scale is not None:
        return (x.astype("float32") / np.float32(scale)), (0.0, 1.0)
    x = x.astype("float32")
    return x, (float(x.min()), float(x.max()))


def _prepare(x: np.ndarray, image_size) -> tuple[np.ndarray, tuple[float, float]]:
    """float32 samples with a channel axis, images resized to `image_size`, and their range."""
    if x.ndim == 3 and x.shape[-1] > 4:  # (N, H, W) images; (N, L, C<=4) stay signals
        x = x[..., None]
    x, value_range = _to_float(x)
    if image_size is not None and x.ndim == 4 and x.shape[1:3] != image_size:
        x = tf.image.resize(x, image_size).numpy()
    return x, value_range


def _to_dataset(x, y, batch_size, *, shuffle, seed, cache, disk, split):
    ds = cached(tf.data.Dataset.from_tensor_slices((x, y)), cache, disk, split)
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _check_arguments(source, validation_split, test_split, batch_size, seed, image_size):
    """`load_dataset`'s arguments, checked; returns the source as a string, the batch size and the image size."""
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(f"`source` must be a name or a path. Received: source={source!r}")
    check_number("validation_split", validation_split, low=0.0, high=1.0, high_inclusive=False)
    check_number("test_split", test_split, low=0.0, high=1.0, high_inclusive=False)
    if validation_split + test_split >= 1.0:
        raise InputError(
            "`validation_split` + `test_split` must be below 1 to leave training data. "
            f"Received: validation_split={validation_split}, test_split={test_split}"
        )
    check_seed("seed", seed)
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if image_size is not None and (
            not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in image_size)):
        raise InputError(f"`image_size` must be (height, width) of positive ints or None. Received: image_size={image_size!r}")
    image_size = tuple(image_size) if image_size is not None else None
    return os.fspath(source), check_positive_int("batch_size", batch_size), image_size


def _check_source_options(source: str, entry: registry.Source, task, options: dict):
    """`task` is a registry task or None; `target`, `features` and `test` go only to sources that take them."""
    if task is not None:
        registry.task(task)
    for argument, value in options.items():
        if value is not None and argument not in entry.options:
            takers = [name for name, e in registry.SOURCES.items() if argument in e.options]
            raise InputError(
                f"`{argument}` applies to {', '.join(takers)} sources, not to `source` {source!r}. "
                f"Received: {argument}={value!r}"
            )


def _noise2void(entry: registry.Source, target, n2v_fraction, task) -> tuple:
    """(target, masking fraction): `target="self"` is Noise2Void (its fraction, default 0.002, and no
    target column), except for a CSV file, whose target is a column whatever its name."""
    if "target" in entry.options:
        return target, check_self_supervised(None, n2v_fraction, None, task)
    labels = registry.task(task).labels if task is not None else None
    return (None if is_self(target) else target), check_self_supervised(target, n2v_fraction, labels, task)


def _load_pairs(source: str, entry: registry.Source, task: str, settings: dict, options: dict) -> DatasetBundle:
    """The bundle of a task whose targets have the input's (spatial) shape: restoration's clean
    images (`load_restoration`, `load_pairs`) or segmentation's masks (`load_segmentation`)."""
    if registry.task(task).labels == registry.CLEAN and is_pairs(source):
        return load_pairs(source, task=task, **{k: v for k, v in settings.items() if k != "data_dir"})
    if registry.task(task).labels == registry.MASKS:
        return load_segmentation(
            source, entry, task=task, patch_size=settings["patch_size"], batch_size=settings["batch_size"],
            seed=settings["seed"], split=(settings["validation_split"], settings["test_split"]),
            corruption=settings["corruption"], patches_per_epoch=settings["patches_per_epoch"],
            augmentation=settings["augmentation"], cache=settings["cache"], normalize=settings["normalize"])
    return load_restoration(
        source, entry, task=task, corruption=settings["corruption"], patch_size=settings["patch_size"],
        patches_per_epoch=settings["patches_per_epoch"], validation_split=settings["validation_split"],
        test_split=settings["test_split"], batch_size=settings["batch_size"], seed=settings["seed"],
        augmentation=settings["augmentation"], n2v_fraction=settings["n2v_fraction"], cache=settings["cache"],
        normalize=settings["normalize"],
        options={"prefix": entry.prefix, "data_dir": settings["data_dir"],
                 **{k: v for k, v in options.items() if k in entry.options}})


def _warnings_only_on_success(load):
    """A warning followed by an error is just the error: the warnings raised while loading (a CSV
    column left out, labels mapped to 0..C-1, an unreadable image skipped) are held back and given
    only once the data has loaded, as from the caller's line."""

    @functools.wraps(load)
    def load_then_warn(*args, **kwargs):
        with warnings.catch_warnings(record=True) as held:
            data = load(*args, **kwargs)
        for warning in held:
            warnings.warn(warning.message, warning.category, stacklevel=2)
        return data

    return load_then_warn


@_warnings_only_on_success
def load_dataset(
    source: str,
    *,
    task: str | None = None,
    target: str | list[str] | None = None,
    features: list[str] | None = None,
    test: str | None = None,
    validation_split: float = 0.1,
    test_split: float = 0.1,
    batch_size: int = 32,
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
    cache: str | bool = "auto",
    data_dir: str | None = None,
    corruption: dict | list | None = None,
    patch_size: int | None = None,
    patches_per_epoch: int | None = None,
    augmentation: dict | None = None,
    n2v_fraction: float | None = None,
    normalize: str = "dtype",
) -> DatasetBundle:
    """Loads a dataset and splits it into batched train, validation and test `tf.data` sets.

    Args:
        source: str. A built-in name (see `list_datasets()`: "digits",
            "mnist1d", the coffee spectra, the synthetic spectra), the
            synthetic spectra with options ("spectra:components=4,samples=500"),
            "tfds:NAME" or "tfds:NAME/CONFIG", a folder with one sub-folder per
            class, a `.npz` file with `x` and `y` (and optionally `x_test`,
            `y_test`), or a `.csv` file with a header row.
        task: str or None. A task of `dlimaging.registry.TASKS`; the labels
            are checked against it and delivered as it needs them. Defaults to
            None: the source's own task (regression for the synthetic
            spectra), else read from the labels: one integer per sample means
            classification, other numbers regression, a 0/1 matrix multilabel.
        target: str or list of str. A CSV file's target column(s); required
            for CSV files, refused for other sources.
        features: list of str or None. A CSV file's feature columns, in the
            order wanted. Defaults to None: every other numeric column, in file
            order.
        test: str or None. A CSV file with the same columns, used as the test
            set (then `test_split` is not used). Defaults to None.
        validation_split: float in [0, 1). Fraction held out for validation
            (of the training data when the source has its own test set).
            A fraction above 0 that rounds to 0 samples is refused.
            Defaults to 0.1.
        test_split: float in [0, 1). Fraction held out for testing, used only
            when the source has no test set of its own; as for
            `validation_split`, it must give at least one sample. Defaults to 0.1.
        batch_size: int. Defaults to 32.
        seed: int in [0, 2**32 - 1]. Seed of the splits and the shuffling:
            the same seed gives the same splits. Defaults to 0.
        image_size: (height, width) or None. Resize images to this size.
            Defaults to None (the size of the first image of a folder; the
            source's own size otherwise).
        cache: "auto", "memory", "disk" or "none": what is kept of the decoded
            data between epochs. "memory" keeps it in memory, "disk" in a
            temporary folder removed with the bundle (never beside the data),
            "none" decodes a folder's files afresh each epoch. "auto" caches in
            memory when the decoded training split (samples x shape x 4 bytes)
            is under a quarter of the available memory
            (`dlimaging.data.streaming.AUTO_MEMORY_SHARE`), else streams.
            True and False mean "memory" and "none". Defaults to "auto".
        data_dir: str or None. TensorFlow Datasets' data folder. Defaults to None.
        corruption: dict, list of dicts, or None. For a restoration task
            (required there, refused elsewhere): what is done to the clean data,
            e.g. `{"kind": "gaussian", "sigma": 25 / 255}`; see
            `dlimaging.data.corruption`. Defaults to None.
        patch_size: int or None. Restoration: the side of the square image
            patches (cubes for volumes), or the length of signal windows. Defaults
            to None: 64 for images, 16 for volumes (or their smallest side), the
            whole signal for signals. Segmentation: the side of the square (or
            cubic) patches: random ones for training (restoration's sampler, image
            and mask cut at one place), tiles for validation and test.
            Defaults to None: whole images when all have one size, else 64 (or
            the smallest side).
        patches_per_epoch: int or None. Restoration and segmentation: training
            patches drawn per epoch. Defaults to None: as many as tile the
            training images once.
        augmentation: dict or None. Segmentation: flips, quarter turns, rotation,
            zoom and translation drawn once per training pair and applied to the
            image and its mask alike, and contrast, brightness and noise on the
            image only (see `dlimaging.data.joint`). Restoration: the moving
            options, applied to each training patch before its corruption, so the
            noisy and the clean patch move together. Volumes take flips and
            quarter turns in the (height, width) plane only. Defaults to None.
        n2v_fraction: float in (0, 0.1] or None. Noise2Void (`target="self"`): the
            fraction of each patch's pixels masked. Defaults to None: 0.002 with
            `target="self"`, refused without it.
        normalize: "dtype" (default), "percentile" or "percentile:LOW,HIGH" (images; `dlimaging.data.normalize`).

    Noise2Void (`target="self"`, task "restoration"): no clean image is used.
    A folder's images are the noisy images (no `corruption` needed); a source of
    clean images (the sample photographs, spectra) needs a `corruption`, of
    which only the noisy version is used. The batches are `(masked, target)`:
    the noisy patch with a few pixels replaced by random neighbours, and the
    noisy patch with a mask channel (`dlimaging.data.n2v`); the validation and
    test losses are self-supervised too, and `self_supervised` is True.

    Restoration (a task whose labels are "clean signals"): the source gives clean items ("skimage", a folder of
    images, the synthetic spectra, MNIST-1D), split by item (validation and test patches come from whole items
    never used for training); the batches are `(corrupted, clean)`, corrupted afresh every epoch for training and
    once, seeded, for validation and test; `max_val` is recorded on the bundle. A pairs source
    ("pairs:LOW_DIR,HIGH_DIR", or a folder holding low/ and high/) gives `(low, high)` patches (`dlimaging.data.pairs`).

    Segmentation (a task whose labels are "masks"): the source gives images
    and their masks of class ids (a folder with `images/` and `masks/`, a
    `.npz` file with `x` and `masks`, or the synthetic `cells`), split by
    image; the batches are `(image, mask)`, masks int32 of the images'
    spatial shape; `class_frequencies` is recorded on the bundle.

    Values: uint8 and uint16 arrays are images and are scaled to [0, 1] by
    their type's white (255, 65535). Image files in folders (PNG, JPEG, TIFF)
    have their integer pixels scaled by their type's maximum (8, 16 or 32
    bits) and float pixels kept; a multi-page TIFF or a 3D `.npy` is a volume
    (depth, height, width, channels); see `dlimaging.data.images`. Other integer types (int8, int16,
    int32, int64, uint32, ...) are measurements: they are converted to float32
    as they are, like float arrays, and `value_range` is the data's own
    (min, max). Float values beyond float32's range are refused.

    Labels follow the task's `label_dtype` and `label_rank` in the registry:
    class ids int64 (N,); binary float32 (N, 1) of 0/1; multilabel float32
    (N, K) of 0/1; regression float32 (N, K), (N, 1) for one target.
    Class labels must be integers >= 0, of at least two classes (exactly two
    for binary). Labels that are not 0..C-1 (e.g. {0, 1000000}, or {2, 5, 9})
    are mapped to 0..C-1 in sorted order, with a warning, and `class_names`
    keeps the original labels (["0", "1000000"]), so an exported model
    answers with them. NaN or infinite targets are refused.

    Returns:
        A `DatasetBundle`.

    Example:
    >>> data = load_dataset("digits", batch_size=64)
    >>> data.input_shape, data.num_classes
    ((8, 8, 1), 10)
    """
    source, batch_size, image_size = _check_arguments(source, validation_split, test_split, batch_size, seed,
                                                      image_size)
    cache, bounds = check_cache(cache), check_normalize(normalize)
    entry = find_source(source)
    target, n2v_fraction = _noise2void(entry, target, n2v_fraction, task)
    options = {"target": target, "features": features, "test": test}
    _check_source_options(source, entry, task, options)
    settings = dict(corruption=corruption, patch_size=patch_size, patches_per_epoch=patches_per_epoch, cache=cache,
                    augmentation=augmentation, validation_split=validation_split, test_split=test_split,
                    batch_size=batch_size, seed=seed, data_dir=data_dir, n2v_fraction=n2v_fraction, normalize=bounds)
    if task is not None and registry.task(task).label_rank is None:  # restoration, segmentation
        return _load_pairs(source, entry, task, settings, options)
    check_pair_settings(settings, task)
    if entry.stream:  # tfds: the source builds its own streamed pipeline
        return entry.load(source, prefix=entry.prefix, task=task, image_size=image_size, settings=settings, cache=cache)
    if entry.folder:
        return normalize_bundle(_load_class_folder(source, task, image_size, settings, cache), bounds, source)
    loaded = entry.load(source, prefix=entry.prefix, image_size=image_size, data_dir=data_dir, task=task,
                        **{k: v for k, v in options.items() if k in entry.options})
    arrays, class_names, name = loaded[:3]
    info = dict(loaded[3]) if len(loaded) > 3 else {}
    _check_arrays(source, arrays)
    task = declared_task(source, task, arrays, list(class_names), info)
    labels = read_labels(source, task, arrays, list(class_names), info)
    stratified = registry.task(task).labels in ("classes", "two classes")
    if "x_test" in arrays and integer_scale(arrays["x"].dtype) != integer_scale(arrays["x_test"].dtype):
        raise InputError(
            f"`source` {source!r}: `x` ({arrays['x'].dtype}) and `x_test` ({arrays['x_test'].dtype}) "
            "would be scaled differently; give them the same dtype."
        )
    x, value_range = _prepare(arrays["x"], image_size)
    value_range = tuple(info.get("value_range", value_range))  # a folder knows its files' scale
    y = arrays["y"]
    # Both fractions are of all the samples before the split (of the training data when the
    # source has its own test set).
    validation_count = round(len(x) * validation_split)
    own_test = "x_test" in arrays  # then `test_split` is not used
    test_count = 0 if own_test else round(len(x) * test_split)
    check_split_sizes(source, len(x), validation_split, validation_count, 0 if own_test else test_split, test_count)
    if own_test:
        x_test, _ = _prepare(arrays["x_test"], image_size)
        y_test = arrays["y_test"]
        if x_test.shape[1:] != x.shape[1:]:
            raise InputError(f"`source` {source!r}: `x_test` samples have shape {x_test.shape[1:]}, `x` samples {x.shape[1:]}.")
    else:
        x, y, x_test, y_test = _split(x, y, test_count, seed, f"`test_split`={test_split} of {source!r}", stratified)
    x, y, x_val, y_val = _split(x, y, validation_count, seed, f"`validation_split`={validation_split} of {source!r}",
                                stratified)
    if len(x) == 0:
        raise InputError(f"`source` {source!r}: the splits leave no training data.")

    cache, note, disk = choose_cache(cache, len(x), x.shape[1:])
    train, validation, test = (
        _to_dataset(xs, ys, batch_size, shuffle=split == "train", seed=seed, cache=cache, disk=disk, split=split)
        if len(xs) else None for xs, ys, split in ((x, y, "train"), (x_val, y_val, "validation"),
                                                   (x_test, y_test, "test")))
    axis = info.get("axis")
    return normalize_bundle(attach_cache(DatasetBundle(
        train=train,
        validation=validation,
        test=test,
        input_shape=tuple(int(d) for d in x.shape[1:]),
        num_classes=labels["num_classes"],
        class_names=labels["class_names"],
        task=task,
        name=name,
        num_train=len(x),
        num_validation=len(x_val),
        num_test=len(x_test),
        value_range=value_range,
        arrays={"x_train": x, "y_train": y, "x_validation": x_val, "y_validation": y_val,
                "x_test": x_test, "y_test": y_test},
        target_names=labels["target_names"],
        num_outputs=labels["num_outputs"],
        axis=[float(v) for v in axis] if axis is not None else None,
        axis_name=info.get("axis_name"),
        feature_names=info.get("feature_names"),
        cache=cache,
        cache_note=note,
    ), disk), bounds, source)


def _load_class_folder(source: str, task, image_size, settings: dict, cache: str) -> DatasetBundle:
    """A class folder, streamed: split on its list of files (stratified, by seed), decoded inside
    `tf.data` (`dlimaging.data.streaming`); `items` holds each split's files for `splits.json`."""
    listing = list_class_folder(source, image_size)
    arrays = {"y": listing.labels.copy()}
    task = declared_task(source, task, arrays, list(listing.class_names), {})
    labels = read_labels(source, task, arrays, list(listing.class_names), {})
    stratified = registry.task(task).labels in ("classes", "two classes")
    files, y, total = listing.files, arrays["y"], len(listing.files)
    validation_split, test_split, seed = settings["validation_split"], settings["test_split"], settings["seed"]
    validation_count, test_count = round(total * validation_split), round(total * test_split)
    check_split_sizes(source, total, validation_split, validation_count, test_split, test_count)
    files, y, test_files, y_test = _split(files, y, test_count, seed, f"`test_split`={test_split} of {source!r}",
                                          stratified)
    files, y, val_files, y_val = _split(files, y, validation_count, seed,
                                        f"`validation_split`={validation_split} of {source!r}", stratified)
    cache, note, disk = choose_cache(cache, len(files), listing.sample_shape)

    def make(names, ys, split):
        return file_dataset(listing, names, ys, settings["batch_size"], shuffle=split == "train", seed=seed,
                            mode=cache, disk=disk, split=split) if len(names) else None

    return attach_cache(DatasetBundle(
        train=make(files, y, "train"), validation=make(val_files, y_val, "validation"),
        test=make(test_files, y_test, "test"), input_shape=listing.sample_shape,
        num_classes=labels["num_classes"], class_names=labels["class_names"], task=task, name=listing.name,
        num_train=len(files), num_validation=len(val_files), num_test=len(test_files), cache=cache, cache_note=note,
        value_range=listing.value_range, target_names=labels["target_names"], num_outputs=labels["num_outputs"],
        items={split: relative_names(names, source)
               for split, names in (("train", files), ("validation", val_files), ("test", test_files))}), disk)
