"""Files in, as `dlimaging predict` reads them: images, .npy/.npz arrays, and CSV files whose
columns are matched to the model's features by name.
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Callable, Sequence, TypeVar

import numpy as np

from dlimaging.data.images import integer_scale, read_image, resize
from dlimaging.data.tables import find_columns, parse_number, read_table
from dlimaging.errors import InputError

_T = TypeVar("_T")
_FLOAT32_MAX = float(np.finfo("float32").max)


def read_input(path: pathlib.Path, read: Callable[[pathlib.Path], _T]) -> _T:
    """`read(path)`, with a file that cannot be read (a text file named .png, a damaged .npy,
    a CSV file that is not UTF-8) refused in one line that names it."""
    try:
        return read(path)
    except InputError:
        raise
    except ValueError as error:
        raise InputError(f"Input {str(path)!r}: {' '.join(str(error).split())}") from None
    except Exception as error:  # noqa: BLE001  PIL and numpy raise many kinds for a damaged file
        raise InputError(f"Input {str(path)!r} is unreadable ({type(error).__name__}: {error}).") from None


def as_float32(path: pathlib.Path, array: np.ndarray) -> np.ndarray:
    """The values read from `path` as float32, scaled as `load_dataset` scales them (uint8 and
    uint16 by their type's white; other numbers kept). Refuses, before casting, what float32
    cannot hold: values that are not real numbers (text, booleans, complex), NaN or inf, and
    values beyond float32's range (which the cast would turn into inf, with numpy's warning)."""
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InputError(f"Input {str(path)!r} must hold real numbers. Received dtype {array.dtype}.")
    if np.issubdtype(array.dtype, np.floating) and array.size:
        if not np.all(np.isfinite(array)):
            raise InputError(f"Input {str(path)!r} holds NaN or inf values.")
        largest = float(np.max(np.abs(array)))
        if largest > _FLOAT32_MAX:
            raise InputError(f"Input {str(path)!r} holds values up to {largest:.4g}, beyond float32's range.")
    scale = integer_scale(array.dtype)
    return np.asarray(array, "float32") / np.float32(scale or 1.0)


def read_array_file(path: pathlib.Path, suffix: str) -> np.ndarray:
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    with np.load(path, allow_pickle=False) as data:
        if not data.files:
            raise InputError(f"Input {str(path)!r} is an empty .npz file: it holds no array. "
                             "Save the samples with numpy.savez(path, x=samples).")
        return data["x" if "x" in data.files else data.files[0]]


def read_image_file(path: pathlib.Path, input_shape: tuple[int, ...]) -> np.ndarray:
    """An image (PNG, JPEG, TIFF, ...) for a model of images, resized to its height and width and
    given its channels (grey repeated for RGB; RGB to luminance for grey), or a volume (a TIFF of
    several pages) for a model of volumes, at its own size (volumes are never resized)."""
    image = read_image(path)
    if len(input_shape) not in (3, 4) or (len(input_shape) == 4) != image.volume:
        kind = "a volume" if image.volume else "an image"
        raise InputError(f"Input {str(path)!r} is {kind} of shape {image.pixels.shape}; the model takes {input_shape}.")
    pixels, channels = image.pixels, input_shape[-1]
    if not image.volume:
        pixels = resize(pixels, tuple(input_shape[:2]))
    if channels == 3 and pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    elif channels == 1 and pixels.shape[-1] in (3, 4):  # ITU-R 601-2 luma, as Pillow's convert("L")
        pixels = pixels[..., :3] @ np.asarray([0.299, 0.587, 0.114], "float32")
        pixels = pixels[..., None]
    return pixels.astype("float32")


def _csv_columns(path: pathlib.Path, header: list[str], width: int, axis, features) -> list[int]:
    """The indices of the model's feature columns in a CSV header, in the model's order: by name,
    numbers by value (`dlimaging.data.tables.find_columns`)."""
    wanted = list(features) if features else [float(v) for v in axis] if axis else None
    if wanted is None:  # the model knows no column names: every column is a feature
        if len(header) != width:
            raise InputError(
                f"Input {str(path)!r} has {len(header)} columns; the model takes {width} features and its "
                "export names no columns to pick them by. Keep only the feature columns."
            )
        return list(range(width))
    columns = find_columns(header, wanted)
    shown = [name if isinstance(name, str) else f"{name:g}" for name in wanted]
    missing = [name for name, column in zip(shown, columns) if column is None]
    if missing:
        listed = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(
            f"Input {str(path)!r} has no column {listed}: the model was trained on {len(wanted)} feature "
            f"columns (from {shown[0]!r} to {shown[-1]!r}), and a CSV input needs each of them in its header."
        )
    return columns


def read_csv_inputs(path: str | os.PathLike, input_shape: Sequence[int], *, axis: Sequence[float] | None = None,
                    features: Sequence[str] | None = None) -> np.ndarray:
    """The samples of a CSV file (a header, then one row per sample) as a float32 batch of `input_shape`.

    The model's feature columns are picked by name and put in the model's
    order: by `features` (the header names), or by `axis` (header names read
    as numbers, e.g. wavelengths); a name that is a number matches by value
    (`1000` is `1000.0`). Other columns (a target, an id) are ignored. With
    neither, every column is a feature. The header is checked as for training:
    a column named twice is refused.
    """
    path, input_shape = pathlib.Path(path), tuple(input_shape)
    width = int(np.prod(input_shape))
    header, lines, rows = read_table(path, f"Input {str(path)!r}")
    columns = _csv_columns(path, header, width, axis, features)
    values = np.empty((len(rows), len(columns)), "float64")
    for r, (line, row) in enumerate(zip(lines, rows)):
        for c, column in enumerate(columns):
            number = parse_number(row[column].strip())
            if number is None or not math.isfinite(number):
                raise InputError(
                    f"Input {str(path)!r}: row {line}, column {header[column]!r} holds {row[column]!r}, "
                    "not a finite number."
                )
            values[r, c] = number
    if values.shape[1] != width:
        raise InputError(f"Input {str(path)!r} gives {values.shape[1]} features; the model takes {input_shape}.")
    return as_float32(path, values).reshape((len(values),) + input_shape)


def load_inputs(paths: Sequence[str | os.PathLike], input_shape: Sequence[int], *,
                axis: Sequence[float] | None = None,
                features: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Reads images (png, jpg, tif), .npy/.npz arrays or .csv files into one float32 batch of `input_shape`.

    A CSV file holds a header and one sample per row; its feature columns are
    picked and ordered by `features` or `axis` (see `read_csv_inputs`).

    Values follow `load_dataset`'s rule: uint8 and uint16 arrays are scaled
    to [0, 1] by their type's white, other numbers kept; image files (16-bit
    PNGs keep every grey level, TIFFs of 8, 16 or 32 bits) have integer pixels
    scaled by their type's maximum and float pixels kept.

    Returns the batch and a label per sample: the file name, with `[i]` for
    the samples of an array file that holds a batch.
    """
    input_shape = tuple(input_shape)
    batches, labels = [], []
    for path in paths:
        path = pathlib.Path(path)
        if not path.is_file():
            raise InputError(f"Input {str(path)!r}: no such file.")
        suffix = path.suffix.lower()
        if suffix == ".csv":
            array = read_input(path, lambda p: read_csv_inputs(p, input_shape, axis=axis, features=features))
        elif suffix in (".npy", ".npz"):
            array = read_input(path, lambda p: read_array_file(p, suffix))
        else:
            array = read_input(path, lambda p: read_image_file(p, input_shape))
        array = as_float32(path, array)
        single = array.shape == input_shape
        if single:
            array = array[None]
        if array.shape[1:] != input_shape or len(array) == 0:
            raise InputError(
                f"Input {str(path)!r} has shape {array.shape}; the model takes {input_shape} "
                f"or a batch (N, {', '.join(map(str, input_shape))}) with N >= 1."
            )
        batches.append(array)
        labels.extend([str(path)] if single else [f"{path}[{i}]" for i in range(len(array))])
    if not batches:
        raise InputError("No input given: name at least one image, array or CSV file.")
    return np.concatenate(batches), labels
