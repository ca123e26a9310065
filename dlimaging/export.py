"""Export to versioned SavedModels for TensorFlow Serving.

`export_saved_model` writes `model_dir/<version>/`, TF Serving's
`model_base_path` layout, through `keras.export.ExportArchive` with an
endpoint that calls the model with `training=False` (Keras's own
`model.export()` leaves augmentation layers active). A version is written
beside its target under a hidden temporary name, reloaded and compared with
the Keras model, and only then renamed into place in one step.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
import shutil
import uuid
from typing import Any, Sequence

import numpy as np

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.validation import check_number, is_ascii_digits

METADATA_FILE = "dlimaging.json"
SERVING_CONFIG_MARK = "# written by dlimaging serving-config"
SIGNATURE = "serving_default"
_TMP_PREFIX = ".tmp-"


class ExportError(RuntimeError):
    """The exported SavedModel does not reproduce the Keras model."""


def infer_task(model) -> str:
    """The task a model's output layer implies, for models that were not built with a task.

    dlimaging's own entry points pass the task they trained for; this is the
    fallback for a Keras model from elsewhere. It reads the table: the task
    whose output activation matches, and, where two share one (sigmoid), whose
    number of output units matches.
    """
    activation = getattr(getattr(model.layers[-1], "activation", None), "__name__", "linear")
    units = model.output_shape[-1]
    matches = [name for name, entry in registry.TASKS.items() if entry.output_activation == activation]
    exact = [name for name in matches if registry.TASKS[name].units == units]
    flexible = [name for name in matches if not isinstance(registry.TASKS[name].units, int)]
    # Any other output (linear, relu, ...) is read as numbers: the task with numeric outputs.
    numeric = [name for name, entry in registry.TASKS.items() if entry.units == "num_outputs"]
    return (exact or flexible or matches or numeric)[0]


def input_name_for(input_shape: Sequence[int]) -> str:
    """The signature's input name: features (vectors), signal (1D), image (2D), volume (3D)."""
    return {1: "features", 2: "signal", 3: "image", 4: "volume"}[len(input_shape)]


def list_versions(model_dir: str | os.PathLike) -> list[int]:
    """The numeric version folders under `model_dir`, sorted."""
    model_dir = pathlib.Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and is_ascii_digits(p.name))


def _served_outputs():
    """How each served output is computed from the model's output (`dlimaging.registry.Task.outputs`)."""
    import tensorflow as tf

    def class_id(y, names):
        return tf.argmax(y, axis=-1, output_type=tf.int64)

    def class_name(y, names):
        return tf.gather(names, class_id(y, names))

    return {
        "probabilities": lambda y, names: y,
        "predictions": lambda y, names: y,
        "class_id": class_id,
        "class_name": class_name,
    }


def _output_names(task: str, class_names) -> list[str]:
    """The task's served outputs; "class_name" only when the classes have names."""
    return [name for name in registry.task(task).outputs if name != "class_name" or class_names]


def _serving_function(model, task: str, class_names: Sequence[str] | None):
    import tensorflow as tf

    names = tf.constant(list(class_names)) if class_names else None
    computed = _served_outputs()
    wanted = _output_names(task, class_names)

    def serve(x):
        outputs = model(x, training=False)
        return {name: computed[name](outputs, names) for name in wanted}

    return serve


