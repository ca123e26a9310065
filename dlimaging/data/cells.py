"""`cells`: an offline synthetic source of fluorescence-like images of cells and their masks.

Each image holds textured ellipses of varied size, orientation and brightness ("cells"), which
may touch, on an uneven background: cells out of the focal plane glow through it, and the
illumination falls off towards the edges. The optics blur it and the camera adds Poisson (shot)
and Gaussian (read) noise. The masks are the class of each pixel: 0 background, 1 cell, and with
`classes=3`, 2 for the boundary of each cell (the pixels of a cell next to the background or
to another cell), the class StarDist-style pipelines use to split touching cells.

`cells:count=64,size=64,noise=0.2,seed=0,classes=2,ndim=2` are the defaults; `noise=0.1-0.6` is a
range, each image drawing its own level in it. `ndim=3` gives volumes (size, size, size, 1) of
textured ellipsoids and their masks (`dlimaging.data.volumes`), by default 16 of side 32.
"""

from __future__ import annotations

import numpy as np

from dlimaging.data.volumes import BLOBS_DEFAULTS, SIZE_RANGE, generate_volumes
from dlimaging.errors import InputError
from dlimaging.validation import check_number

DEFAULTS = {"count": 64, "size": 64, "noise": 0.2, "seed": 0, "classes": 2, "ndim": 2}
# With ndim=3, the count and size not given are the volumes' (smaller: a volume holds size³ voxels).
VOLUME_DEFAULTS = {"count": BLOBS_DEFAULTS["count"], "size": BLOBS_DEFAULTS["size"]}
CLASS_NAMES = {2: ["background", "cell"], 3: ["background", "cell", "boundary"]}


def parse_options(source: str, prefix: str | None = "cells:") -> dict:
    """The options of a `cells:key=value,...` source, checked, with the defaults for those not given."""
    options = dict(DEFAULTS)
    given = set()
    text = source[len(prefix):] if prefix and source.startswith(prefix) else ""
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in DEFAULTS or not value.strip():
            raise InputError(f"`source` {source!r}: {part!r} is not an option of cells; expected key=value with "
                             f"key one of {', '.join(DEFAULTS)}, e.g. cells:noise=0.3,seed=1.")
        try:
            options[key] = _noise(value) if key == "noise" else int(value)
        except ValueError:
            what = "a number or a range low-high (e.g. 0.1-0.6)" if key == "noise" else "a number"
            raise InputError(f"`source` {source!r}: {key} must be {what}. Received: {key}={value.strip()!r}") from None
        given.add(key)
    if options["ndim"] not in (2, 3):
        raise InputError(f"`source` {source!r}: ndim must be 2 (images) or 3 (volumes). Received: ndim={options['ndim']}")
    if options["ndim"] == 3:
        options.update({k: v for k, v in VOLUME_DEFAULTS.items() if k not in given})
    check_number("count", options["count"], low=1, integer=True)
    check_number("size", options["size"], low=16 if options["ndim"] == 2 else SIZE_RANGE[0],
                 high=4096 if options["ndim"] == 2 else SIZE_RANGE[1], integer=True)
    for level in options["noise"] if isinstance(options["noise"], tuple) else (options["noise"],):
        check_number("noise", level, low=0.0, high=2.0)
    if isinstance(options["noise"], tuple) and options["noise"][0] > options["noise"][1]:
        raise InputError(f"`source` {source!r}: a noise range runs from low to high. "
                         f"Received: noise={options['noise'][0]}-{options['noise'][1]}")
    check_number("seed", options["seed"], low=0, integer=True)
    if options["classes"] not in CLASS_NAMES:
        raise InputError(f"`source` {source!r}: classes must be 2 (background, cell) or 3 (and boundary). "
                         f"Received: classes={options['classes']}")
    return options


def _noise(text: str):
    """`noise=0.3` (one level) or `noise=0.1-0.6` (a range: each image draws its level in it)."""
    low, dash, high = text.strip().partition("-")
    return (float(low), float(high)) if dash and low else float(text)


