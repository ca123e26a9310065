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
import os
import pathlib
import shutil
import uuid
from typing import Any, Sequence

import numpy as np

from dlimaging import __version__, registry
from dlimaging.errors import InputError
from dlimaging.files import check_folder_name, check_output_dir
from dlimaging.models.field import tiling_info
from dlimaging.validation import check_number, check_positive_int, is_ascii_digits

METADATA_FILE = "dlimaging.json"
SERVING_CONFIG_MARK = "# written by dlimaging serving-config"
SIGNATURE = "serving_default"
_TMP_PREFIX = ".tmp-"


class ExportError(RuntimeError):
    """The exported SavedModel does not reproduce the Keras model."""


def infer_task(model) -> str:
    """The task of a model: the one its builder recorded (`model.dlimaging_task`), else the one
    its output layer implies.

    The builders record their task on the model they return (a multilabel model of one output is
    then not mistaken for a binary one). A model loaded from a file, or a Keras model from
    elsewhere, has no record: the table is read instead, for the task whose output activation
    matches and, where two share one (sigmoid), whose number of output units matches.
    """
    recorded = getattr(model, "dlimaging_task", None)
    if recorded in registry.TASKS:
        return recorded
    from dlimaging.models.ensemble import parallel_members

    members = parallel_members(model)
    if members:  # an ensemble's output is its members' mean: theirs tells the task
        return infer_task(members[0])
    activation = getattr(getattr(model.layers[-1], "activation", None), "__name__", "linear")
    units = model.output_shape[-1]
    if len(model.output_shape) > 2 and len(model.output_shape) == len(model.input_shape):
        # An output with the input's spatial axes: a task whose targets have the input's (spatial)
        # shape, the one whose output activation matches (softmax: a class per pixel).
        spatial = [name for name, entry in registry.TASKS.items() if entry.label_rank is None]
        return next((name for name in spatial if registry.TASKS[name].output_activation == activation), spatial[0])
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
        "restored": lambda y, names: y,
        "class_id": class_id,
        "class_name": class_name,
        "class_map": class_id,  # the class of each pixel
    }


def _output_names(task: str, class_names) -> list[str]:
    """The task's served outputs; "class_name" only when the classes have names."""
    return [name for name in registry.task(task).outputs if name != "class_name" or class_names]


def _predictor(model, self_ensemble: bool):
    """The model's forward pass, or its mean over the flips and rotations (`dlimaging.models.self_ensemble`)."""
    from dlimaging.models.self_ensemble import self_ensemble as ensembled

    forward = lambda x: model(x, training=False)  # noqa: E731
    return (lambda x: ensembled(forward, x)) if self_ensemble else forward


def _serving_function(model, task: str, class_names: Sequence[str] | None, self_ensemble: bool = False):
    import tensorflow as tf

    names = tf.constant(list(class_names)) if class_names else None
    computed = _served_outputs()
    wanted = _output_names(task, class_names)
    predict = _predictor(model, self_ensemble)

    def serve(x):
        outputs = predict(x)
        return {name: computed[name](outputs, names) for name in wanted}

    return serve


def any_size(task: str) -> bool:
    """Whether the task's exports take inputs of any spatial size: those whose targets have the
    input's (spatial) shape (`label_rank` None in `dlimaging.registry.TASKS`: restored images,
    masks), from fully convolutional models."""
    return registry.task(task).label_rank is None


def _signature_shape(input_shape: Sequence[int], task: str) -> tuple:
    """The signature's input shape: the batch, then the model's shape, or any spatial size."""
    if any_size(task):
        return (None,) * len(input_shape) + (input_shape[-1],)
    return (None,) + tuple(input_shape)


def _verify_other_size(signature, input_name: str, sample: np.ndarray, key: str) -> None:
    """An export that takes any spatial size must answer one that is 3 larger on each axis
    (not a multiple of anything) with an output of that shape."""
    import tensorflow as tf

    pads = [(0, 0)] + [(0, 3)] * (sample.ndim - 2) + [(0, 0)]
    larger = np.pad(sample[:1], pads, mode="reflect")
    got = signature(**{input_name: tf.constant(larger)})[key].numpy()
    if got.shape[:-1] != larger.shape[:-1] or not np.all(np.isfinite(got)):
        raise ExportError(
            f"The exported SavedModel answers an input of shape {larger.shape} with {got.shape}; it should take "
            "any spatial size. Nothing was published."
        )


