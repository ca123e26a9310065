"""Reading exports as TF Serving would: version folders, metadata, inputs, predictions,
REST bodies and answers, and `models.config`.

Nothing here needs the Keras model: predictions go through the SavedModel's
`serving_default` signature with TensorFlow alone.
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Any, Sequence

import numpy as np

from dlimaging.errors import InputError
from dlimaging.export import METADATA_FILE, SERVING_CONFIG_MARK, SIGNATURE, list_versions

def resolve_version_dir(path: str | os.PathLike) -> pathlib.Path:
    """`saved_models/NAME` → its newest version; `saved_models/NAME/3` → itself."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    if path.is_file():
        raise InputError(f"No exported model at {str(path)!r}: it is a file, not a model or version folder.")
    if not path.is_dir():
        raise InputError(f"No exported model at {str(path)!r}: no such folder.")
    versions = list_versions(path)
    if not versions:
        raise InputError(
            f"No exported model at {str(path)!r}: it holds no version folder (a folder named by "
            "digits, e.g. 1, holding saved_model.pb)."
        )
    return path / str(versions[-1])


def read_metadata(version_dir: str | os.PathLike) -> dict[str, Any]:
    """The `assets/dlimaging.json` of an exported version; an InputError naming the file when it
    is missing, unreadable or lacks what `predict` and `request` need."""
    from dlimaging.files import read_json

    path = pathlib.Path(version_dir) / "assets" / METADATA_FILE
    if not path.is_file():
        raise InputError(f"{str(version_dir)!r} has no {METADATA_FILE}; was it exported by dlimaging?")
    info = read_json(path, "export metadata")
    try:
        shape = [int(d) for d in info["input"]["shape"]]
        if not isinstance(info["input"]["name"], str) or not isinstance(info["task"], str) or not shape:
            raise TypeError("input.name, input.shape or task")
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"{path}: incomplete export metadata (missing or bad {error}); "
                         "export the model again.") from None
    return info


def _read_array_file(path: pathlib.Path, suffix: str) -> np.ndarray:
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    with np.load(path, allow_pickle=False) as data:
        if not data.files:
            raise InputError(f"Input {str(path)!r} is an empty .npz file: it holds no array. "
                             "Save the samples with numpy.savez(path, x=samples).")
        return data["x" if "x" in data.files else data.files[0]]


def _read_image_file(path: pathlib.Path, input_shape: tuple[int, ...]) -> np.ndarray:
    from dlimaging.sources import image_array, read_image

    if len(input_shape) != 3:
        raise InputError(f"Input {str(path)!r} is an image; the model takes {input_shape}, not images.")
    height, width, channels = input_shape
    image = read_image(path)
    return image_array(image, (height, width), rgb=channels != 1, wide=image.mode == "F")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _csv_columns(path: pathlib.Path, header: list[str], width: int, axis, features) -> list[int]:
    """The indices of the model's feature columns in a CSV header, in the model's order."""
    if features:
        wanted, found = list(features), {name.strip(): i for i, name in enumerate(header)}
        columns = [found.get(name) for name in wanted]
    elif axis:
        wanted = [f"{v:g}" for v in axis]
        numbers = [_number(name) for name in header]
        columns = []
        for value in axis:
            matches = [i for i, n in enumerate(numbers) if n is not None and math.isclose(n, value, rel_tol=1e-6,
                                                                                          abs_tol=1e-9)]
            columns.append(matches[0] if matches else None)
    else:  # the model knows no column names: every column is a feature
        if len(header) != width:
            raise InputError(
                f"Input {str(path)!r} has {len(header)} columns; the model takes {width} features and its "
                "export names no columns to pick them by. Keep only the feature columns."
            )
        return list(range(width))
    missing = [name for name, column in zip(wanted, columns) if column is None]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise InputError(
            f"Input {str(path)!r} has no column {shown}: the model was trained on {len(wanted)} feature "
            f"columns (from {wanted[0]!r} to {wanted[-1]!r}), and a CSV input needs each of them in its header."
        )
    return columns


