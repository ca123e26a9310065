"""Labels read as the task's: class ids, 0/1, 0/1 vectors or numbers.

Which task a source's labels mean (`declared_task`: the one given, checked against the
labels, or the one they imply), and the labels in that task's dtype and shape
(`read_labels`), with the mistakes named: a mismatch, one class, NaN, text where numbers
are needed.
"""

from __future__ import annotations

import warnings

import numpy as np

from dlimaging import registry
from dlimaging.errors import InputError

_FLOAT32_MAX = float(np.finfo("float32").max)
# The largest class label: every integer up to 2**53 is a float64 of its own, so labels read as
# floats (from a CSV file, a float array) stay distinct, and each fits in int64.
MAX_CLASS_LABEL = 2**53


def _describe(y: np.ndarray) -> str:
    """What labels look like, for a message: dtype, shape and a few values."""
    flat = np.asarray(y).reshape(-1)[:4]
    if np.issubdtype(flat.dtype, np.floating):
        values = [float(f"{v:.4g}") for v in flat]
    else:
        values = flat.tolist()
    return f"dtype {y.dtype}, shape {y.shape}, e.g. {values}"


def _is_numeric(y: np.ndarray) -> bool:
    """Real numbers: complex labels are not, their imaginary part would be dropped."""
    return np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating) or y.dtype == np.bool_


def _is_integral(y: np.ndarray) -> bool:
    return np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_ or bool(np.all(y == np.round(y)))


def _is_zero_one(y: np.ndarray) -> bool:
    return bool(np.all((y == 0) | (y == 1)))


def _kind_of_labels(y: np.ndarray) -> str:
    """The kind of labels (see `registry.Task.labels`) that `y` looks like, when no task is declared:
    one integer per sample → classes; a 0/1 matrix → 0/1 vectors; other numbers → numbers."""
    if y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1):
        return "classes" if _is_integral(y) else "numbers"
    return "0/1 vectors" if _is_zero_one(y) else "numbers"


def _named(key: str, info: dict) -> str:
    """How the user knows `y` or `y_test`: a CSV file's `target` columns, else the array's name."""
    return info.get("label_names", {}).get(key, f"`{key}`")


def _check_real(source: str, key: str, y: np.ndarray, info: dict):
    if np.issubdtype(y.dtype, np.complexfloating):
        raise InputError(
            f"`source` {source!r}: {_named(key, info)} holds complex numbers; labels and targets must be real "
            f"(the imaginary part would be lost). Received {_describe(y)}"
        )


def _check_label_values(source: str, arrays: dict[str, np.ndarray], info: dict):
    """Labels must be numbers, finite, one row per sample; `y` and `y_test` alike."""
    for key in ("y", "y_test"):
        if key not in arrays:
            continue
        y = arrays[key]
        _check_real(source, key, y, info)
        if not _is_numeric(y):
            raise InputError(
                f"`source` {source!r}: {_named(key, info)} must hold numbers: integer class labels, 0/1 labels or numeric "
                f"targets. Received {_describe(y)}"
            )
        if y.ndim not in (1, 2) or 0 in y.shape[1:]:
            raise InputError(
                f"`source` {source!r}: {_named(key, info)} must be one label per sample (N,) or one row of targets per "
                f"sample (N, K). Received {_describe(y)}"
            )
        if np.issubdtype(y.dtype, np.floating) and not np.all(np.isfinite(y)):
            bad = int(np.count_nonzero(~np.isfinite(y)))
            raise InputError(
                f"`source` {source!r}: {_named(key, info)} holds {bad} NaN or inf value(s); targets must be finite."
            )
    if "y_test" in arrays and arrays["y"].reshape(len(arrays["y"]), -1).shape[1] != \
            arrays["y_test"].reshape(len(arrays["y_test"]), -1).shape[1]:
        raise InputError(
            f"`source` {source!r}: `y` and `y_test` have different shapes per sample "
            f"({arrays['y'].shape} and {arrays['y_test'].shape})."
        )


def declared_task(source: str, task: str | None, arrays, class_names, info) -> str:
    """The task: declared, else the source's own (e.g. regression for the generator), else the labels'."""
    if task is not None:
        return task
    if info.get("task"):
        return info["task"]
    if class_names:  # the source names its classes: folders, tfds, built-ins, CSV text labels
        return registry.DEFAULT_TASK
    if not _is_numeric(arrays["y"]):
        _check_label_values(source, arrays, info)  # raises, naming what the labels look like
    return registry.task_for_labels(_kind_of_labels(arrays["y"]))


def _mismatch(source: str, task: str, needs: str, key: str, y: np.ndarray, info: dict) -> InputError:
    return InputError(f"`source` {source!r}: task={task!r} needs {needs}; {_named(key, info)} holds {_describe(y)}")


