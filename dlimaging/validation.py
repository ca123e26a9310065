"""Argument checks shared by every public function.

Each check raises `InputError` (a ``ValueError``) naming the argument, the value received and
what is allowed, in the form Keras uses:
``ValueError: `dropout` must be in [0, 1). Received: dropout=1.5``.
"""

from __future__ import annotations

import math
import numbers
import os
import pathlib
from typing import Any, Callable, Iterable, Sequence

from dlimaging.errors import InputError


def _fmt(value: Any) -> str:
    return repr(value)


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    allowed = list(allowed)
    if value not in allowed:
        shown = ", ".join(_fmt(a) for a in allowed)
        raise InputError(
            f"`{name}` must be one of {shown}. Received: {name}={_fmt(value)}"
        )
    return value


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    integer: bool = False,
) -> Any:
    """Checks that `value` is a real (or integer) number inside a range."""
    kind = "an integer" if integer else "a number"
    is_num = isinstance(value, numbers.Integral if integer else numbers.Real)
    if isinstance(value, bool) or not is_num:
        raise InputError(f"`{name}` must be {kind}. Received: {name}={_fmt(value)}")
    if not isinstance(value, numbers.Integral) and not math.isfinite(value):
        raise InputError(f"`{name}` must be a finite number. Received: {name}={_fmt(value)}")
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        if integer and low == 1 and high is None:
            raise InputError(f"`{name}` must be a positive integer. Received: {name}={_fmt(value)}")
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise InputError(
            f"`{name}` must be {kind} in {left}{lo}, {hi}{right}. "
            f"Received: {name}={_fmt(value)}"
        )
    return value


def check_max_val(max_val: Any) -> float:
    """`max_val`, the data's value range (the white of an image: 1.0 for data in [0, 1]), a finite
    number > 0. PSNR and SSIM, as functions, metrics, losses and in figures, all check it here: 0 would
    give −inf dB and a negative value NaN."""
    if (isinstance(max_val, bool) or not isinstance(max_val, numbers.Real) or not math.isfinite(max_val)
            or max_val <= 0):
        raise InputError("`max_val` must be a positive finite number (the data's value range: 1.0 for data in "
                         f"[0, 1]). Received: max_val={_fmt(max_val)}")
    return float(max_val)


def check_same_shape(names: tuple[str, str], shapes: tuple[Sequence, Sequence], what: str) -> None:
    """Two arrays compared element by element (`what`) must have one shape: no broadcasting (a batch of
    one against a batch of two would be compared twice). Dimensions still unknown (None) are not compared."""
    a, b = (tuple(None if d is None else int(d) for d in shape) for shape in shapes)
    if len(a) != len(b) or any(i is not None and j is not None and i != j for i, j in zip(a, b)):
        raise InputError(f"`{names[0]}` and `{names[1]}` must have the same shape ({what}). "
                         f"Received: {names[0]} of shape {a} and {names[1]} of shape {b}")


def check_positive_int(name: str, value: Any) -> int:
    return int(check_number(name, value, low=1, integer=True))


def _cgroup_room() -> int | None:
    """The bytes a cgroup v2 memory limit still allows this process (containers), or None."""
    try:
        limit = pathlib.Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int(pathlib.Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes of memory that new arrays can take: Linux's MemAvailable (within a container's limit),
    else the machine's physical memory, else None when the system does not say."""
    found = None
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if found is None:
        try:
            found = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None
    room = _cgroup_room()
    return found if room is None else min(found, max(room, 0))


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if nbytes < 1000 or unit == "PB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000


def check_fits_in_memory(what: str, nbytes: float, fix: str) -> None:
    """Refuses, before anything is allocated, arrays that need more memory than is available.

    Args:
        what: what would be made, e.g. "2000 spectra of length 1000000000".
        nbytes: the estimated bytes.
        fix: how to ask for less, e.g. "Use a smaller `length`."
    """
    available = available_memory()
    if available is not None and nbytes > available:
        raise InputError(f"{what} would need about {_size(nbytes)} of memory; {_size(available)} is available. {fix}")


def as_int_tuple(name: str, value: Any, *, allow_empty: bool = True) -> tuple[int, ...]:
    """Accepts an int or a sequence of positive ints and returns a tuple."""
    items = value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        items = (value,)
    if not isinstance(items, (list, tuple)) or any(
        isinstance(item, bool) or not isinstance(item, numbers.Integral) or item < 1
        for item in items
    ):
        raise InputError(
            f"`{name}` must be a positive integer or a tuple of them. "
            f"Received: {name}={_fmt(value)}"
        )
    if not allow_empty and len(items) == 0:
        raise InputError(
            f"`{name}` must hold at least one positive integer. Received: {name}={_fmt(value)}"
        )
    return tuple(int(v) for v in items)


# What the axes of one sample mean, by its rank (without the batch axis).
SHAPE_BY_RANK = {
    1: "(features,)",
    2: "(length, channels)",
    3: "(height, width, channels)",
    4: "(depth, height, width, channels)",
}


