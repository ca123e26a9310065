"""The errors dlimaging raises.

`InputError` is the base of every error caused by what the user gave: an
argument, a file, a setting. It is a `ValueError`, so callers that catch
`ValueError` keep working. The command line turns it into one line on stderr
and exit status 2; any other exception is a bug in dlimaging (an internal
error) and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: an argument, a file or a setting that dlimaging cannot use."""