def read_csv_inputs(path: str | os.PathLike, input_shape: Sequence[int], *, axis: Sequence[float] | None = None,
                    features: Sequence[str] | None = None) -> np.ndarray:
    """The samples of a CSV file (a header, then one row per sample) as a float32 batch of `input_shape`.

    The model's feature columns are picked by name and put in the model's
    order: by `features` (the header names), or by `axis` (header names read
    as numbers, e.g. wavelengths); other columns (a target, an id) are
    ignored. With neither, every column is a feature.
    """
    import csv

    path, input_shape = pathlib.Path(path), tuple(input_shape)
    width = int(np.prod(input_shape))
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise InputError(f"Input {str(path)!r} is not a CSV text file (it is not UTF-8).") from None
    if len(rows) < 2:
        raise InputError(f"Input {str(path)!r} needs a header row and at least one row of values.")
    header = [cell.strip() for cell in rows[0]]
    columns = _csv_columns(path, header, width, axis, features)
    values = np.empty((len(rows) - 1, len(columns)), "float64")
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InputError(f"Input {str(path)!r}: row {r} has {len(row)} cells; the header has {len(header)}.")
        for c, column in enumerate(columns):
            number = _number(row[column].strip())
            if number is None or not math.isfinite(number):
                raise InputError(
                    f"Input {str(path)!r}: row {r}, column {header[column]!r} holds {row[column]!r}, not a finite number."
                )
            values[r - 2, c] = number
    if values.shape[1] != width:
        raise InputError(f"Input {str(path)!r} gives {values.shape[1]} features; the model takes {input_shape}.")
    return values.astype("float32").reshape((len(values),) + input_shape)


def load_inputs(paths: Sequence[str | os.PathLike], input_shape: Sequence[int], *,
                axis: Sequence[float] | None = None,
                features: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Reads png/jpg images, .npy/.npz arrays or .csv files into one float32 batch of `input_shape`.

    A CSV file holds a header and one sample per row; its feature columns are
    picked and ordered by `features` or `axis` (see `read_csv_inputs`).

    Values follow `load_dataset`'s rule: uint8 and uint16 arrays and images
    (16-bit PNGs keep every grey level) are scaled to [0, 1] by their type's
    white; other numbers are kept as they are.

    Returns the batch and a label per sample: the file name, with `[i]` for
    the samples of an array file that holds a batch.
    """
    from dlimaging.sources import integer_scale

    input_shape = tuple(input_shape)
    batches, labels = [], []
    for path in paths:
        path = pathlib.Path(path)
        if not path.is_file():
            raise InputError(f"Input {str(path)!r}: no such file.")
        suffix = path.suffix.lower()
        try:
            if suffix == ".csv":
                array = read_csv_inputs(path, input_shape, axis=axis, features=features)
            elif suffix in (".npy", ".npz"):
                array = _read_array_file(path, suffix)
            else:
                array = _read_image_file(path, input_shape)
        except InputError:
            raise
        except ValueError as error:
            raise InputError(f"Input {str(path)!r}: {error}") from None
        except Exception as error:
            raise InputError(f"Input {str(path)!r} is unreadable ({type(error).__name__}: {error}).") from None
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise InputError(f"Input {str(path)!r} must hold numbers. Received dtype {array.dtype}.")
        if np.issubdtype(array.dtype, np.floating) and array.size:
            if not np.all(np.isfinite(array)):
                raise InputError(f"Input {str(path)!r} holds NaN or inf values.")
            largest = float(np.max(np.abs(array)))
            if largest > float(np.finfo("float32").max):
                raise InputError(f"Input {str(path)!r} holds values up to {largest:.4g}, beyond float32's range.")
        scale = integer_scale(array.dtype)
        array = np.asarray(array, "float32") / np.float32(scale or 1.0)
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


def predict_exported(version_dir: str | os.PathLike, x: np.ndarray, metadata: dict[str, Any]) -> dict[str, np.ndarray]:
    """Runs the `serving_default` signature with TensorFlow alone, as TF Serving would.

    `metadata` is the version's `read_metadata`: it names the signature's input.
    """
    import tensorflow as tf

    try:
        signature = tf.saved_model.load(str(version_dir)).signatures[SIGNATURE]
    except KeyError:
        raise InputError(f"{version_dir}: the SavedModel has no {SIGNATURE!r} signature.") from None
    except Exception as error:  # noqa: BLE001  TensorFlow raises many kinds for a damaged folder
        message = " ".join(str(error).split())[:200]
        raise InputError(f"{version_dir}: not a loadable SavedModel ({type(error).__name__}: {message}).") from None
    outputs = signature(**{metadata["input"]["name"]: tf.constant(np.asarray(x, "float32"))})
    return {key: value.numpy() for key, value in outputs.items()}


def serving_response(outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """TF Serving's REST answer in row format: `{"predictions": [{...}, ...]}`."""
    rows = []
    count = len(next(iter(outputs.values())))
    for index in range(count):
        row = {}
        for key in sorted(outputs):
            value = outputs[key][index]
            if isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, (np.ndarray, np.generic)):
                value = value.tolist()
            row[key] = value
        rows.append(row)
    return {"predictions": rows}