def check_input_shape(value: Any, ranks: Sequence[int], what: str = "The model") -> tuple[int, ...]:
    """`input_shape` without the batch axis, of one of the given ranks."""
    shape = as_int_tuple("input_shape", value, allow_empty=False)
    if len(shape) not in ranks:
        allowed = " or ".join(str(r) for r in ranks)
        shapes = ", ".join(SHAPE_BY_RANK[r] for r in ranks)
        raise InputError(
            f"`input_shape` must have {allowed} dimensions (without the batch axis): "
            f"{what} takes {shapes}. Received: input_shape={_fmt(value)}"
        )
    return shape


def check_seed(name: str, value: Any) -> int:
    """A seed that every random generator used here accepts: an integer in [0, 2**32 - 1]."""
    return int(check_number(name, value, low=0, high=2**32 - 1, integer=True))


def is_ascii_digits(text: str) -> bool:
    """Whether `text` is a number in ASCII digits, as a version folder or a port is: `int()` takes
    it. (`str.isdigit` is True for '²', which `int()` refuses.)"""
    return text.isascii() and text.isdecimal()


# ---------------------------------------------------------------- one check per argument
# The rule for each numeric (or tuple) argument, written once. The builders, the augmentation
# factories and the experiment schema (on fixed values, each choice and each range's bounds)
# all call `check_argument`, so a bad `[search]` range fails before a run starts with the very
# message the builder would give. This module imports no TensorFlow.

FLIP_MODES = (None, "horizontal", "vertical", "horizontal_and_vertical")
POOLINGS = ("max", "avg", None, "none")  # "none" is None, for experiment files (TOML has no null)
CONV_KINDS = ("standard", "separable")
HEADS = ("flatten", "global_avg", "global_max")
PADDINGS = ("same", "valid")
# "global": one mean and variance over every value; "per_feature": one per position and channel.
STANDARDIZE_MODES = ("none", "global", "per_feature")
# "circular": the signal wraps around; "edge": values shifted in repeat the edge value.
SHIFT_MODES = ("circular", "edge")
# "plain": convs then pooling; "residual": two convs around a skip connection (He et al.).
BLOCKS = ("plain", "residual")
# The learning rate over training: flat, cosine decay to 0, or exponential decay to 1%.
SCHEDULES = ("constant", "cosine", "exponential")


def fraction_below_one(name, value):
    return check_number(name, value, low=0.0, high=1.0, high_inclusive=False)


def fraction(name, value):
    return check_number(name, value, low=0.0, high=1.0)


def non_negative(name, value):
    return check_number(name, value, low=0.0)


def positive(name, value):
    return check_number(name, value, low=0.0, low_inclusive=False)


def sizes(name, value):
    return as_int_tuple(name, value, allow_empty=False)


def non_negative_int(name, value):
    return int(check_number(name, value, low=0, integer=True))


def optional_positive_int(name, value):
    return None if value is None else check_positive_int(name, value)


def optional_boolean(name, value):
    if value is not None and not isinstance(value, bool):
        raise InputError(f"`{name}` must be True, False or None. Received: {name}={_fmt(value)}")
    return value


def choice_of(allowed):
    """A check that `value` is one of `allowed` (an iterable, or a table whose keys are the names)."""
    return lambda name, value: check_choice(name, value, list(allowed))


def boolean(name, value):
    if not isinstance(value, bool):
        raise InputError(f"`{name}` must be true or false. Received: {name}={value!r}")
    return value


def non_empty_string(name, value):
    if not isinstance(value, str) or not value:
        raise InputError(f"`{name}` must be a non-empty string. Received: {name}={value!r}")
    return value


def optional_string(name, value):
    return None if value is None else non_empty_string(name, value)


