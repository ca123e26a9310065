"""Datasets: offline built-ins, TensorFlow Datasets, image folders and .npz files.

Every source becomes numpy arrays first, is checked, split (stratified where
the labels allow it) and then fed through `tf.data`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import warnings

import numpy as np
import tensorflow as tf

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.validation import check_number, check_positive_int

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")



@dataclasses.dataclass
class DatasetBundle:
    """A dataset ready for training: batched `tf.data` splits and what describes them.

    Attributes:
        train, validation, test: `tf.data.Dataset`s of `(x, y)` batches; train
            is shuffled each epoch; all are cached and prefetched.
        input_shape: shape of one sample, without the batch axis.
        num_classes: number of classes.
        class_names: the class names, in label order.
        task: a task of `dlimaging.registry.TASKS`.
        name: the source's name.
        num_train, num_validation, num_test: the size of each split.
        value_range: (low, high) of the input values.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset | None
    input_shape: tuple[int, ...]
    num_classes: int
    class_names: list[str]
    task: str
    name: str
    num_train: int
    num_validation: int
    num_test: int
    value_range: tuple[float, float]
    arrays: dict[str, np.ndarray] = dataclasses.field(repr=False, default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.name}: input {self.input_shape}, {self.num_classes} classes, "
            f"train/validation/test = {self.num_train}/{self.num_validation}/{self.num_test}"
        )


def list_datasets() -> dict[str, str]:
    """The built-in datasets and the other accepted sources, with a one-line description each.

    Read from `dlimaging.registry.SOURCES`.

    Example:
    >>> sorted(list_datasets())[:2]
    ['PATH.npz', 'PATH/']
    """
    return {name: entry.description for name, entry in registry.SOURCES.items()}


# ---------------------------------------------------------------- sources


# Each loader takes the source string and the options of `load_dataset` it uses, and returns
# (arrays, class_names, name): arrays holds `x`, `y` and optionally `x_test`, `y_test`.


def _load_digits(source, **_options):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    return {"x": x, "y": digits.target.astype("int64")}, [str(i) for i in range(10)], source


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays():
    # make_dataset generates the data locally; get_dataset would download it.
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args())
    return (
        np.asarray(data["x"], "float32")[..., None],
        np.asarray(data["y"], "int64"),
        np.asarray(data["x_test"], "float32")[..., None],
        np.asarray(data["y_test"], "int64"),
    )


def _load_mnist1d(source, **_options):
    x, y, x_test, y_test = _mnist1d_arrays()
    arrays = {"x": x.copy(), "y": y.copy(), "x_test": x_test.copy(), "y_test": y_test.copy()}
    return arrays, [str(i) for i in range(10)], source


def _load_tfds(spec: str, *, prefix: str, data_dir: str | None = None, **_options):
    import tensorflow_datasets as tfds

    name = spec[len(prefix):]
    if not name:
        raise InputError(f"`source` {spec!r} needs a dataset name, e.g. '{prefix}mnist'. Received: source={spec!r}")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises its own DatasetNotFoundError
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            f"`source` {spec!r}: TensorFlow Datasets has no dataset {name!r} ({first_line})"
        ) from None
    features = builder.info.features
    supervised = builder.info.supervised_keys
    if not supervised:
        raise InputError(f"`source` {spec!r} has no (image, label) pairs; only image classification sets are supported.")
    label_feature = features[supervised[1]]
    if not hasattr(label_feature, "num_classes"):
        raise InputError(f"`source` {spec!r}: its label is not a class label; only image classification sets are supported.")
    class_names = list(label_feature.names)

    def load(split):
        ds = tfds.load(name, split=split, as_supervised=True, data_dir=data_dir)
        # Batch and concatenate: `batch_size=-1` crashes on mocked datasets.
        xs, ys = [], []
        for x, y in tfds.as_numpy(ds.batch(4096)):
            xs.append(x)
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys).astype("int64")

    try:
        x, y = load("train")
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(
            f"`source` {spec!r}: could not load its 'train' split; is the data downloaded? ({first_line})"
        ) from None
    arrays = {"x": x, "y": y}
    # Use the set's own test split where there is one. Under tfds.testing.mock_data
    # `info.splits` is empty, so ask for the split rather than reading it there.
    if not builder.info.splits or "test" in builder.info.splits:
        try:
            arrays["x_test"], arrays["y_test"] = load("test")
        except Exception:
            pass
    return arrays, class_names, name.replace("/", "_")


