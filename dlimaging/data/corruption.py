"""The corruption spec of a restoration dataset: what is done to the clean data, checked without TensorFlow.

A corruption is one step, a dict with a `kind` and that kind's parameters, or a list
of steps applied in order (blur, then noise):

    {"kind": "gaussian", "sigma": 25 / 255}               # noise of σ = 25/255
    {"kind": "gaussian", "sigma": [0, 50 / 255]}          # blind: σ drawn per sample in a range
    {"kind": "poisson", "peak": 30}                       # photon noise, 30 counts at the white
    {"kind": "blur", "kernel": "gaussian", "width": 1.5}  # Gaussian blur, σ in pixels
    {"kind": "blur", "kernel": "motion", "length": 9, "angle": 30}
    {"kind": "baseline", "amplitude": 0.3}                # spectra: a smooth random baseline

Values (σ, amplitude) are in the data's units: for images scaled to [0, 1],
σ = 25/255 is DnCNN's σ = 25. The same spec is written in a tuning file's
`[data]` section: `corruption = {kind = "gaussian", sigma = 0.098}`.

`CORRUPTIONS` is the table of kinds; `check_corruption` returns the steps with
every parameter filled in (a blur: its kernel's parameters only), and the ops that
apply them (`dlimaging.data.degrade`) read that form only. That form passes
`check_corruption` again unchanged: a spec checked by the experiment schema is
checked once more by `load_dataset`. This module is a leaf: plain Python and numpy.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Callable, Mapping

import numpy as np

from dlimaging.errors import InputError

_FLOAT32_MAX = float(np.finfo("float32").max)
# A σ or a baseline amplitude above this many times the data's range (`max_val`) is refused: the
# signal would be lost in it, and at 1e38 the noisy values are inf in float32.
MAX_NOISE_RATIO = 10.0


def _real(where: str, value: Any) -> float:
    """A finite number that float32, in which the corruption is applied, holds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or abs(value) > _FLOAT32_MAX:
        raise InputError(f"`{where}` must be a finite number (within float32's ±{_FLOAT32_MAX:.4g}). "
                         f"Received: {where}={value!r}")
    return float(value)


def _at_least_zero(where: str, value: Any) -> float:
    if _real(where, value) < 0:
        raise InputError(f"`{where}` must be >= 0. Received: {where}={value!r}")
    return float(value)


def _above_zero(where: str, value: Any) -> float:
    if _real(where, value) <= 0:
        raise InputError(f"`{where}` must be > 0. Received: {where}={value!r}")
    return float(value)


