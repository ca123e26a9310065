"""Synthetic volumes (depth, height, width, 1), generated offline: textured ellipsoids ("cells" or
"blobs") on an uneven background, blurred by the optics.

- `blobs3d:count=16,size=32,seed=0` (the defaults): clean volumes in [0, 1] for restoration; the
  `corruption` of `load_dataset` makes their noisy inputs.
- `cells:ndim=3` (`dlimaging.data.cells`): the same volumes with Poisson–Gaussian noise and their
  masks of class ids (background, cell, and with `classes=3` the boundary), for 3D segmentation.

Volume i depends on (seed, i) only, so a larger `count` adds volumes and keeps the others.
"""

from __future__ import annotations

import numpy as np

from dlimaging.errors import InputError
from dlimaging.validation import check_number

BLOBS_DEFAULTS = {"count": 16, "size": 32, "seed": 0}
# The cube's side: at least 8 voxels (a U-Net of depth 3 halves it 3 times), at most 256.
SIZE_RANGE = (8, 256)


def _ellipsoid(shape, rng):
    """The voxels of one ellipsoid of random centre, axes (about a sixth of the side) and orientation."""
    radius = shape[0] * rng.uniform(0.1, 0.2)
    axes = radius * rng.uniform(0.7, 1.3, 3)
    centre = rng.uniform(0, shape[0], 3)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    grid = np.stack(np.meshgrid(*(np.arange(s) for s in shape), indexing="ij"), -1) - centre
    local = grid @ rotation
    return ((local / axes) ** 2).sum(-1) <= 1.0


def cell_volume(size: int, noise: float, rng: np.random.Generator, classes: int = 2):
    """One volume (size, size, size) in [0, 1], float32, and its mask, uint8 (0 background, 1 cell,
    and with `classes=3` 2 for each cell's boundary voxels). `noise=0` gives the clean volume."""
    from scipy import ndimage
    from skimage.segmentation import find_boundaries

    shape = (size,) * 3
    labels = np.zeros(shape, "int32")
    number = int(rng.integers(8, 21))  # each about 1.4% of the cube: ~10-30% cover
    for cell in range(1, number + 1):
        inside = _ellipsoid(shape, rng)
        labels[inside & (labels == 0) | inside & (rng.random() < 0.3)] = cell
    texture = ndimage.gaussian_filter(rng.normal(0, 1, shape), 1.5)
    texture = 1.0 + 0.35 * texture / (texture.std() + 1e-8)
    brightness = np.concatenate([[0.0], rng.uniform(0.45, 0.9, number)])
    signal = brightness[labels] * texture * (labels > 0)
    zz, yy, xx = np.mgrid[:size, :size, :size] / size
    gradient = rng.uniform(-1, 1, 3)
    background = 0.08 + 0.12 * (0.5 + 0.5 * np.tanh(gradient[0] * (zz - 0.5) + gradient[1] * (yy - 0.5)
                                                    + gradient[2] * (xx - 0.5)))
    volume = ndimage.gaussian_filter(signal + background, rng.uniform(0.8, 1.2))
    if noise > 0:  # Poisson-Gaussian, as `dlimaging.data.cells.cell_image`
        photons = 1.0 / max(noise * 0.6, 1e-3) ** 2
        volume = rng.poisson(np.clip(volume, 0, None) * photons) / photons + rng.normal(0, noise * 0.25, shape)
    mask = (labels > 0).astype("uint8")
    if classes == 3:
        mask[find_boundaries(labels, mode="inner") & (labels > 0)] = 2
    return np.clip(volume, 0.0, 1.0).astype("float32"), mask


def generate_volumes(count: int = 16, size: int = 32, noise: float = 0.0, seed: int = 0, classes: int = 2):
    """`count` volumes (count, size, size, size, 1), float32 in [0, 1], and their masks
    (count, size, size, size), uint8.

    Example:
    >>> x, masks = generate_volumes(count=2, size=8)
    >>> x.shape, masks.shape, bool(0.0 <= x.min() and x.max() <= 1.0)
    ((2, 8, 8, 8, 1), (2, 8, 8, 8), True)
    """
    pairs = [cell_volume(size, noise, np.random.default_rng([seed, i, 3]), classes) for i in range(count)]
    return np.stack([p[0] for p in pairs])[..., None], np.stack([p[1] for p in pairs])


def parse_blobs_options(source: str, prefix: str | None) -> dict:
    """The options of `blobs3d:count=..,size=..,seed=..`, checked, with the defaults for those not given."""
    options = dict(BLOBS_DEFAULTS)
    text = source[len(prefix):] if prefix and source.startswith(prefix) else ""
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = (p.strip() for p in part.partition("="))
        if key not in BLOBS_DEFAULTS or not value:
            raise InputError(f"`source` {source!r}: {part!r} is not an option of blobs3d; expected key=value with "
                             f"key one of {', '.join(BLOBS_DEFAULTS)}, e.g. blobs3d:count=8,size=16.")
        try:
            options[key] = int(value)
        except ValueError:
            raise InputError(f"`source` {source!r}: {key} must be an integer. Received: {key}={value!r}") from None
    try:
        check_number("count", options["count"], low=1, integer=True)
        check_number("size", options["size"], low=SIZE_RANGE[0], high=SIZE_RANGE[1], integer=True)
        check_number("seed", options["seed"], low=0, integer=True)
    except InputError as error:
        raise InputError(f"`source` {source!r}: {error}") from None
    return options


def clean_blobs3d(source: str, *, prefix=None, **_options):
    """The clean volumes of `blobs3d`, each an item (size, size, size, 1), for restoration."""
    options = parse_blobs_options(source, prefix)
    x, _ = generate_volumes(options["count"], options["size"], 0.0, options["seed"])
    name = source.replace(":", "_").replace(",", "_").replace("=", "")
    return [(str(i), volume) for i, volume in enumerate(x)], (1.0, name)