def _verify(path: pathlib.Path, model, input_name: str, sample: np.ndarray, atol: float, key: str) -> None:
    """Reloads the export and compares its `key` output with the Keras model, at batch 1 and at the sample's."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures[SIGNATURE]
    expected = np.asarray(model(sample, training=False))
    for batch in (sample[:1], sample):
        got = signature(**{input_name: tf.constant(batch)})
        want = expected[: len(batch)]
        if not np.allclose(got[key].numpy(), want, atol=atol, rtol=1e-4):
            diff = float(np.max(np.abs(got[key].numpy() - want)))
            raise ExportError(
                f"The exported SavedModel differs from the Keras model by up to {diff:.3g} "
                f"(tolerance {atol}); nothing was published."
            )
        again = signature(**{input_name: tf.constant(batch)})[key].numpy()
        if not np.array_equal(again, got[key].numpy()):
            raise ExportError("The exported SavedModel gives different outputs on repeated calls; nothing was published.")


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    from dlimaging import __version__

    return {"dlimaging": __version__, "tensorflow": tf.__version__, "keras": keras.__version__}


def export_saved_model(
    model,
    model_dir: str | os.PathLike,
    *,
    version: int | None = None,
    class_names: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    task: str | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    sample: np.ndarray | None = None,
    atol: float = 1e-5,
    target_names: Sequence[str] | None = None,
    axis: Sequence[float] | None = None,
    features: Sequence[str] | None = None,
) -> pathlib.Path:
    """Exports a Keras model as version `version` of a TF Serving model folder.

    Args:
        model: a `keras.Model` with one input and one output.
        model_dir: str or path. The model's base folder, e.g.
            `saved_models/digits_cnn`; the export goes to `model_dir/<version>/`.
        version: int or None. Version number; an existing version is never
            overwritten. Defaults to None (the last version plus 1, from 1).
        class_names: list of str or None. Adds a "class_name" output to
            classifiers and goes into the metadata. Defaults to None.
        metadata: dict or None. More metadata, e.g. `{"hyperparameters": {...},
            "metrics": {...}}`, written into `assets/dlimaging.json`.
            Defaults to None.
        task: str or None. A task of `dlimaging.registry.TASKS`, written into
            the metadata; it picks the served outputs. Defaults to None (read
            from the output layer, for models not built by dlimaging).
        value_range: (low, high). The input values the model expects,
            recorded in the metadata. Defaults to (0.0, 1.0).
        sample: array or None. A batch used to check the export against the
            Keras model. Defaults to None (random values in `value_range`).
        atol: float. Largest allowed difference in that check. Defaults to 1e-5.
        target_names: list of str or None. The names of the numeric outputs
            (regression), one per output unit, in the metadata; `predict`
            prints them. Ignored for tasks with classes. Defaults to None.
        axis: list of numbers or None. The signal's axis (e.g. the
            wavelengths of a CSV's feature columns), in the metadata; `predict`
            uses it to pick and order a CSV's columns. Defaults to None.
        features: list of str or None. The feature columns' names as they
            appear in a CSV header, for the same purpose. Defaults to None.

    Returns:
        The path of the published version folder.

    Example:
    >>> path = export_saved_model(model, "saved_models/digits_cnn")  # doctest: +SKIP
    """
    import keras
    import tensorflow as tf

    from dlimaging.experiment import check_folder_name
    from dlimaging.files import check_output_dir

    input_shape, task, class_names = _check_model(model, task, class_names)
    target_names, axis, features = _check_names(model, task, input_shape, target_names, axis, features)
    value_range, sample = _check_export_arguments(input_shape, metadata, value_range, sample, atol)
    model_dir = pathlib.Path(model_dir)
    check_folder_name("model_dir", model_dir.name)  # the model's name in TF Serving
    check_output_dir(model_dir, "`model_dir`")
    target = _new_version_dir(model_dir, version)
    input_name = input_name_for(input_shape)
    if sample is None:
        sample = np.random.default_rng(0).uniform(value_range[0], value_range[1], (4,) + input_shape)
    sample = np.asarray(sample, "float32")

    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f"{_TMP_PREFIX}{target.name}-{uuid.uuid4().hex[:8]}"
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            SIGNATURE,
            _serving_function(model, task, class_names),
            input_signature=[tf.TensorSpec((None,) + input_shape, tf.float32, name=input_name)],
        )
        archive.write_out(str(tmp), verbose=False)
        _verify(tmp, model, input_name, sample, atol, key=registry.task(task).outputs[0])
        info = {
            "name": model_dir.name, "version": int(target.name), "task": task, "class_names": class_names,
            "target_names": target_names,
            "input": {"name": input_name, "shape": list(input_shape), "dtype": "float32",
                      "value_range": [float(v) for v in value_range], "axis": axis, "features": features},
            "outputs": _output_names(task, class_names), "signature": SIGNATURE,
            "hyperparameters": None, "metrics": None, "versions": _versions(),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **(metadata or {}),
        }
        (tmp / "assets").mkdir(exist_ok=True)
        (tmp / "assets" / METADATA_FILE).write_text(json.dumps(info, indent=2, default=_jsonable))
        if target.exists():  # another process published it while we wrote
            raise InputError(f"`version` {target.name} appeared at {target} during the export; nothing was overwritten.")
        os.rename(tmp, target)  # one step: TF Serving never sees a half-written version
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _check_model(model, task, class_names):
    """(input shape, task, class names) of a model that can be exported; refuses one that cannot."""
    import keras

    if not isinstance(model, keras.Model):
        raise InputError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise InputError(
            "`model` must have one input and one output to be exported. "
            f"Received: {len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    if task is None:
        task = infer_task(model)
    entry = registry.task(task)  # refuses a name that is not in the table
    if any(d is None for d in model.inputs[0].shape[1:]):
        raise InputError(f"`model` needs a fully known input shape. Received: {model.inputs[0].shape}")
    if not entry.class_names:
        class_names = None  # e.g. regression: its outputs are numbers, not classes
    if class_names is not None:
        if not isinstance(class_names, (list, tuple)) or not all(isinstance(c, str) for c in class_names):
            raise InputError(
                "`class_names` must be a list of strings, one per class. "
                f"Received: class_names={class_names!r}"
            )
        class_names = [str(c) for c in class_names]
        if entry.units == "num_classes" and len(class_names) != model.output_shape[-1]:
            raise InputError(
                f"`class_names` must have one name per class ({model.output_shape[-1]}). "
                f"Received {len(class_names)}: class_names={class_names!r}"
            )
    return tuple(int(d) for d in model.inputs[0].shape[1:]), task, class_names


def _check_names(model, task, input_shape, target_names, axis, features):
    """`target_names` (numeric outputs only: None otherwise), `axis` and `features` (one per
    feature: the input's first axis), checked; returned as lists or None."""
    entry = registry.task(task)
    if entry.units != "num_outputs":
        target_names = None  # outputs of classes are named by `class_names`
    if target_names is not None:
        if isinstance(target_names, str):
            target_names = [target_names]
        if not isinstance(target_names, (list, tuple)) or not all(isinstance(n, str) for n in target_names):
            raise InputError(f"`target_names` must be a list of strings. Received: target_names={target_names!r}")
        if len(target_names) != model.output_shape[-1]:
            raise InputError(
                f"`target_names` must have one name per output ({model.output_shape[-1]}). "
                f"Received {len(target_names)}: target_names={list(target_names)!r}"
            )
        target_names = [str(n) for n in target_names]
    if axis is not None:
        try:
            axis = [float(v) for v in axis]
        except (TypeError, ValueError):
            raise InputError(f"`axis` must be a list of numbers. Received: axis={axis!r}") from None
    if features is not None:
        if not isinstance(features, (list, tuple)) or not all(isinstance(n, str) for n in features):
            raise InputError(f"`features` must be a list of column names. Received: features={features!r}")
        features = [str(n) for n in features]
    for name, values in (("axis", axis), ("features", features)):
        if values is not None and len(values) != input_shape[0]:
            raise InputError(
                f"`{name}` must have one entry per point of the input ({input_shape[0]}). Received {len(values)}."
            )
    return target_names, axis, features


def _check_export_arguments(input_shape, metadata, value_range, sample, atol):
    """`metadata`, `value_range`, `sample` and `atol`, checked before any export work; returns
    the value range as floats and the sample as a float32 batch (or None)."""
    if metadata is not None and not isinstance(metadata, dict):
        raise InputError(f"`metadata` must be a dict or None. Received: metadata={metadata!r}")
    if (not isinstance(value_range, (tuple, list)) or len(value_range) != 2
            or any(isinstance(v, bool) for v in value_range)):
        raise InputError(f"`value_range` must be (low, high). Received: value_range={value_range!r}")
    low = check_number("value_range[0]", value_range[0])
    high = check_number("value_range[1]", value_range[1])
    if high < low:
        raise InputError(f"`value_range` must be (low, high) with low <= high. Received: value_range={value_range!r}")
    check_number("atol", atol, low=0.0)
    if sample is not None:
        try:
            sample = np.asarray(sample, "float32")
        except (TypeError, ValueError):
            raise InputError(f"`sample` must be an array of numbers. Received: {type(sample).__name__}") from None
        if sample.shape == input_shape:
            sample = sample[None]
        if sample.shape[1:] != input_shape or len(sample) == 0:
            raise InputError(
                f"`sample` must be a batch of shape (N, {', '.join(map(str, input_shape))}) with N >= 1, "
                f"the model's input. Received: sample of shape {sample.shape}"
            )
        if not np.all(np.isfinite(sample)):
            raise InputError("`sample` holds NaN or inf values.")
    return (float(low), float(high)), sample


def _new_version_dir(model_dir: pathlib.Path, version) -> pathlib.Path:
    """`model_dir/<version>`, the next version by default; an existing one is refused."""
    from dlimaging.validation import check_positive_int

    existing = list_versions(model_dir)
    following = (existing[-1] + 1) if existing else 1
    version = check_positive_int("version", following if version is None else version)
    target = model_dir / str(version)
    if target.exists():
        raise InputError(
            f"`version` {version} already exists at {target}; exports are never overwritten. "
            f"Existing versions: {existing}. Leave `version` out to get {following}."
        )
    return target


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


# ---------------------------------------------------------------- reading exports


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
