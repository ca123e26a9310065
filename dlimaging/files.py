"""Reading and writing the files dlimaging keeps: atomically, and naming the file when it fails."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pathlib
import re
import socket
from typing import Any, Callable, Iterator

from dlimaging.errors import InputError

NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
NAME_MAX_BYTES = 255  # the longest file name most file systems allow


def folder_name_problem(value) -> str | None:
    """What makes `value` unfit as a folder name, or None: the rule for an experiment's `name` and
    an export's `--name` (letters, digits, _ . -; at most 255 bytes; not "." or "..")."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value) or value in (".", ".."):
        return "must be a plain folder name: letters, digits, _ . - only"
    if len(value.encode()) > NAME_MAX_BYTES:
        return (f"must be at most {NAME_MAX_BYTES} characters, the longest folder name a file system "
                f"allows (received {len(value)})")
    return None


def check_folder_name(key: str, value) -> str:
    """`value` if it is a plain folder name (see `folder_name_problem`); an InputError otherwise."""
    problem = folder_name_problem(value)
    if problem:
        shown = value if not isinstance(value, str) or len(value) <= 60 else value[:60] + "..."
        raise InputError(f"`{key}` {problem}. Received: {key}={shown!r}")
    return value


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


def check_output_dir(path, what: str = "output folder") -> pathlib.Path:
    """Checks, before any work, that the folder `path` exists or can be created, and can be written.

    Walks up to the first part of `path` that exists: that part must be a folder
    (not a file, and no file may sit where a folder of `path` should be) and
    writable. Creates nothing.

    Raises:
        InputError: naming `what` and the path, and why it cannot be used.
    """
    path = pathlib.Path(path)
    probe = path
    while not os.path.lexists(probe):
        if probe.parent == probe:
            break
        probe = probe.parent
    if os.path.lexists(probe) and not probe.is_dir():
        where = "is a file" if probe == path else f"sits under a file ({probe})"
        raise InputError(f"{what} {path} {where}, not a folder; pass another one.")
    if not os.access(probe, os.W_OK | os.X_OK):
        doing = "cannot be written" if probe == path else f"cannot be created: {probe} is not writable"
        raise InputError(f"{what} {path} {doing}.")
    return path


