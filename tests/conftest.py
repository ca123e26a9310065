import glob
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield


_INTERNAL_ERROR_LOGS = os.path.join(tempfile.gettempdir(), "dlimaging-internal-error-*.log")
_seen_logs = set(glob.glob(_INTERNAL_ERROR_LOGS))


@pytest.fixture(autouse=True)
def _no_internal_error():
    """Fails a test after which a new internal-error log exists: user input must never end in one.

    The log may come from this test, from a command it ran in a subprocess, or (under
    `pytest -n`) from a test running at the same time in another worker; its traceback is shown.
    Tests that provoke an internal error on purpose point TMPDIR at their own folder.
    """
    yield
    new = sorted(set(glob.glob(_INTERNAL_ERROR_LOGS)) - _seen_logs)
    _seen_logs.update(new)
    if new:
        tracebacks = "\n".join(f"{log}:\n{open(log).read()}" for log in new)
        pytest.fail(f"an internal error was logged during this test (or one running beside it):\n{tracebacks}")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def free_port() -> int:
    """A free TCP port on loopback, for a chief and its workers."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