def _range(where: str, value: Any) -> tuple[float, float]:
    """A number >= 0, or [low, high] with 0 <= low <= high: a value drawn per sample (blind)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise InputError(f"`{where}` must be a number or a range [low, high]. Received: {where}={value!r}")
        low, high = (_at_least_zero(where, v) for v in value)
        if low > high:
            raise InputError(f"`{where}` must be a range [low, high] with low <= high. Received: {where}={value!r}")
        return low, high
    value = _at_least_zero(where, value)
    return value, value


def _kernel_name(where: str, value: Any) -> str:
    if not isinstance(value, str) or value not in BLUR_KERNELS:
        raise InputError(f"`{where}` must be one of {', '.join(map(repr, BLUR_KERNELS))}. Received: {where}={value!r}")
    return value


def _angle(where: str, value: Any) -> float:
    return _real(where, value) % 180.0


@dataclasses.dataclass(frozen=True)
class Corruption:
    """A kind of corruption.

    Attributes:
        parameters: name → (check, default); a parameter without a default
            (`REQUIRED`) must be given. A check returns the value as stored.
        ranks: the ranks of a sample (without the batch axis) it applies to:
            2 for signals (length, channels), 3 for images.
        description: one line for the docs and the errors.
    """

    parameters: Mapping[str, tuple[Callable[[str, Any], Any], Any]]
    ranks: tuple[int, ...]
    description: str


REQUIRED = object()
CORRUPTIONS: dict[str, Corruption] = {
    "gaussian": Corruption(
        {"sigma": (_range, REQUIRED)}, (2, 3, 4),
        "additive Gaussian noise of standard deviation `sigma`, or drawn per sample from a range [low, high]"),
    "poisson": Corruption(
        {"peak": (_above_zero, REQUIRED)}, (2, 3, 4),
        "Poisson (photon) noise: the white (`max_val`) is `peak` counts; fewer counts, more noise"),
    "blur": Corruption(
        {"kernel": (_kernel_name, "gaussian"), "width": (_above_zero, 1.0), "length": (_above_zero, 9.0),
         "angle": (_angle, 0.0)}, (2, 3, 4),
        "blur by a Gaussian kernel (`width`: its σ in pixels) or a motion kernel (a line of `length` "
        "pixels at `angle` degrees; images and volumes); a volume is blurred in each (height, width) slice"),
    "baseline": Corruption(
        {"amplitude": (_at_least_zero, REQUIRED)}, (2,),
        "spectra: a smooth random baseline (offset, slope and curvature, each up to `amplitude`)"),
}


# Parameters of a blur that only one kernel uses.
BLUR_KERNELS = {"gaussian": ("width",), "motion": ("length", "angle")}
SAMPLE_KINDS = {2: "signals (length, channels)", 3: "images (height, width, channels)",
                4: "volumes (depth, height, width, channels)"}


def _check_step(name: str, step: Any) -> dict[str, Any]:
    if not isinstance(step, Mapping):
        raise InputError(
            f"`{name}` must be a dict with a `kind` ({', '.join(map(repr, CORRUPTIONS))}) and its parameters, "
            f"e.g. {{'kind': 'gaussian', 'sigma': 0.1}}. Received: {name}={step!r}"
        )
    kind = step.get("kind")
    if not isinstance(kind, str) or kind not in CORRUPTIONS:
        raise InputError(f"`{name}.kind` must be one of {', '.join(map(repr, CORRUPTIONS))}. Received: {name}.kind={kind!r}")
    entry = CORRUPTIONS[kind]
    unknown = [key for key in step if key != "kind" and key not in entry.parameters]
    if unknown:
        raise InputError(
            f"`{name}`: a {kind!r} corruption takes {', '.join(map(repr, entry.parameters))}, not {unknown[0]!r}. "
            f"Received: {name}={dict(step)!r}"
        )
    parameters = dict(entry.parameters)
    if kind == "blur":  # only the kernel's own parameters: the checked step passes this check again
        kernel = _kernel_name(f"{name}.kernel", step.get("kernel", parameters["kernel"][1]))
        others = [p for k, ps in BLUR_KERNELS.items() if k != kernel for p in ps if p in step]
        if others:
            raise InputError(
                f"`{name}`: a {kernel!r} blur takes {', '.join(BLUR_KERNELS[kernel])}, "
                f"not {others[0]!r}. Received: {name}={dict(step)!r}"
            )
        parameters = {p: parameters[p] for p in ("kernel", *BLUR_KERNELS[kernel])}
    checked = {"kind": kind}
    for parameter, (check, default) in parameters.items():
        if parameter in step:
            checked[parameter] = check(f"{name}.{parameter}", step[parameter])
        elif default is REQUIRED:
            raise InputError(f"`{name}`: a {kind!r} corruption needs `{parameter}`. Received: {name}={dict(step)!r}")
        else:
            checked[parameter] = default
    return checked


def check_corruption(value: Any, name: str = "corruption") -> tuple[dict[str, Any], ...]:
    """The steps of a corruption spec, checked, with every parameter filled in.

    Args:
        value: a dict (one step) or a list of dicts (steps applied in order);
            see the module's docstring.
        name: how the error messages name it. Defaults to "corruption".

    Returns:
        A tuple of dicts; a range parameter (`sigma`) becomes `(low, high)`,
        and a blur keeps its kernel's parameters only. Checking the result
        again returns it unchanged.

    Example:
    >>> check_corruption({"kind": "gaussian", "sigma": 0.1})
    ({'kind': 'gaussian', 'sigma': (0.1, 0.1)},)
    """
    if isinstance(value, Mapping):
        return (_check_step(name, value),)
    if isinstance(value, (list, tuple)) and value:
        return tuple(_check_step(f"{name}[{i}]", step) for i, step in enumerate(value))
    raise InputError(
        f"`{name}` must be a dict such as {{'kind': 'gaussian', 'sigma': 0.1}}, or a non-empty list of them "
        f"(applied in order). Received: {name}={value!r}"
    )


def check_for_samples(steps: tuple[dict[str, Any], ...], rank: int, source: str, name: str = "corruption") -> None:
    """Each step applies to samples of this rank (2: signals, 3: images, 4: volumes)."""
    for step in steps:
        motion = step["kind"] == "blur" and step["kernel"] == "motion"
        ranks = (3, 4) if motion else CORRUPTIONS[step["kind"]].ranks
        if rank not in ranks:
            what = "a motion blur" if motion else f"a {step['kind']!r} corruption"
            raise InputError(
                f"`{name}`: {what} applies to {' and '.join(SAMPLE_KINDS[r] for r in ranks)}; `source` {source!r} "
                f"holds {SAMPLE_KINDS.get(rank, f'samples of rank {rank}')}. Received: {name}={step!r}"
            )


def check_for_range(steps: tuple[dict[str, Any], ...], max_val: float, source: str, name: str = "corruption") -> None:
    """Each step's size fits the data: a `sigma` or `amplitude` of at most `MAX_NOISE_RATIO` times
    `max_val` (the data's white, 1 for images), and a Poisson `peak` whose scale, `peak / max_val`,
    float32 holds."""
    for index, step in enumerate(steps):
        where = name if len(steps) == 1 else f"{name}[{index}]"
        for parameter in ("sigma", "amplitude"):
            if parameter in step:
                value = step[parameter]
                largest = max(value) if isinstance(value, tuple) else value
                if largest > MAX_NOISE_RATIO * max_val:
                    raise InputError(
                        f"`{where}.{parameter}` must be at most {MAX_NOISE_RATIO:g} times the data's range "
                        f"(max_val={max_val:.4g} for `source` {source!r}): the signal would be lost in the noise. "
                        f"Received: {where}.{parameter}={_shown(value)}"
                    )
        if "peak" in step and step["peak"] > _FLOAT32_MAX * max_val:
            raise InputError(
                f"`{where}.peak` over the data's white (max_val={max_val:.4g}) must be within float32's range; "
                f"the counts would be inf. Received: {where}.peak={step['peak']:.4g}"
            )


def _shown(value) -> str:
    if isinstance(value, tuple):
        return f"{value[0]:g}" if value[0] == value[1] else f"[{value[0]:g}, {value[1]:g}]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def blur_radius(step: Mapping[str, Any]) -> int:
    """How far a checked blur step's kernel reaches from its centre, in pixels: the kernel is
    2·radius + 1 wide (`gaussian_kernel`, `motion_kernel`)."""
    if step["kernel"] == "motion":
        return math.ceil(step["length"] / 2)
    return max(1, math.ceil(3 * step["width"]))


def check_for_patch(steps: tuple[dict[str, Any], ...], patch_size: int, name: str = "corruption") -> None:
    """Each blur reaches at most across a patch of `patch_size` pixels: its borders are mirrored,
    and a mirror can add no more than the patch itself."""
    for step in steps:
        if step["kind"] != "blur":
            continue
        radius = blur_radius(step)
        if radius > patch_size:
            size = "width" if step["kernel"] == "gaussian" else "length"
            raise InputError(
                f"`{name}`: a {step['kernel']!r} blur of {size}={step[size]:g} reaches {radius} pixels to each side, "
                f"wider than the patch (patch_size={patch_size}): use a smaller {size} or a patch_size of at least "
                f"{radius}. Received: {name}={step!r}, patch_size={patch_size}"
            )


def describe(steps: tuple[dict[str, Any], ...]) -> str:
    """One line: "gaussian sigma=0.098, then ..." for summaries and benchmark tables."""
    parts = []
    for step in steps:
        shown = {k: v for k, v in step.items() if k != "kind"}
        if step["kind"] == "blur":
            shown = {k: v for k, v in shown.items() if k == "kernel" or k in BLUR_KERNELS[step["kernel"]]}
        parts.append(" ".join([step["kind"]] + [f"{k}={_shown(v)}" for k, v in shown.items()]))
    return ", then ".join(parts)


def gaussian_kernel(width: float, rank: int) -> np.ndarray:
    """A normalised Gaussian kernel of σ = `width` pixels, of size 2·ceil(3σ) + 1 along each axis:
    (size,) for signals (rank 2), (size, size) for images (rank 3)."""
    radius = blur_radius({"kernel": "gaussian", "width": width})
    t = np.arange(-radius, radius + 1, dtype="float64")
    line = np.exp(-0.5 * (t / width) ** 2)
    kernel = line if rank == 2 else np.outer(line, line)
    return (kernel / kernel.sum()).astype("float32")


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line of `length` pixels through the centre at `angle` degrees (counter-clockwise
    from the horizontal), drawn with bilinear weights on an odd square grid."""
    size = 2 * blur_radius({"kernel": "motion", "length": length}) + 1
    kernel = np.zeros((size, size), "float64")
    centre = size // 2
    theta = math.radians(angle)
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, max(2, int(8 * length))):
        x, y = centre + t * math.cos(theta), centre - t * math.sin(theta)
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                if 0 <= y0 + dy < size and 0 <= x0 + dx < size:
                    kernel[y0 + dy, x0 + dx] += wy * wx
    return (kernel / kernel.sum()).astype("float32")


def blur_kernel(step: Mapping[str, Any], rank: int) -> np.ndarray:
    """The kernel of a checked blur step, for samples of this rank."""
    if step["kernel"] == "motion":
        return motion_kernel(step["length"], step["angle"])
    return gaussian_kernel(step["width"], rank)