def _ellipse(shape, rng):
    """The pixels of one ellipse of random centre, axes and angle."""
    radius = rng.uniform(4.0, 9.0)
    a, b = radius * rng.uniform(0.8, 1.3), radius * rng.uniform(0.6, 1.0)
    cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def cell_image(size: int, noise: float, rng: np.random.Generator, classes: int = 2):
    """One image (size, size) in [0, 1], float32, and its mask (size, size), uint8.

    As in widefield fluorescence: cells of brightness varying 3.6x (dim cells sit near the
    background), cells out of the focal plane seen as wide blurred glows (not in the mask), an
    illumination that falls off away from its centre, a camera offset, the optics' blur, then
    Poisson-Gaussian noise. So no one global threshold separates the cells from the background.
    """
    from scipy import ndimage
    from skimage.segmentation import find_boundaries

    shape = (size, size)
    labels = np.zeros(shape, "int32")
    number = int(rng.integers(max(1, size * size // 500), max(2, size * size // 220) + 1))  # ~15-35% cover
    for cell in range(1, number + 1):
        inside = _ellipse(shape, rng)
        labels[inside & (labels == 0) | inside & (rng.random() < 0.3)] = cell  # later cells may lie over
    texture = ndimage.gaussian_filter(rng.normal(0, 1, shape), 1.5)
    texture = 1.0 + 0.35 * texture / (texture.std() + 1e-8)
    brightness = np.concatenate([[0.0], rng.uniform(0.25, 0.9, number)])
    signal = brightness[labels] * texture * (labels > 0)
    out_of_focus = sum(rng.uniform(0.15, 0.5) * _ellipse(shape, rng)
                       for _ in range(int(rng.integers(1, max(2, number // 2) + 1))))
    signal = signal + ndimage.gaussian_filter(out_of_focus.astype("float64"), rng.uniform(3.0, 5.0))
    yy, xx = np.mgrid[:size, :size] / size
    cy, cx = rng.uniform(0.2, 0.8, 2)
    distance = (yy - cy) ** 2 + (xx - cx) ** 2
    illumination = 1.0 - rng.uniform(0.2, 0.45) * distance / distance.max()  # 55-80 % at the farthest corner
    image = ndimage.gaussian_filter(illumination * signal + rng.uniform(0.04, 0.1), rng.uniform(0.8, 1.4))
    if noise > 0:  # Poisson-Gaussian: shot noise of about (noise·0.6)² at the brightest cells, and read noise
        photons = 1.0 / max(noise * 0.6, 1e-3) ** 2
        image = rng.poisson(np.clip(image, 0, None) * photons) / photons + rng.normal(0, noise * 0.25, shape)
    mask = (labels > 0).astype("uint8")
    if classes == 3:
        mask[find_boundaries(labels, mode="inner") & (labels > 0)] = 2
    return np.clip(image, 0.0, 1.0).astype("float32"), mask  # a camera's range: saturated at 1


def generate_cells(count: int = 64, size: int = 64, noise=0.2, seed: int = 0, classes: int = 2,
                   ndim: int = 2):
    """`count` images (count, size, size, 1), float32, and their masks (count, size, size), uint8;
    with `ndim=3`, volumes (count, size, size, size, 1) and masks (`dlimaging.data.volumes`).

    Image i depends on (seed, i) only, so a larger `count` adds images and keeps the others.
    `noise` is one level, or a range (low, high): image i draws its level uniformly in it (so a
    model trained on them meets light and heavy noise alike).

    Example:
    >>> x, masks = generate_cells(count=2, size=32)
    >>> x.shape, masks.shape, np.unique(masks).tolist()
    ((2, 32, 32, 1), (2, 32, 32), [0, 1])
    """
    if ndim == 3:
        return generate_volumes(count, size, noise, seed, classes)
    levels = ([np.random.default_rng([seed, i, 1]).uniform(*noise) for i in range(count)]
              if isinstance(noise, tuple) else [noise] * count)
    pairs = [cell_image(size, levels[i], np.random.default_rng([seed, i]), classes) for i in range(count)]
    return np.stack([p[0] for p in pairs])[..., None], np.stack([p[1] for p in pairs])


def cells_masks(source: str, *, prefix=None, **_options):
    """The `cells` source's images and masks, for `load_dataset` (see the module's docstring)."""
    options = parse_options(source, prefix)
    x, masks = generate_cells(**options)
    name = source.replace(":", "_").replace(",", "_").replace("=", "")
    return list(x), list(masks), list(CLASS_NAMES[options["classes"]]), name