def _verify(path: pathlib.Path, model, input_name: str, sample: np.ndarray, atol: float, key: str,
            other_sizes: bool = False, self_ensemble: bool = False) -> None:
    """Reloads the export and compares its `key` output with the Keras model (self-ensembled, if the
    export is), at batch 1 and at the sample's; with `other_sizes`, checks it also takes another
    spatial size."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures[SIGNATURE]
    if other_sizes:
        _verify_other_size(signature, input_name, sample, key)
    expected = np.asarray(_predictor(model, self_ensemble)(tf.constant(sample)))
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
    self_ensemble: bool = False,
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
        self_ensemble: bool. Restoration models only: the served function
            returns the mean of the model over the 8 flips and quarter turns of
            the image (2 orientations of a signal), each turned back; it costs
            8 (2) forward passes. Defaults to False.

    Returns:
        The path of the published version folder.

    Example:
    >>> path = export_saved_model(model, "saved_models/digits_cnn")  # doctest: +SKIP
    """
    import keras
    import tensorflow as tf


    input_shape, task, class_names = _check_model(model, task, class_names)
    self_ensemble = check_self_ensemble(self_ensemble, task)
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
            _serving_function(model, task, class_names, self_ensemble),
            input_signature=[tf.TensorSpec(_signature_shape(input_shape, task), tf.float32, name=input_name)],
        )
        archive.write_out(str(tmp), verbose=False)
        _verify(tmp, model, input_name, sample, atol, key=registry.task(task).outputs[0], other_sizes=any_size(task),
                self_ensemble=self_ensemble)
        info = {
            "name": model_dir.name, "version": int(target.name), "task": task, "class_names": class_names,
            "target_names": target_names,
            "input": {"name": input_name, "shape": list(input_shape), "dtype": "float32",
                      "value_range": [float(v) for v in value_range], "axis": axis, "features": features,
                      "any_size": any_size(task)},
            "outputs": _output_names(task, class_names), "signature": SIGNATURE, "self_ensemble": self_ensemble,
            "tiling": tiling_info(model) if any_size(task) else None,
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
    registry.task(task)  # refuses a name that is not in the table
    if any(d is None for d in model.inputs[0].shape[1:]):
        raise InputError(f"`model` needs a fully known input shape. Received: {model.inputs[0].shape}")
    class_names = _check_class_names(class_names, task, model.output_shape[-1])
    return tuple(int(d) for d in model.inputs[0].shape[1:]), task, class_names


def check_self_ensemble(self_ensemble, task: str) -> bool:
    """`self_ensemble`, a bool, true only for a restoration model (its output is the input's image)."""
    if not isinstance(self_ensemble, bool):
        raise InputError(f"`self_ensemble` must be True or False. Received: self_ensemble={self_ensemble!r}")
    if self_ensemble and registry.task(task).labels != registry.CLEAN:
        raise InputError(f"`self_ensemble` averages a restored image over its flips and rotations: it applies to "
                         f"restoration models, not to a {task} model. Received: self_ensemble=True")
    return self_ensemble


def _check_class_names(class_names, task: str, units: int) -> list[str] | None:
    """`class_names` as a list, if they fit the task and its `units` output units; refused otherwise.

    A task without classes (`Task.class_names` false: numbers, a restored image) takes none; the
    task whose table entry fixes one output unit (binary: the probability of the second class)
    takes 2 names, the negative class first; the others (classification, multilabel) one per unit.
    """
    entry = registry.task(task)
    if class_names is None:
        return None
    if not isinstance(class_names, (list, tuple)) or not all(isinstance(c, str) for c in class_names):
        raise InputError(
            "`class_names` must be a list of strings, one per class. "
            f"Received: class_names={class_names!r}"
        )
    if not entry.class_names:
        if not class_names:
            return None
        raise InputError(
            f"`class_names` is only for tasks with classes; a {task} model has none (it answers with "
            f"{', '.join(entry.outputs)}). Leave them out. Received: class_names={list(class_names)!r}"
        )
    expected = 2 if entry.units == 1 else units
    if len(class_names) != expected:
        what = (f"2 names for a {task} model: the class of p < 0.5, then that of p >= 0.5" if entry.units == 1
                else f"one name per output unit ({expected}) for this {task} model")
        raise InputError(f"`class_names` must have {what}. Received {len(class_names)}: "
                         f"class_names={list(class_names)!r}")
    return [str(c) for c in class_names]


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
