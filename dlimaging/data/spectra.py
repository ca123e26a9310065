"""Synthetic spectra: mixtures of peaked components, with the nuisances of real instruments.

In the spirit of MNIST-1D: small, offline, reproducible by seed, and hard in
the ways that matter. Each sample is a mixture of `components` pure spectra
(each a few Gaussian or Lorentzian peaks) with random concentrations; then the
peaks shift, a smooth baseline is added, the whole spectrum is scaled and
offset (multiplicative scatter), and noise is added. A linear model such as
PLS handles the mixture but not the shifts and the scatter; a 1D CNN can.

The targets are the concentrations (regression, one output per component) or
the index of the dominant component (one class per component).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dlimaging.validation import (
    check_choice,
    check_fits_in_memory,
    check_number,
    check_positive_int,
)

DIFFICULTIES = {
    # name: (largest peak shift in points, baseline amplitude, scatter spread, noise σ), all in
    # units of the mixture's typical peak height, which is about 1.
    "easy": (1.0, 0.05, 0.02, 0.005),
    "medium": (4.0, 0.3, 0.15, 0.01),
    "hard": (8.0, 0.6, 0.3, 0.03),
}


TARGETS = ("concentrations", "dominant")


def spectra_bytes(samples: int, length: int, components: int) -> int:
    """About the memory `make_spectra` takes: the spectra in float64 and their float32 copy
    (12 bytes a point), and the pure and shifted components."""
    return samples * length * 12 + components * length * 24 + length * 32


@dataclasses.dataclass
class SyntheticSpectra:
    """Spectra made by `make_spectra`.

    Attributes:
        x: float32 array (samples, length, 1): the measured spectra.
        y: float32 concentrations (samples, components) for target "concentrations",
            or int64 labels (samples,) of the dominant component for target "dominant".
        axis: float32 (length,): the wavenumber of each point, in cm⁻¹.
        pure: float32 (components, length): each component's spectrum, unshifted.
        concentrations: float32 (samples, components), whatever the target.
        target_names: the components' names, "c1", "c2", ...
    """

    x: np.ndarray
    y: np.ndarray
    axis: np.ndarray
    pure: np.ndarray
    concentrations: np.ndarray
    target_names: list[str]


def _peak(axis_points: np.ndarray, center: float, width: float, lorentzian: bool) -> np.ndarray:
    z = (axis_points - center) / width
    return 1.0 / (1.0 + z * z) if lorentzian else np.exp(-0.5 * z * z)


def _pure_spectra(rng: np.random.Generator, components: int, length: int) -> np.ndarray:
    """Each component: 2 to 4 peaks, of random shape, position, width and height; the largest is 1."""
    points = np.arange(length, dtype="float64")
    pure = np.zeros((components, length))
    for index in range(components):
        for _ in range(rng.integers(2, 5)):
            center = rng.uniform(0.08, 0.92) * length
            width = rng.uniform(0.008, 0.03) * length
            pure[index] += rng.uniform(0.3, 1.0) * _peak(points, center, width, lorentzian=rng.random() < 0.5)
        pure[index] /= pure[index].max()
    return pure


def _shifted(pure: np.ndarray, shift: float) -> np.ndarray:
    """The pure spectra moved by `shift` points (linear interpolation; edges held)."""
    points = np.arange(pure.shape[1], dtype="float64")
    return np.stack([np.interp(points - shift, points, row) for row in pure])


def make_spectra(
    samples: int = 2000,
    *,
    length: int = 256,
    components: int = 3,
    difficulty: str = "medium",
    target: str = "concentrations",
    seed: int = 0,
    pure_seed: int = 0,
) -> SyntheticSpectra:
    """Makes reproducible synthetic spectra of mixtures.

    Args:
        samples: int. Number of spectra. Defaults to 2000.
        length: int >= 32. Points per spectrum. Defaults to 256. Sizes whose
            arrays would not fit in the memory available are refused before
            anything is made.
        components: int >= 2. Pure components mixed in each sample. Defaults to 3.
        difficulty: str. "easy", "medium" or "hard": the size of the peak
            shifts, baselines, scatter and noise. Defaults to "medium".
        target: str. "concentrations" (numbers, one per component) or
            "dominant" (the label of the dominant component). Defaults to
            "concentrations".
        seed: int. Seed of the samples: concentrations and nuisances. Defaults to 0.
        pure_seed: int. Seed of the pure component spectra; keep it the same
            for a training and a test set. Defaults to 0.

    Returns:
        A `SyntheticSpectra`.

    Example:
    >>> data = make_spectra(100, length=64)
    >>> data.x.shape, data.y.shape
    ((100, 64, 1), (100, 3))
    """
    samples = check_positive_int("samples", samples)
    length = int(check_number("length", length, low=32, integer=True))
    components = int(check_number("components", components, low=2, high=16, integer=True))
    check_choice("difficulty", difficulty, DIFFICULTIES)
    check_choice("target", target, TARGETS)
    for name, value in (("seed", seed), ("pure_seed", pure_seed)):
        check_number(name, value, low=0, high=2**32 - 1, integer=True)
    check_fits_in_memory(f"{samples} spectra of length {length}", spectra_bytes(samples, length, components),
                         "Ask for fewer or shorter spectra.")

    pure = _pure_spectra(np.random.default_rng(pure_seed), components, length)
    rng = np.random.default_rng([seed, 7919])
    max_shift, baseline_size, scatter, noise = DIFFICULTIES[difficulty]
    concentrations = rng.dirichlet(np.ones(components), samples)  # fractions of a mixture: they sum to 1
    points = np.linspace(-1.0, 1.0, length)
    x = np.empty((samples, length))
    for index in range(samples):
        mixture = concentrations[index] @ _shifted(pure, rng.uniform(-max_shift, max_shift))
        baseline = np.polynomial.polynomial.polyval(points, rng.normal(0.0, baseline_size, 3))
        gain, offset = 1.0 + rng.normal(0.0, scatter), rng.normal(0.0, scatter)
        x[index] = gain * (mixture + baseline) + offset + rng.normal(0.0, noise, length)
    if target == "dominant":
        y = np.argmax(concentrations, axis=1).astype("int64")
    else:
        y = concentrations.astype("float32")
    axis = np.linspace(4000.0, 400.0, length, dtype="float32")  # a mid-infrared range, in cm⁻¹
    return SyntheticSpectra(
        x=x.astype("float32")[..., None], y=y, axis=axis, pure=pure.astype("float32"),
        concentrations=concentrations.astype("float32"),
        target_names=[f"c{i + 1}" for i in range(components)],
    )
