"""The sources' loaders: each turns a source string into numpy arrays and class names.

`dlimaging.registry.SOURCES` names them; `dlimaging.data.dataset.load_dataset` checks,
splits and batches what they return.
"""

from __future__ import annotations

import functools
import pathlib
import warnings

import numpy as np

from dlimaging import registry
from dlimaging.data.spectra import make_spectra
from dlimaging.data.tables import find_columns, parse_number, read_table
from dlimaging.errors import InputError
from dlimaging.validation import check_positive_int


def load_digits(source, **_options):
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


def load_mnist1d(source, **_options):
    x, y, x_test, y_test = _mnist1d_arrays()
    arrays = {"x": x.copy(), "y": y.copy(), "x_test": x_test.copy(), "y_test": y_test.copy()}
    return arrays, [str(i) for i in range(10)], source


def load_npz(source: str, **_options):
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


def load_coffee(source, **_options):
    """chemotools' coffee spectra, read through chemotools' own loader (it needs pandas)."""
    from chemotools.datasets import load_coffee

    spectra, labels = load_coffee()
    x = spectra.to_numpy(dtype="float32")[..., None]
    names = labels.iloc[:, 0].astype(str).to_numpy()
    class_names = sorted(set(names))
    y = np.searchsorted(class_names, names).astype("int64")
    # The columns are point numbers (0..1840), not wavenumbers: the set ships no axis.
    return {"x": x, "y": y}, class_names, source


# The options of `spectra:NAME=VALUE,...`, with their defaults and types. `samples` spectra make the
# training data and `test_samples` more, from the next seed and the same pure spectra, the test set.
SPECTRA_OPTIONS = {"samples": 2000, "test_samples": 500, "length": 256, "components": 3,
                   "difficulty": "medium", "seed": 0}


def _spectra_options(source: str, prefix: str | None) -> dict:
    options = dict(SPECTRA_OPTIONS)
    text = source[len(prefix):] if prefix and source.startswith(prefix) else ""
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, equals, value = (part.strip() for part in item.partition("="))
        if key not in SPECTRA_OPTIONS:
            raise InputError(
                f"`source` {source!r}: unknown option {key!r}; the options are "
                f"{', '.join(f'{k}={v}' for k, v in SPECTRA_OPTIONS.items())}."
            )
        if not equals or not value:
            raise InputError(f"`source` {source!r}: option {key!r} needs a value, e.g. {key}={SPECTRA_OPTIONS[key]}.")
        if isinstance(SPECTRA_OPTIONS[key], int):
            try:
                value = int(value)
            except ValueError:
                raise InputError(
                    f"`source` {source!r}: option {key} must be an integer. Received: {key}={value!r}"
                ) from None
        options[key] = value
    try:  # `make_spectra` calls both `samples`: name each as its option is
        for key in ("samples", "test_samples"):
            check_positive_int(key, options[key])
    except InputError as error:
        raise InputError(f"`source` {source!r}: {error}") from None
    return options


def load_spectra(source: str, *, prefix=None, task=None, **_options):
    options = _spectra_options(source, prefix)
    dominant = task is not None and registry.task(task).labels == "classes"
    common = dict(length=options["length"], components=options["components"], difficulty=options["difficulty"],
                  target="dominant" if dominant else "concentrations", pure_seed=options["seed"])
    try:
        train = make_spectra(options["samples"], seed=options["seed"], **common)
        test = make_spectra(options["test_samples"], seed=(options["seed"] + 1) % 2**32, **common)
    except InputError as error:
        raise InputError(f"`source` {source!r}: {error}") from None
    arrays = {"x": train.x, "y": train.y, "x_test": test.x, "y_test": test.y}
    name = source.split(":", 1)[0]
    info = {"axis": [float(v) for v in train.axis], "axis_name": "wavenumber (cm⁻¹)"}
    if dominant:
        return arrays, list(train.target_names), name, info
    info.update(target_names=list(train.target_names), task=registry.task_for_labels("numbers"))
    return arrays, [], name, info


# With no task declared, one target column of integers is read as class labels when it holds at most
# this many distinct values, and as numbers (regression) when it holds more.
CSV_MAX_GUESSED_CLASSES = 20


def _is_number(text: str) -> bool:
    return parse_number(text) is not None


def _read_csv(path: pathlib.Path, argument: str) -> tuple[list[str], list[int], np.ndarray]:
    """The header, the line number of each data row, and the cells (rows, columns) as strings."""
    header, lines, rows = read_table(path, f"`{argument}` {str(path)!r}", named_header=True)
    return header, lines, np.array(rows, dtype=str)


def _bad_cell(label: str, lines, cells: np.ndarray, names) -> InputError:
    """The error for the first cell of `cells` (rows, columns) that is not a finite number."""
    for row, line in enumerate(lines):
        for column, name in enumerate(names):
            text = str(cells[row, column])
            if not _is_number(text):
                what = "is empty" if not text.strip() else f"{text!r} is not a number"
                return InputError(f"{label}, row {line}, column {name!r}: {what}.")
            if not np.isfinite(float(text)):
                return InputError(
                    f"{label}, row {line}, column {name!r}: {text.strip()!r} is NaN or infinite; "
                    "every value must be a finite number."
                )
    raise AssertionError("no bad cell")  # only called when a conversion failed