def _read_image(path: pathlib.Path):
    """Opens an image as "L" when it is grey (palette images included), else as "RGB"."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        if image.mode in ("L", "1", "I", "I;16", "F", "LA"):
            return image.convert("L")
        rgb = image.convert("RGB")
    red, green, blue = (np.asarray(band) for band in rgb.split())
    if np.array_equal(red, green) and np.array_equal(green, blue):
        return rgb.convert("L")
    return rgb


def _load_folder(source: str, *, image_size=None, **_options):
    root = pathlib.Path(source)
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputError(
            f"`source` {str(root)!r} is a folder without class sub-folders; "
            "expected one sub-folder of images per class."
        )
    images, labels = [], []
    for label, folder in enumerate(classes):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        loaded = 0
        for path in files:
            try:
                images.append(_read_image(path))
            except Exception as error:
                warnings.warn(f"Skipping unreadable image {path}: {error}", stacklevel=3)
                continue
            labels.append(label)
            loaded += 1
        if loaded == 0:
            raise InputError(
                f"`source` {str(root)!r}: class folder {folder.name!r} holds no readable "
                f"image ({', '.join(IMAGE_SUFFIXES)})."
            )
    if image_size is None:
        image_size = (images[0].height, images[0].width)
    height, width = image_size
    rgb = any(image.mode == "RGB" for image in images)
    arrays = []
    for image in images:
        image = image.convert("RGB" if rgb else "L")
        if image.size != (width, height):
            image = image.resize((width, height))
        array = np.asarray(image, dtype="uint8")
        arrays.append(array if rgb else array[..., None])
    return {"x": np.stack(arrays), "y": np.asarray(labels, "int64")}, [c.name for c in classes], root.name


def _load_npz(source: str, **_options):
    path = pathlib.Path(source)
    if not path.is_file():
        raise InputError(f"`source` {source!r}: no such .npz file.")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as error:
        raise InputError(f"`source` {str(path)!r} is not a readable .npz file ({error}).") from None
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise InputError(
            f"`source` {str(path)!r} lacks the array(s) {missing}; it needs `x` and `y` "
            f"(and optionally `x_test`, `y_test`). Found: {sorted(arrays)}"
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise InputError(f"`source` {str(path)!r} has only one of `x_test` and `y_test`; give both or neither.")
    # Class names are the label numbers; load_dataset fills them in once the labels are checked.
    return {k: arrays[k] for k in ("x", "y", "x_test", "y_test") if k in arrays}, [], path.stem


# ---------------------------------------------------------------- checks


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
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise InputError(f"`source` {source!r}: `{x_key}` must hold numbers. Received dtype {x.dtype}.")
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            bad = int(np.count_nonzero(~np.isfinite(x)))
            raise InputError(f"`source` {source!r}: `{x_key}` holds {bad} NaN or inf value(s).")
        if y.ndim != 1:
            raise InputError(f"`source` {source!r}: `{y_key}` must be one integer label per sample. Received shape {y.shape}.")
        integral = np.issubdtype(y.dtype, np.integer) or (
            np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))
        )
        if not integral:
            raise InputError(
                f"`source` {source!r}: `{y_key}` must hold integer class labels. "
                f"Received dtype {y.dtype}, e.g. {y[:3].tolist()}"
            )
        if np.min(y) < 0:
            raise InputError(f"`source` {source!r}: `{y_key}` holds negative labels (min {np.min(y)}).")


def _to_float(x: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    if np.issubdtype(x.dtype, np.integer):
        return (x.astype("float32") / 255.0), (0.0, 1.0)
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


# ---------------------------------------------------------------- splits


def _split(x, y, count, seed, what):
    from sklearn.model_selection import train_test_split

    if count == 0:
        return x, y, x[:0], y[:0]
    if count >= len(x):
        raise InputError(f"{what} takes all {len(x)} samples and leaves no training data.")
    _, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 and count >= len(counts) and len(x) - count >= len(counts) else None
    x_a, x_b, y_a, y_b = train_test_split(x, y, test_size=count, random_state=seed, stratify=stratify)
    return x_a, y_a, x_b, y_b


def _to_dataset(x, y, batch_size, *, shuffle, seed, cache):
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _find_source(source: str) -> registry.Source:
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
    if os.sep in source or "." in source or path.exists():
        raise InputError(f"`source` {source!r}: no such file or folder.")
    raise InputError(
        f"`source` {source!r} is not a known dataset. Built-ins: {', '.join(registry.named_sources())}; "
        f"or one of: {', '.join(name for name in registry.SOURCES if name not in registry.named_sources())}."
    )


def load_dataset(
    source: str,
    *,
    validation_split: float = 0.1,
    test_split: float = 0.1,
    batch_size: int = 32,
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
    cache: bool = True,
    data_dir: str | None = None,
) -> DatasetBundle:
    """Loads a dataset and splits it into batched train, validation and test `tf.data` sets.

    Args:
        source: str. A built-in name ("digits", "mnist1d"), "tfds:NAME" or
            "tfds:NAME/CONFIG", a folder with one sub-folder per class, or a
            `.npz` file with `x` and `y` (and optionally `x_test`, `y_test`).
        validation_split: float in [0, 1). Fraction held out for validation
            (of the training data when the source has its own test set).
            Defaults to 0.1.
        test_split: float in [0, 1). Fraction held out for testing, used only
            when the source has no test set of its own. Defaults to 0.1.
        batch_size: int. Defaults to 32.
        seed: int. Seed of the splits and the shuffling: the same seed gives
            the same splits. Defaults to 0.
        image_size: (height, width) or None. Resize images to this size.
            Defaults to None (the size of the first image of a folder; the
            source's own size otherwise).
        cache: bool. Cache the datasets in memory. Defaults to True.
        data_dir: str or None. TensorFlow Datasets' data folder. Defaults to None.

    Returns:
        A `DatasetBundle`.

    Example:
    >>> data = load_dataset("digits", batch_size=64)
    >>> data.input_shape, data.num_classes
    ((8, 8, 1), 10)
    """
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(f"`source` must be a name or a path. Received: source={source!r}")
    source = os.fspath(source)
    check_number("validation_split", validation_split, low=0.0, high=1.0, high_inclusive=False)
    check_number("test_split", test_split, low=0.0, high=1.0, high_inclusive=False)
    if validation_split + test_split >= 1.0:
        raise InputError(
            "`validation_split` + `test_split` must be below 1 to leave training data. "
            f"Received: validation_split={validation_split}, test_split={test_split}"
        )
    batch_size = check_positive_int("batch_size", batch_size)
    check_number("seed", seed, integer=True)
    if image_size is not None:
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
                or not all(isinstance(v, int) and v > 0 for v in image_size)):
            raise InputError(f"`image_size` must be (height, width) of positive ints or None. Received: image_size={image_size!r}")
        image_size = tuple(image_size)

    entry = _find_source(source)
    arrays, class_names, name = entry.load(source, prefix=entry.prefix, image_size=image_size, data_dir=data_dir)

    _check_arrays(source, arrays)
    x, value_range = _prepare(arrays["x"], image_size)
    y = arrays["y"].astype("int64")
    # Both fractions are of all the samples before the split (of the training data when the
    # source has its own test set).
    validation_count = round(len(x) * validation_split)
    if "x_test" in arrays:
        x_test, _ = _prepare(arrays["x_test"], image_size)
        y_test = arrays["y_test"].astype("int64")
        if x_test.shape[1:] != x.shape[1:]:
            raise InputError(f"`source` {source!r}: `x_test` samples have shape {x_test.shape[1:]}, `x` samples {x.shape[1:]}.")
    else:
        x, y, x_test, y_test = _split(x, y, round(len(x) * test_split), seed, f"`test_split`={test_split} of {source!r}")
    x, y, x_val, y_val = _split(x, y, validation_count, seed, f"`validation_split`={validation_split} of {source!r}")
    if len(x) == 0:
        raise InputError(f"`source` {source!r}: the splits leave no training data.")

    num_classes = max(len(class_names), int(max(y.max(), y_test.max() if len(y_test) else 0)) + 1)
    if len(class_names) < num_classes:
        class_names = [str(i) for i in range(num_classes)]
    if num_classes < 2:
        raise InputError(f"`source` {source!r} holds a single class; classification needs at least 2.")

    def make(xs, ys, shuffle):
        if len(xs) == 0:
            return None
        return _to_dataset(xs, ys, batch_size, shuffle=shuffle, seed=seed, cache=cache)

    return DatasetBundle(
        train=make(x, y, True),
        validation=make(x_val, y_val, False),
        test=make(x_test, y_test, False),
        input_shape=tuple(int(d) for d in x.shape[1:]),
        num_classes=num_classes,
        class_names=list(class_names),
        task=registry.DEFAULT_TASK,
        name=name,
        num_train=len(x),
        num_validation=len(x_val),
        num_test=len(x_test),
        value_range=value_range,
        arrays={"x_train": x, "y_train": y, "x_validation": x_val, "y_validation": y_val,
                "x_test": x_test, "y_test": y_test},
    )