def rest_request(x: np.ndarray, metadata: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a TF Serving REST `:predict` request in row format, for the
    exported version that `metadata` (its `read_metadata`) describes."""
    name = metadata["input"]["name"]
    return {
        "signature_name": metadata.get("signature", SIGNATURE),
        "instances": [{name: sample.tolist()} for sample in np.asarray(x, "float32")],
    }


def serving_config(export_dir: str | os.PathLike, base_path: str = "/models") -> str:
    """A TF Serving `models.config` listing every exported model under `export_dir`."""
    export_dir = pathlib.Path(export_dir)
    if not export_dir.is_dir():
        raise InputError(f"`export_dir` {str(export_dir)!r}: no such folder.")
    names = sorted(p.name for p in export_dir.iterdir() if p.is_dir() and list_versions(p))
    if not names:
        raise InputError(f"`export_dir` {str(export_dir)!r} holds no exported model (NAME/VERSION/ folders).")
    entries = "".join(
        "  config {\n"
        f'    name: "{name}"\n'
        f'    base_path: "{base_path.rstrip("/")}/{name}"\n'
        '    model_platform: "tensorflow"\n'
        "  }\n"
        for name in names
    )
    return f"{SERVING_CONFIG_MARK}\nmodel_config_list {{\n" + entries + "}\n"


# ---------------------------------------------------------------- restoration: files in, files out

RESTORED_SUFFIX = "_restored"
_IMAGE_OUTPUTS = (".png", ".npy")
_SIGNAL_OUTPUTS = (".csv", ".npy")


def read_restoration_input(path: str | os.PathLike, input_shape: Sequence[int]) -> tuple[np.ndarray, dict[str, Any]]:
    """One file for a restoration model, at its own size: an image (png, jpg, ...; 8- or 16-bit,
    scaled to [0, 1]), an array (.npy: one sample or a batch) or, for signals, a CSV file (a
    header, then one signal per row). Returns a batch of the model's rank and what writing
    the result back needs; refuses a number of channels the model does not take."""
    path, input_shape = pathlib.Path(path), tuple(input_shape)
    rank, channels = len(input_shape), input_shape[-1]
    if not path.is_file():
        raise InputError(f"Input {str(path)!r}: no such file.")
    suffix = path.suffix.lower()
    info: dict[str, Any] = {"suffix": suffix, "wide": False, "header": None, "shape": None}
    if suffix == ".csv":
        if rank != 2 or channels != 1:
            raise InputError(f"Input {str(path)!r} is a CSV file of signals; the model restores {input_shape[:-1]} "
                             f"{'images' if rank == 3 else 'signals'} of {channels} channel(s). Use a .npy file.")
        import csv

        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
        if len(rows) < 2:
            raise InputError(f"Input {str(path)!r} needs a header row and at least one signal per row.")
        values = [[_number(cell.strip()) for cell in row] for row in rows[1:]]
        if any(len(row) != len(rows[0]) or any(v is None or not math.isfinite(v) for v in row) for row in values):
            raise InputError(f"Input {str(path)!r}: every row must hold one finite number per header column.")
        info["header"] = [cell.strip() for cell in rows[0]]
        return np.asarray(values, "float32")[..., None], info
    if suffix in (".npy", ".npz"):
        from dlimaging.sources import integer_scale

        array = _read_array_file(path, suffix)
        info["shape"] = array.shape
        scale = integer_scale(array.dtype) or 1.0
        array = np.asarray(array, "float32") / np.float32(scale)
        if array.ndim == rank - 1 and channels == 1:
            array = array[..., None]  # (length,) or (height, width): one channel
        if array.ndim == rank:
            array = array[None]
    else:
        from dlimaging.sources import read_image

        if rank != 3:
            raise InputError(f"Input {str(path)!r} is an image; the model restores signals {input_shape}, not images.")
        image = read_image(path)
        info["wide"] = image.mode == "F"
        if image.mode == "RGB":
            array = np.asarray(image, "float32") / 255.0
        else:
            array = np.asarray(image, "float32")[..., None] / (65535.0 if info["wide"] else 255.0)
        array = array[None]
    if array.ndim != rank + 1 or not np.all(np.isfinite(array)):
        raise InputError(f"Input {str(path)!r} has shape {info['shape']}; the model restores samples of rank {rank} "
                         f"with {channels} channel(s), e.g. {input_shape}, or a batch of them (finite numbers).")
    if array.shape[-1] != channels:
        kind = {1: "grey", 3: "colour (RGB)"}.get(array.shape[-1], f"{array.shape[-1]}-channel")
        wanted = {1: "grey", 3: "colour (RGB)"}.get(channels, f"{channels}-channel")
        raise InputError(
            f"Input {str(path)!r} has {array.shape[-1]} channel(s) ({kind}); the model restores {wanted} "
            f"inputs of {channels} channel(s). Convert it first. Received: an input of shape {array.shape[1:]}")
    return array, info


def restored_path(source: pathlib.Path, out: pathlib.Path | None, count: int, images: bool) -> pathlib.Path:
    """Where a restored file goes: `out` itself (one input, a file name), `out/NAME_restored.EXT`
    (a folder), or `NAME_restored.EXT` next to the input. Images become PNG; signals keep CSV or .npy."""
    allowed = _IMAGE_OUTPUTS if images else _SIGNAL_OUTPUTS
    suffix = ".png" if images and source.suffix.lower() not in (".npy", ".npz") else (
        source.suffix.lower() if source.suffix.lower() in allowed else ".npy")
    name = f"{source.stem}{RESTORED_SUFFIX}{suffix}"
    if out is None:
        return source.with_name(name)
    if out.suffix and not out.is_dir():
        if count != 1:
            raise InputError(f"--out {str(out)!r} is one file, for one input; {count} inputs need a folder.")
        if out.suffix.lower() not in allowed:
            raise InputError(f"--out {str(out)!r}: a restored {'image' if images else 'signal'} is written as "
                             f"{' or '.join(allowed)}. Received: {out.suffix}")
        if out.resolve() == source.resolve():
            raise InputError(f"--out {str(out)!r} is the input itself; it is never overwritten.")
        return out
    return out / name


def write_restored(path: pathlib.Path, restored: np.ndarray, info: dict[str, Any]) -> pathlib.Path:
    """Writes a restored batch as PNG (one image), .npy (the input's layout) or CSV (the input's header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".png":
        from PIL import Image

        white = 65535 if info.get("wide") else 255
        levels = np.round(np.clip(restored[0], 0.0, 1.0) * white).astype("uint16" if white > 255 else "uint8")
        Image.fromarray(levels[..., 0] if levels.shape[-1] == 1 else levels).save(path)
    elif suffix == ".csv":
        header = info.get("header") or [str(i) for i in range(restored.shape[1])]
        lines = [",".join(header)] + [",".join(f"{v:.7g}" for v in row[:, 0]) for row in restored]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        shape = info.get("shape")
        np.save(path, restored.reshape(shape) if shape is not None and np.prod(shape) == restored.size else restored)
    return path


def restore_files(version_dir, metadata: dict[str, Any], inputs: Sequence[str | os.PathLike],
                  out: str | os.PathLike | None = None) -> list[tuple[str, pathlib.Path, tuple[int, ...]]]:
    """Runs an exported restoration model on each file at its own size and writes the result
    (see `restored_path`); returns (input, output, shape) per file."""
    shape = metadata["input"]["shape"]
    out = None if out is None else pathlib.Path(out)
    images = len(shape) == 3
    planned = []
    for source in inputs:
        x, info = read_restoration_input(source, shape)
        planned.append((pathlib.Path(source), x, info, restored_path(pathlib.Path(source), out, len(inputs), images)))
    written = []
    for source, x, info, target in planned:
        restored = predict_exported(version_dir, x, metadata)["restored"]
        if images and target.suffix.lower() == ".png" and len(restored) != 1:
            raise InputError(f"Input {str(source)!r} holds {len(restored)} images; a PNG holds one. Use --out NAME.npy.")
        written.append((str(source), write_restored(target, restored, info), tuple(x.shape[1:])))
    return written
