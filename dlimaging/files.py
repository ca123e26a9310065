"""Reading and writing the files dlimaging keeps: atomically, and naming the file when it fails."""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from dlimaging.errors import InputError


def write_atomically(path, text: str, *, sync: bool = False) -> None:
    """Writes `text` to a temporary file beside `path` and renames it into place: readers,
    and a run killed mid-write, see the old file or the new one, never half of one."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as handle:
        handle.write(text)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)


def read_json(path, what: str = "file") -> Any:
    """The parsed JSON at `path`; an `InputError` naming the file when it is missing or unreadable."""
    path = pathlib.Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: unreadable {what} ({type(error).__name__}: {error}).") from None
