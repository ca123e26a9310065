"""CSV tables, read the same way for training (`dlimaging.data.sources.load_csv`) and for
prediction (`dlimaging.serving.inputs`): one reader, one header check, one rule for names.

A header name that is a number (a wavelength, a wavenumber) names a column by its value:
`1000`, `1000.0` and `1e3` are the same column, so a header that names it twice is refused,
and a model trained on `1000` finds it in a file that writes `1000.0`. Other names are
matched as written, without the spaces around them.
"""

from __future__ import annotations

import bisect
import csv
import math
import pathlib
from typing import Sequence

from dlimaging.errors import InputError

# Two numeric names within this relative distance name the same column: float32 holds about
# 7 significant digits, so an axis stored as float32 still finds the columns it was read from.
NAME_TOLERANCE = 1e-7


def parse_number(text: str) -> float | None:
    """The number a text spells (spaces around it allowed), or None."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def column_key(name: str | float) -> str | float:
    """What a column name is matched by: its value when it is a finite number, else its text."""
    if isinstance(name, (int, float)) and not isinstance(name, bool):
        return float(name)
    number = parse_number(name)
    return number if number is not None and math.isfinite(number) else str(name).strip()


def _same_number(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=NAME_TOLERANCE, abs_tol=1e-12)


def find_columns(header: Sequence[str], wanted: Sequence[str | float]) -> list[int | None]:
    """The index in `header` of each wanted column (a name or a number), or None where it has none.

    Example:
    >>> find_columns(["id", "1000.0", "1100"], ["1100.0", 1000, "id", "y"])
    [2, 1, 0, None]
    """
    keys = [column_key(name) for name in header]
    texts = {key: index for index, key in enumerate(keys) if isinstance(key, str)}
    numbers = sorted((key, index) for index, key in enumerate(keys) if isinstance(key, float))
    values = [value for value, _ in numbers]
    found: list[int | None] = []
    for name in wanted:
        key = column_key(name)
        if isinstance(key, str):
            found.append(texts.get(key))
            continue
        place = bisect.bisect_left(values, key)
        near = [i for i in (place - 1, place) if 0 <= i < len(values) and _same_number(values[i], key)]
        found.append(numbers[min(near, key=lambda i: abs(values[i] - key))][1] if near else None)
    return found


def check_header(header: Sequence[str], label: str) -> None:
    """Every column has a name, and no two name the same column (numbers compared by value)."""
    for index, name in enumerate(header):
        if not name.strip():
            raise InputError(f"{label}: column {index + 1} of the header row has no name.")
    keys = [column_key(name) for name in header]
    twice = {name for name, key in zip(header, keys) if isinstance(key, str) and keys.count(key) > 1}
    numbers = sorted((key, name) for name, key in zip(header, keys) if isinstance(key, float))
    for (a, first), (b, second) in zip(numbers, numbers[1:]):
        if _same_number(a, b):
            twice.update((first, second))
    if twice:
        raise InputError(
            f"{label}: the header names column(s) {sorted(twice)} more than once (numbers are compared by "
            "value, so '1000' and '1000.0' are one column); each column must be named once."
        )


def read_table(path: pathlib.Path, label: str, *, named_header: bool = False) -> tuple[list[str], list[int], list]:
    """A CSV file's header (names stripped of spaces), the line number of each data row, and the
    rows (lists of strings, as long as the header). Blank lines are skipped.

    Args:
        path: the file.
        label: how errors name it, e.g. "`source` 'my.csv'" or "Input 'new.csv'".
        named_header: refuse a first row that is all numbers (a file without a header).
    """
    if not path.is_file():
        raise InputError(f"{label}: no such CSV file.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise InputError(f"{label} is not a CSV text file (it is not UTF-8).") from None
    except csv.Error as error:
        raise InputError(f"{label} is not a readable CSV file ({error}).") from None
    if not rows:
        raise InputError(f"{label} is empty; it needs a header row and one row per sample.")
    header = [cell.strip() for cell in rows[0][1]]
    if named_header and all(parse_number(cell) is not None for cell in header):
        shown = ", ".join(header[:4]) + (", ..." if len(header) > 4 else "")
        raise InputError(
            f"{label} needs a header row: its first row is all numbers ({shown}). "
            "Add a first row of column names, e.g. the target's name and the wavelengths."
        )
    check_header(header, label)
    if len(rows) == 1:
        raise InputError(f"{label} has a header row but no data rows.")
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise InputError(f"{label}, row {line}: {len(row)} cells, but the header has {len(header)} columns.")
    return header, [line for line, _ in rows[1:]], [row for _, row in rows[1:]]