def _class_ids(source: str, task: str, arrays: dict[str, np.ndarray], class_names: list[str], info) -> list[str]:
    """Integer labels checked and mapped to 0..C-1, in place; returns the class names. Labels that
    are not 0..C-1 (gaps, large values) are mapped in sorted order, and their original values
    become the class names."""
    keys = [key for key in ("y", "y_test") if key in arrays]
    for key in keys:
        y = arrays[key]
        if y.ndim == 2 and y.shape[1] == 1:
            y = arrays[key] = y[:, 0]
        if y.ndim != 1 or not _is_integral(y):
            raise _mismatch(source, task, "integer class labels, one per sample", key, y, info)
        if np.min(y) < 0:
            raise InputError(f"`source` {source!r}: {_named(key, info)} holds negative labels (min {np.min(y)}).")
        if np.max(y) > MAX_CLASS_LABEL:
            raise InputError(
                f"`source` {source!r}: {_named(key, info)} holds the label {float(np.max(y)):.4g}; class labels must be "
                f"integers from 0 to 2**53 ({MAX_CLASS_LABEL:.4g}), beyond which two labels can be one number. "
                f"If they are numbers to predict, pass task='regression'. Received {_describe(y)}"
            )
    if class_names:  # the source names its classes (folders, tfds, built-ins, CSV text labels)
        return class_names
    values = np.unique(np.concatenate([arrays[key] for key in keys])).astype("int64")
    if len(values) < 2:
        raise InputError(
            f"`source` {source!r} holds a single class (every label is {values[0]}); "
            f"task={task!r} needs at least 2."
        )
    if values[-1] != len(values) - 1:
        shown = ", ".join(str(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")
        warnings.warn(
            f"`source` {source!r}: its {len(values)} labels ({shown}) are not 0..{len(values) - 1}; "
            f"they are mapped to 0..{len(values) - 1} in sorted order, and the class names keep "
            "the original labels.",
            UserWarning, stacklevel=4,
        )
        for key in keys:
            arrays[key] = np.searchsorted(values, arrays[key].astype("int64"))
    return [str(v) for v in values]


def read_labels(source: str, task: str, arrays, class_names: list[str], info) -> dict:
    """Reads the labels as `task`'s, in place (dtype and rank from its registry entry), and returns
    what describes them: class names, target names, the number of classes and of outputs."""
    entry = registry.task(task)
    keys = [key for key in ("y", "y_test") if key in arrays]
    for key in keys:
        _check_real(source, key, arrays[key], info)
    if entry.labels == "numbers" and (class_names or not all(_is_numeric(arrays[k]) for k in keys)):
        shown = ", ".join(map(str, class_names[:5])) if class_names else _describe(arrays["y"])
        raise InputError(
            f"`source` {source!r}: task={task!r} needs numeric targets, but its labels are classes or text "
            f"({shown})."
        )
    _check_label_values(source, arrays, info)
    described = {"class_names": [], "target_names": None, "num_classes": None, "num_outputs": 1}
    if entry.labels in ("classes", "two classes"):
        names = _class_ids(source, task, arrays, list(class_names), info)
        num_classes = max(len(names), int(max(arrays[k].max() for k in keys)) + 1)
        if len(names) < num_classes:
            names = [str(i) for i in range(num_classes)]
        if entry.labels == "two classes" and num_classes != 2:
            raise InputError(
                f"`source` {source!r}: task={task!r} needs two classes; the labels hold {num_classes} "
                f"({', '.join(names[:6])}{', ...' if num_classes > 6 else ''})."
            )
        if num_classes < 2:
            raise InputError(f"`source` {source!r} holds a single class; task={task!r} needs at least 2.")
        described.update(class_names=names, num_classes=num_classes)
    elif entry.labels == "0/1 vectors":
        for key in keys:
            y = arrays[key]
            if y.ndim != 2:
                raise _mismatch(source, task, "0/1 targets of shape (N, K)", key, y, info)
            if not _is_zero_one(y):
                raise _mismatch(source, task, "0/1 targets, one column per label", key, y, info)
        count = arrays["y"].shape[1]
        names = list(info.get("target_names") or [str(i) for i in range(count)])
        described.update(class_names=names, target_names=names, num_classes=count)
    else:
        for key in keys:
            if arrays[key].ndim == 1:
                arrays[key] = arrays[key][:, None]
            largest = float(np.max(np.abs(arrays[key])))
            if largest > _FLOAT32_MAX:
                raise InputError(
                    f"`source` {source!r}: {_named(key, info)} holds values up to {largest:.4g}, beyond float32's range."
                )
        count = arrays["y"].shape[1]
        names = list(info.get("target_names") or (["y"] if count == 1 else [f"y{i + 1}" for i in range(count)]))
        described.update(target_names=names, num_outputs=count)
    for key in keys:
        y = arrays[key].astype(entry.label_dtype)
        arrays[key] = y.reshape(len(y), -1) if entry.label_rank == 2 else y.reshape(len(y))
    return described