def check_output_file(path, what: str = "output file") -> pathlib.Path:
    """Checks, before any work, that the file `path` can be written: not a folder, in a folder that can be."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, not a file; pass a file name.")
    try:
        check_output_dir(path.parent)
    except InputError as error:
        why = str(error).removeprefix(f"output folder {path.parent} ")
        if why.startswith("is a file"):
            why = f"sits under a file ({path.parent}), not a folder; pass another one."
        raise InputError(f"{what} {path} {why}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{what} {path} cannot be written.")
    return path


RULE = "dlimaging never replaces a file it did not write in this run"


def _taken(path: pathlib.Path, claimed: set | None) -> bool:
    return os.path.lexists(path) or (claimed is not None and path.absolute() in claimed)


def claim_output(path, *, option: str = "--out", given: bool = True, claimed: set | None = None,
                 inputs=()) -> pathlib.Path:
    """The file to write for the user at `path`, checked before any work: the one rule of every file
    dlimaging writes for a user, that it never replaces a file it did not write in this run.

    A name the user gave (`given`: `--out cam.png`, a file in `--output DIR`) that is taken is
    refused, naming it: the user would otherwise find an old file where they look. A name dlimaging
    made up (`NAME_restored.png`) that is taken moves to the next free `NAME_restored-2.png`,
    `-3`, ..., which the caller prints. A name is taken when something exists there, or when
    `claimed` (the run's registry: a set the caller keeps for the run) holds it; the name returned
    is added to `claimed`, so that two inputs of one run never write to one file.

    Args:
        path: the file's path.
        option: how the user names it, for the messages ("--out", "`out`"). Defaults to "--out".
        given: bool. Whether the user gave this name (True) or dlimaging made it up. Defaults to True.
        claimed: set or None. The paths (absolute) this run claimed so far; updated. Defaults to None.
        inputs: the run's input files, which are never written over. Defaults to ().

    Raises:
        InputError: `path` is a folder, cannot be written, or is a given name that is taken.
    """
    path = pathlib.Path(path)
    check_output_file(path, option)
    if given and os.path.exists(path) and any(os.path.exists(i) and os.path.samefile(i, path) for i in inputs):
        raise InputError(f"{option} {path} is an input of this run; it is never overwritten. Pass another {option}.")
    if given and _taken(path, claimed):
        raise InputError(f"{option} {path} already exists and was left as it is ({RULE}). "
                         f"Pass another {option}, or remove it.")
    free, number = path, 1
    while _taken(free, claimed):
        number += 1
        free = path.with_name(f"{path.stem}-{number}{path.suffix}")
    if claimed is not None:
        claimed.add(free.absolute())
    return free


def write_new(path, save: Callable[[pathlib.Path], Any]) -> pathlib.Path:
    """Writes a new file at `path` through `save(tmp)`, which writes a temporary file beside it (with
    `path`'s suffix, for writers that read the format from it), then links it into place only if
    nothing is there yet: a file that appeared since `claim_output` is never replaced.

    Raises:
        InputError: something was written at `path` in the meantime.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        save(tmp)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise InputError(f"{path} appeared while this run was writing it, and was left as it is ({RULE}). "
                             "Run again to write it elsewhere.") from None
        except OSError:  # a file system without hard links: the same, not atomically
            if os.path.lexists(path):
                raise InputError(f"{path} appeared while this run was writing it, and was left as it is "
                                 f"({RULE}). Run again to write it elsewhere.") from None
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


LOCK = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextlib.contextmanager
def folder_lock(folder, *, printer: Callable[[str], None] = print, command: str = "dlimaging") -> Iterator[pathlib.Path]:
    """Holds `folder/.lock` (JSON: pid, host, started) for the duration of the block.

    The lock file is created in one step (written aside, then hard-linked into
    place), so another process sees no lock or a whole one. A lock held by a
    running process refuses with its PID and host; one left by a process that
    is gone (same host, PID no longer alive) is taken over, with a message. The
    lock is removed on the way out, exceptions and Ctrl-C included; a folder
    that the lock alone created is removed with it.

    Raises:
        InputError: when another process holds the lock, or the lock file is unreadable.
    """
    folder = pathlib.Path(folder)
    created = []  # the folders the lock alone creates, deepest first
    missing = folder
    while not missing.exists() and missing.parent != missing:
        created.append(missing)
        missing = missing.parent
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK
    mine = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    tmp = folder / f"{LOCK}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(mine))
    try:
        for _ in range(3):
            try:
                os.link(tmp, lock)
                break
            except FileExistsError:
                pass
            try:
                holder = read_json(lock, "lock file")
                pid, host = int(holder["pid"]), str(holder["host"])
            except InputError as error:
                if not lock.exists():
                    continue  # released meanwhile
                raise InputError(f"{error} Remove it if no {command} is running on {folder}.") from None
            except (KeyError, TypeError, ValueError):
                raise InputError(f"{lock}: unreadable lock file (no pid and host); remove it if no "
                                 f"{command} is running on {folder}.") from None
            if host != mine["host"] or _alive(pid):
                raise InputError(f"{folder} is in use by {command} (PID {pid} on host {host}, since "
                                 f"{holder.get('started', '?')}); wait for it to finish, or remove {lock} "
                                 "if that process is gone.")
            printer(f"Taking over the lock on {folder} from PID {pid} on {host}, which is no longer running.")
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
        else:
            raise InputError(f"{lock}: could not take the lock; try again.")
    finally:
        tmp.unlink(missing_ok=True)
    try:
        yield lock
    finally:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if json.loads(lock.read_text())["pid"] == mine["pid"]:
                lock.unlink()
        for made in created:  # only while empty: a run that wrote nothing leaves nothing
            try:
                made.rmdir()
            except OSError:
                break