def _numbers(label: str, lines, cells: np.ndarray, names) -> np.ndarray:
    """The cells as float64; a cell that is not a finite number is an error naming its row and column."""
    try:
        values = cells.astype("float64")
    except ValueError:
        raise _bad_cell(label, lines, cells, names) from None
    if not np.all(np.isfinite(values)):
        raise _bad_cell(label, lines, cells, names)
    return values


def _columns(argument: str, value, header: list[str], path: pathlib.Path) -> list[str]:
    """`target` or `features`: one column name or a list of them, each in the header (a number
    matches by value, see `dlimaging.data.tables`); returned as the header spells them."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        raise InputError(
            f"`{argument}` must be a column name or a list of column names of {str(path)!r}. "
            f"Received: {argument}={value!r}"
        )
    columns = find_columns(header, names)
    for name, column in zip(names, columns):
        if column is None:
            shown = header if len(header) <= 12 else header[:8] + ["..."] + header[-3:]
            raise InputError(
                f"`{argument}`={name!r} is not a column of {str(path)!r}; its {len(header)} columns are: "
                f"{', '.join(shown)}."
            )
    duplicates = sorted({header[c] for c in columns if columns.count(c) > 1})
    if duplicates:
        raise InputError(f"`{argument}` names {duplicates} more than once. Received: {argument}={value!r}")
    return [header[c] for c in columns]


def _csv_targets(label, lines, cells, targets):
    """The target columns: numbers (float64), or one column of text labels (str)."""
    if len(targets) == 1 and not any(_is_number(text) for text in cells[:, 0]):
        empty = [line for line, text in zip(lines, cells[:, 0]) if not text.strip()]
        if empty:
            raise InputError(f"{label}, row {empty[0]}, column {targets[0]!r}: is empty.")
        return np.char.strip(cells[:, 0])
    values = _numbers(label, lines, cells, targets)
    return values[:, 0] if len(targets) == 1 else values


def load_csv(source: str, *, target=None, features=None, test=None, **_options):
    path = pathlib.Path(source)
    header, lines, cells = _read_csv(path, "source")
    if target is None:
        shown = ", ".join(header[:6]) + (", ..." if len(header) > 6 else "")
        raise InputError(
            f"`source` {source!r} is a CSV file: `target` must name its target column(s) "
            f"(its columns: {shown}). Received: target=None"
        )
    targets = _columns("target", target, header, path)
    label = f"`source` {source!r}"
    if features is not None:
        names = _columns("features", features, header, path)
        both = [n for n in names if n in targets]
        if both:
            raise InputError(f"`features` and `target` both name {both}. Received: features={features!r}")
    else:
        names, text = [], []
        for index, name in enumerate(header):
            if name in targets:
                continue
            # A column without a single number (a sample name, a date) is not part of the signal.
            (names if any(_is_number(cell) for cell in cells[:, index]) else text).append(name)
        if not names:
            raise InputError(f"{label}: no numeric column besides the target {targets}; nothing to learn from.")
        if text:
            warnings.warn(f"{label}: the column(s) {text} hold no numbers and are left out of the signal.",
                          UserWarning, stacklevel=4)

    def read(label, header, lines, cells):
        take = lambda wanted: cells[:, find_columns(header, wanted)]  # noqa: E731
        return _numbers(label, lines, take(names), names)[..., None], _csv_targets(label, lines, take(targets), targets)

    x, y = read(label, header, lines, cells)
    arrays = {"x": x, "y": y}
    if test is not None:
        test_path = pathlib.Path(test)
        test_header, test_lines, test_cells = _read_csv(test_path, "test")
        missing = [n for n, c in zip(targets + names, find_columns(test_header, targets + names)) if c is None]
        if missing:
            raise InputError(
                f"`test` {str(test_path)!r} lacks the column(s) {missing[:8]} of `source` {source!r}; "
                "it needs the same target and feature columns."
            )
        arrays["x_test"], arrays["y_test"] = read(f"`test` {str(test_path)!r}", test_header, test_lines, test_cells)

    class_names = []
    if arrays["y"].dtype.kind == "U" or ("y_test" in arrays and arrays["y_test"].dtype.kind == "U"):
        keys = [k for k in ("y", "y_test") if k in arrays]
        class_names = sorted(set().union(*(set(arrays[k].astype(str)) for k in keys)))
        for key in keys:
            arrays[key] = np.searchsorted(class_names, arrays[key].astype(str)).astype("int64")
    info = {"target_names": targets, "feature_names": names,
            "label_names": {"y": f"`target`={target!r}", "y_test": f"`target`={target!r} in `test` {test!r}"}}
    if all(_is_number(n) for n in names):
        info["axis"] = [float(n) for n in names]
    y_all = np.concatenate([arrays[k].reshape(len(arrays[k]), -1) for k in ("y", "y_test") if k in arrays])
    if not class_names and len(targets) == 1 and len(np.unique(y_all)) > CSV_MAX_GUESSED_CLASSES:
        info["task"] = registry.task_for_labels("numbers")
    return arrays, class_names, path.stem, info
