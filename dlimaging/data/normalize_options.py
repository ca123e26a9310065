"""`normalize`'s values, checked without TensorFlow (tuning files, the command line): "dtype",
"percentile" or "percentile:LOW,HIGH"; see `dlimaging.data.normalize`."""

from __future__ import annotations

from dlimaging import registry
from dlimaging.errors import InputError

DEFAULT_PERCENTILES = (1.0, 99.8)


def check_normalize(value, name: str = "normalize") -> tuple[float, float] | None:
    """The percentile bounds (low, high) of a `normalize` value, or None for "dtype" (and None).
    Refuses anything else in one line naming `name`."""
    allowed = '"dtype", "percentile" or "percentile:LOW,HIGH" (0 <= LOW < HIGH <= 100)'
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"`{name}` must be {allowed}. Received: {name}={value!r}")
    mode, _, bounds = value.strip().partition(":")
    if mode not in registry.NORMALIZE_MODES or (mode == "dtype" and bounds):
        raise InputError(f"`{name}` must be {allowed}. Received: {name}={value!r}")
    if mode == "dtype":
        return None
    if not bounds:
        return DEFAULT_PERCENTILES
    try:
        low, high = (float(part) for part in bounds.split(","))
    except ValueError:
        raise InputError(f"`{name}` must be {allowed}. Received: {name}={value!r}") from None
    if not (0.0 <= low < high <= 100.0):
        raise InputError(f"`{name}`'s percentiles must satisfy 0 <= LOW < HIGH <= 100. Received: {name}={value!r}")
    return low, high


def normalize_name(bounds: tuple[float, float] | None) -> str:
    """The canonical text of a checked `normalize`: "dtype" or "percentile:LOW,HIGH"."""
    return "dtype" if bounds is None else f"percentile:{bounds[0]:g},{bounds[1]:g}"


def check_normalize_setting(name: str, value) -> str:
    """A `[data] normalize` setting: its canonical text ("dtype", "percentile:1,99.8")."""
    return normalize_name(check_normalize(value, name))
