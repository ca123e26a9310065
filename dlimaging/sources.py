"""The sources' loaders: each turns a source string into numpy arrays and class names.

`dlimaging.registry.SOURCES` names them; `dlimaging.data.load_dataset` checks,
splits and batches what they return.
"""

from __future__ import annotations

import functools
import pathlib
import warnings

import numpy as np

from dlimaging.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
# Pillow's modes for 16-bit grey images (16-bit PNGs open as "I;16"; older Pillows give "I").
WIDE_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
# The integer types that hold images, and the value of their white: they are scaled to [0, 1].
# Other integer arrays are measurements, not pixels: they are converted as they are.
IMAGE_INTEGER_SCALES = {np.dtype("uint8"): 255.0, np.dtype("uint16"): 65535.0}


def integer_scale(dtype) -> float | None:
    """The divisor that scales an image array of this dtype to [0, 1], or None to keep the values."""
    return IMAGE_INTEGER_SCALES.get(np.dtype(dtype))


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


def read_image(path: pathlib.Path):
    """Opens an image as "L" when it is grey (palette images included), "F" when it is 16-bit
    grey (values 0..65535, every grey level kept), else as "RGB"."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        if image.mode in WIDE_GREY_MODES:
            return image.convert("F")
        if image.mode in ("L", "1", "F", "LA"):
            return image.convert("L")
        rgb = image.convert("RGB")
    red, green, blue = (np.asarray(band) for band in rgb.split())
    if np.array_equal(red, green) and np.array_equal(green, blue):
        return rgb.convert("L")
    return rgb


def image_array(image, size: tuple[int, int], *, rgb: bool, wide: bool) -> np.ndarray:
    """An image from `read_image`, resized to `size` (height, width), as (height, width, channels).

    uint8, or uint16 when `wide` (8-bit images are then scaled to 16 bits: 255 becomes 65535);
    16-bit grey images in an RGB set are brought down to 8 bits.
    """
    height, width = size
    if image.size != (width, height):
        image = image.resize((width, height))
    if image.mode == "F":
        levels = np.clip(np.round(np.asarray(image, "float64")), 0, 65535)
        if rgb:
            grey = np.round(levels / 257.0).astype("uint8")
            return np.repeat(grey[..., None], 3, axis=-1)
        return levels.astype("uint16")[..., None]
    if rgb:
        return np.asarray(image.convert("RGB"), dtype="uint8")
    array = np.asarray(image.convert("L"), dtype="uint8")[..., None]
    return array.astype("uint16") * 257 if wide else array


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
                images.append(read_image(path))
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
    rgb = any(image.mode == "RGB" for image in images)
    wide = not rgb and any(image.mode == "F" for image in images)
    arrays = [image_array(image, image_size, rgb=rgb, wide=wide) for image in images]
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