def image_size(name, value):
    """None, or [height, width] of positive integers (a TOML list), as a tuple."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise InputError(f"`{name}` must be [height, width] of positive integers. Received: {name}={value!r}")
    return tuple(value)


def column_names(name, value):
    """None, one column name, or a non-empty list of them (TOML strings)."""
    if value is None:
        return None
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise InputError(f"`{name}` must be a column name or a non-empty list of them. Received: {name}={value!r}")


def class_weights(name, value):
    """"balanced", or non-negative weights (a list, one per class; the class count is checked when
    the model is built), as a tuple; None for no weights."""
    if value is None or value == "balanced":
        return value
    if isinstance(value, (list, tuple)) and value:
        return tuple(non_negative(f"{name}[{i}]", v) for i, v in enumerate(value))
    raise InputError(f"`{name}` must be 'balanced' or a list of weights >= 0, one per class. Received: {name}={value!r}")


def at_least_two(name, value):
    return check_number(name, value, low=2, integer=True)


ARGUMENT_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    # builders
    "dropout": fraction_below_one,
    "l1": non_negative,
    "l2": non_negative,
    "filters": sizes,
    "hidden_units": as_int_tuple,
    "dense_units": as_int_tuple,
    "kernel_size": sizes,
    "strides": sizes,
    "convs_per_block": optional_positive_int,  # None: 1 in a plain block, 2 in a residual one
    "block": choice_of(BLOCKS),
    "dilation_rate": sizes,  # one for every block, or one per block
    "batch_norm_momentum": fraction_below_one,
    "label_smoothing": fraction_below_one,
    "padding": choice_of(PADDINGS),
    "pooling": choice_of(POOLINGS),
    "conv": choice_of(CONV_KINDS),
    "head": choice_of(HEADS),
    "standardize": choice_of(STANDARDIZE_MODES),
    "batch_norm": boolean,
    "residual": boolean,  # a U-Net's output added to its input
    "class_weight": class_weights,  # segmentation
    "scale_targets": optional_boolean,  # None: when the task has numeric outputs
    # optimizers
    "learning_rate": positive,
    "beta_1": fraction_below_one,
    "beta_2": fraction_below_one,
    "momentum": fraction_below_one,
    "epsilon": positive,
    "weight_decay": non_negative,
    "schedule": choice_of(SCHEDULES),
    "warmup_epochs": non_negative_int,
    "steps_per_epoch": check_positive_int,
    # fit, and the search's depth and width keys
    "batch_size": check_positive_int,
    "epochs": check_positive_int,
    "num_blocks": check_positive_int,
    "depth": check_positive_int,  # a U-Net's levels
    "filters_i": check_positive_int,
    "num_layers": check_positive_int,
    "units_i": check_positive_int,
    # augmentation options
    "flip": choice_of(FLIP_MODES),
    "rotation": fraction,
    "zoom": fraction,
    "translation": fraction,
    "contrast": fraction,
    "brightness": fraction,
    "noise": fraction,  # Keras's GaussianNoise takes a standard deviation in [0, 1]
    "shift": fraction,
    "shift_mode": choice_of(SHIFT_MODES),
    "scale": fraction_below_one,
    "scatter": fraction_below_one,  # a gain in [1 - s, 1 + s] must stay positive
    "baseline": fraction,  # as a fraction of each sample's standard deviation
}


def check_argument(name: str, value: Any) -> Any:
    """Checks `value` with the rule of argument `name` in `ARGUMENT_CHECKS`; returns it."""
    return ARGUMENT_CHECKS[name](name, value)


# Names that `keras.activations.get` accepts, minus helpers that are not activations.
_NOT_ACTIVATIONS = {"get", "serialize", "deserialize"}


def activation_names() -> list[str]:
    import keras

    names = []
    for attr in dir(keras.activations):
        if attr.startswith("_") or attr in _NOT_ACTIVATIONS or not attr.islower():
            continue
        if callable(getattr(keras.activations, attr)):
            names.append(attr)
    return sorted(names)


def resolve_activation(value: Any, name: str = "activation"):
    """Returns a Keras activation for a name, a callable or None (linear)."""
    import keras

    if value is None:
        return keras.activations.linear
    if callable(value):
        return value
    if isinstance(value, str) and value in activation_names():
        return keras.activations.get(value)
    raise InputError(
        f"`{name}` must be a Keras activation name or a callable. "
        f"Received: {name}={_fmt(value)}. Valid names: {', '.join(activation_names())}"
    )

EXPORT_CHOICES = ("best", "smallest-within=TOLERANCE", "ensemble=K")
MAX_ENSEMBLE = 20  # members of an exported ensemble, at most


def parse_export_choice(value, name: str = "choice") -> tuple[str, float | int | None]:
    """("best", None), ("smallest-within", tolerance) or ("ensemble", size) from an export choice
    such as "smallest-within=0.005" or "ensemble=3"; an InputError for anything else.

    "best" exports the trial with the best objective; "smallest-within=T" the trial with the
    fewest parameters whose objective is within T of the best, in the objective's direction;
    "ensemble=K" one model whose output is the mean of the K best trials' outputs.
    """
    text = value.strip() if isinstance(value, str) else None
    if text == "best":
        return "best", None
    if text is not None and text.startswith("smallest-within="):
        number = text[len("smallest-within="):]
        try:
            tolerance = float(number)
        except ValueError:
            tolerance = None
        if tolerance is not None and math.isfinite(tolerance) and tolerance >= 0:
            return "smallest-within", tolerance
    if text is not None and text.startswith("ensemble="):
        number = text[len("ensemble="):]
        if number.isascii() and number.isdigit() and 2 <= int(number) <= MAX_ENSEMBLE:
            return "ensemble", int(number)
    raise InputError(
        f"`{name}` must be \"best\", \"smallest-within=TOLERANCE\" with a number >= 0 (e.g. "
        f"smallest-within=0.005: the fewest parameters within 0.005 of the best objective) or "
        f"\"ensemble=K\" with a whole number from 2 to {MAX_ENSEMBLE} (the mean of the K best trials). "
        f"Received: {name}={value!r}"
    )


def check_export_choice(name: str, value) -> str:
    """`value`, normalised ("best", "smallest-within=0.005", "ensemble=3"), if `parse_export_choice`
    accepts it."""
    kind, number = parse_export_choice(value, name)
    return kind if number is None else f"{kind}={number:g}"


