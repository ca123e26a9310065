"""The `dlimaging` command: argument parsing and one-line errors, no logic of its own.

`main` runs a sub-command of `dlimaging.cli.parser` (whose handlers are in `dlimaging.cli.commands`);
a mistake in the input is one line on stderr and exit 2, a bug in dlimaging says "internal error".
"""

from __future__ import annotations

import os
import pathlib
import sys
import warnings
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from dlimaging.cli.commands import (  # noqa: E402,F401  public
    CLIError,  # noqa: E402
    parse_settings,
    parse_value,
)
from dlimaging.cli.parser import build_parser  # noqa: E402
from dlimaging.errors import InputError  # noqa: E402


def _quiet_tensorflow():
    """Imports TensorFlow with its start-up chatter on stderr silenced.

    TensorFlow's C++ start-up lines (oneDNN, CUDA probing) are written before
    its logging reads TF_CPP_MIN_LOG_LEVEL, so the file descriptor itself is
    pointed at /dev/null while TensorFlow loads and finds its devices.
    """
    import logging

    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


# ---------------------------------------------------------------- commands


def _internal_error(error: BaseException) -> int:
    """A bug in dlimaging: one line that says so, and the traceback in a log file."""
    import datetime
    import tempfile
    import traceback

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    log = pathlib.Path(tempfile.gettempdir()) / f"dlimaging-internal-error-{stamp}-{os.getpid()}.log"
    try:
        log.write_text("".join(traceback.format_exception(error)))
        where = f"the traceback is in {log}"
    except OSError:
        traceback.print_exception(error)
        where = "the traceback is above"
    message = " ".join(str(error).split())[:300]
    print(f"dlimaging: internal error ({type(error).__name__}: {message}); {where}. "
          "This is a bug in dlimaging, not in your input: please report it with that file.", file=sys.stderr)
    return 1


def _warning_line(warning: warnings.WarningMessage) -> str:
    """A warning as one line: dlimaging's own words, or the message and the library it came from."""
    message = " ".join(str(warning.message).split())
    if warning.category is UserWarning and "dlimaging" in pathlib.Path(warning.filename).parts:
        return f"dlimaging: warning: {message}"
    return f"dlimaging: warning ({warning.category.__name__}): {message}"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one sub-command; its warnings are one line each, printed once it has succeeded.

    A warning followed by an error is only the error: what went wrong is the one line a user reads.
    """
    with warnings.catch_warnings(record=True) as caught:
        code = _run(argv)
    if code == 0:
        for line in dict.fromkeys(_warning_line(w) for w in caught):
            print(line, file=sys.stderr)
    return code


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        _quiet_tensorflow()
        return int(args.func(args) or 0)
    except CLIError as error:
        print(str(error), file=sys.stderr)
        return 2
    except InputError as error:
        message = " ".join(str(error).split())
        print(f"dlimaging: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dlimaging: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `dlimaging request ... | head`
        sys.stderr.close()
        return 0
    except Exception as error:  # noqa: BLE001  anything else is dlimaging's bug
        return _internal_error(error)


if __name__ == "__main__":
    sys.exit(main())
