"""Tiled prediction: a large image, signal or volume through a fully convolutional model (a
restoration or segmentation U-Net) in overlapping tiles, in bounded memory, as CSBDeep's
`predict(..., n_tiles=...)` does. The served signature stays whole-image: tiling is the client's job.

Each tile starts at a multiple of the network's downsampling factor (2^depth for a U-Net), so its
pooling grid is the whole image's; it carries a margin of at least the receptive field on each
side that has image beyond it, and only its interior is kept. At the image's border a tile ends
where the image ends, and the network pads it as it pads the whole image, so the stitched result
equals the whole-image result (to float rounding).
"""

from __future__ import annotations

import itertools
import math
import os
import pathlib
import re
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from dlimaging.errors import InputError
from dlimaging.models.field import tiling_info
from dlimaging.serving.exports import (
    exported_predictor,
    read_metadata,
    resolve_version_dir,
)

GIB = 1024**3
_AUTO, _NONE = "auto", "none"


def _shown(option: str) -> str:
    """An argument as a message names it: `tile` (Python), --tiles (the command line)."""
    return option if option.startswith("--") else f"`{option}`"


def _received(option: str, value: Any) -> str:
    """`Received: tile=0` (Python: the value's repr) or `Received: --tiles 0` (the command line: as typed)."""
    return f"Received: {option} {value}" if option.startswith("--") else f"Received: {option}={value!r}"


def default_memory() -> float:
    """A quarter of the machine's available memory, in bytes (psutil, else /proc/meminfo's
    MemAvailable; 2 GiB when neither answers)."""
    try:
        import psutil

        return psutil.virtual_memory().available / 4
    except ImportError:  # pragma: no cover - psutil comes with the test extras
        pass
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / 4
    except OSError:  # pragma: no cover - not Linux
        pass
    return 2 * GIB  # pragma: no cover


def check_memory(memory: Any, option: str = "memory") -> float:
    """A memory budget in GB (a positive, finite number) as bytes; None: `default_memory()`."""
    if memory is None:
        return default_memory()
    try:
        value = float(memory)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(memory, bool) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{_shown(option)} must be a positive number of GB, e.g. 2 or 0.5. "
                         + _received(option, memory))
    return value * GIB


def parse_tiles(text: Any, rank: int | None = None, option: str = "tiles") -> str | tuple[int, ...]:
    """`auto`, `none`, an int N (every spatial axis), or `NxN` / `NxNxN` (one per spatial axis)
    into "auto", "none" or a tuple of ints >= 1; anything else is refused in one line."""
    if isinstance(text, str) and text.strip().lower() in (_AUTO, _NONE):
        return text.strip().lower()
    if isinstance(text, int) and not isinstance(text, bool):
        sizes = (text,)
    elif isinstance(text, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in text):
        sizes = tuple(text)
    elif isinstance(text, str) and re.fullmatch(r"\s*\d+(\s*x\s*\d+)*\s*", text.lower()):
        sizes = tuple(int(part) for part in text.lower().split("x"))
    else:
        sizes = ()
    if not sizes or min(sizes) < 1 or (rank is not None and len(sizes) not in (1, rank)):
        axes = "N" if rank in (None, 1) else "N or " + "x".join(["N"] * rank)
        raise InputError(f"{_shown(option)} must be auto, none or a tile size of {axes} pixels, each >= 1. "
                         + _received(option, text))
    return sizes


def _round_up(sizes: Sequence[int], multiple: int, option: str) -> tuple[int, ...]:
    """Tile sizes rounded up to the downsampling factor, saying so (a UserWarning) when they change."""
    rounded = tuple(int(math.ceil(s / multiple)) * multiple for s in sizes)
    if rounded != tuple(sizes):
        warnings.warn(f"{_shown(option)} {'x'.join(map(str, sizes))} is rounded up to {'x'.join(map(str, rounded))}, a "
                      f"multiple of the network's downsampling factor {multiple}.", UserWarning, stacklevel=3)
    return rounded


def auto_tile(shape: Sequence[int], info: dict[str, Any], memory: float, option: str = "memory",
              batch: int = 1) -> tuple[int, ...] | None:
    """The largest cubic tile (a multiple of `info["multiple"]`) whose window, margins included,
    costs at most `memory` bytes at `info["bytes_per_pixel"]` (tiles go one sample at a time);
    None when the whole image, `batch` samples of it, fits."""
    multiple, margin, cost = info["multiple"], info["margin"], info["bytes_per_pixel"]
    padded = [s + (-s) % multiple for s in shape]
    if batch * math.prod(padded) * cost <= memory:
        return None
    side = int((memory / cost) ** (1 / len(shape))) - 2 * margin
    side = side // multiple * multiple
    if side < multiple:
        least = (multiple + 2 * margin) ** len(shape) * cost / GIB
        raise InputError(f"{_shown(option)} is too small to tile this model: one tile of {multiple} pixels a side and its "
                         f"margins of {margin} needs about {least:.3g} GB. " + _received(option, float(f"{memory / GIB:.3g}")))
    return tuple(min(side, p) for p in padded)


def tile_windows(shape: Sequence[int], tile: Sequence[int], margin: int):
    """For each tile of the spatial `shape`: (window, kept), tuples of slices. `window` is what goes
    through the network (the tile and its margins, cut at the image's border); `kept` the tile, in
    image coordinates. Tile origins are multiples of the tile size (itself a multiple of the
    downsampling factor), and so are window origins (the margin is one too)."""
    axes = []
    for size, step in zip(shape, tile):
        axes.append([(start, min(start + step, size)) for start in range(0, size, step)])
    for corner in itertools.product(*axes):
        window = tuple(slice(max(0, a - margin), min(size, b + margin)) for (a, b), size in zip(corner, shape))
        kept = tuple(slice(a, b) for a, b in corner)
        yield window, kept


def tiled(predict: Callable[[np.ndarray], Any], x: np.ndarray, tile: Sequence[int], margin: int) -> Any:
    """`predict` (a batch in, an array or a dict of arrays out, each of the batch's spatial shape)
    run tile by tile, one sample at a time, over the batch `x`; the outputs are allocated once, at
    their full size, and each tile's interior written into them."""
    spatial = x.shape[1:-1]
    outputs: dict[str, np.ndarray] | None = None
    single = False
    for (window, kept), sample in itertools.product(tile_windows(spatial, tile, margin), range(len(x))):
        part = predict(np.ascontiguousarray(x[(slice(sample, sample + 1),) + window]))
        if not isinstance(part, dict):
            part, single = {None: np.asarray(part)}, True
        inner = tuple(slice(k.start - w.start, k.stop - w.start) for k, w in zip(kept, window))
        if outputs is None:
            outputs = {key: np.empty(x.shape[:1] + tuple(spatial) + value.shape[1 + len(spatial):], value.dtype)
                       for key, value in part.items()}
        for key, value in part.items():
            if value.shape[1:1 + len(spatial)] != tuple(w.stop - w.start for w in window):
                raise InputError(f"The model answers a tile of shape {x[(0,) + window].shape} with "
                                 f"{key or 'an output'} of shape {value.shape[1:]}; tiling needs an output with the "
                                 "input's spatial shape (a fully convolutional model).")
            outputs[key][(slice(sample, sample + 1),) + kept] = value[(slice(None),) + inner]
    return outputs[None] if single else outputs


def _keras_predictor(model):
    """A Keras model as x → output, on any spatial size: through a `tf.function` whose spatial axes are
    unknown (the Keras model's own `predict` checks its `input_shape`)."""
    import tensorflow as tf

    spec = tf.TensorSpec((None,) * (len(model.inputs[0].shape) - 1) + (model.inputs[0].shape[-1],), tf.float32)
    call = tf.function(lambda batch: model(batch, training=False), input_signature=[spec], reduce_retracing=True)
    return lambda batch: call(tf.constant(batch, tf.float32)).numpy()


def _resolve(model_or_export) -> tuple[Callable[[np.ndarray], Any], dict[str, Any] | None, int]:
    """(predict, tiling info, the model's input rank without the batch) of a Keras model or an export."""
    if isinstance(model_or_export, (str, os.PathLike)):
        version_dir = resolve_version_dir(model_or_export)
        metadata = read_metadata(version_dir)
        if not metadata["input"].get("any_size"):
            raise InputError(f"`model_or_export` {str(model_or_export)!r} is a {metadata['task']} export; tiling is "
                             "for models whose output has the input's spatial shape (restoration, segmentation).")
        return exported_predictor(version_dir, metadata), metadata.get("tiling"), len(metadata["input"]["shape"])
    import keras

    if not isinstance(model_or_export, keras.Model):
        raise InputError("`model_or_export` must be a keras.Model or an exported saved_models/NAME[/VERSION] folder. "
                         f"Received: model_or_export={type(model_or_export).__name__}")
    return _keras_predictor(model_or_export), tiling_info(model_or_export), len(model_or_export.inputs[0].shape) - 1


def plan_tiles(tiles: Any, shape: Sequence[int], info: dict[str, Any] | None, memory: Any = None, *,
               option: str = "tiles", memory_option: str = "memory", batch: int = 1) -> tuple[int, ...] | None:
    """The tile size for an image of spatial `shape`, or None for the whole image: `tiles` is "auto" (the
    largest that fits `memory` GB, see `auto_tile`), "none", or sizes (rounded up to the downsampling
    factor, with a warning). `info` None (an export older than tiling) takes the whole image for "auto"."""
    rank = len(shape)
    tiles = parse_tiles(tiles, rank, option)
    budget = check_memory(memory, memory_option)
    if tiles == _NONE:
        return None
    if info is None:
        if tiles == _AUTO:
            return None
        raise InputError(f"{_shown(option)}: this export records no receptive field (it predates tiled prediction); "
                         "export the model again to tile. " + _received(option, "x".join(map(str, tiles))))
    if tiles == _AUTO:
        return auto_tile(shape, info, budget, memory_option, batch)
    sizes = _round_up(tiles, info["multiple"], option)
    return sizes * rank if len(sizes) == 1 else sizes


def tiling_predictor(predict: Callable[[np.ndarray], Any], metadata: dict[str, Any], tiles: Any = _AUTO,
                     memory: Any = None) -> Callable[[np.ndarray], Any]:
    """An export's `predict` (`dlimaging.serving.exports.exported_predictor`) made to tile each batch as
    --tiles and --memory say (see `plan_tiles`); the command line's `predict` uses it."""
    info = metadata.get("tiling")

    def run(x: np.ndarray):
        size = plan_tiles(tiles, x.shape[1:-1], info, memory, option="--tiles", memory_option="--memory", batch=len(x))
        return predict(x) if size is None else tiled(predict, x, size, info["margin"])

    return run


def predict_tiled(model_or_export, x, tile: Any = "auto", overlap: int | None = None, *,
                  memory: float | None = None):
    """Predicts a large image, signal or volume tile by tile, as the whole image would be predicted.

    Args:
        model_or_export: a fully convolutional `keras.Model` (e.g. `build_unet`'s), or an exported
            restoration or segmentation model (`saved_models/NAME` or `saved_models/NAME/VERSION`).
        x: array of shape `(*spatial, channels)` (one sample: a signal, an image or a volume) or
            `(N, *spatial, channels)`, float values as the model was trained on (e.g. [0, 1]).
        tile: "auto" (the largest tile that fits `memory`; the whole image when it fits), "none"
            (the whole image), an int (the tile's side on every axis) or one int per spatial axis.
            Sizes are rounded up to the network's downsampling factor. Defaults to "auto".
        overlap: int or None. The margin each tile carries on each side, in pixels; at least the
            receptive field's reach (read from the model's layers), which None uses. Defaults to None.
        memory: float or None. The budget of "auto", in GB. Defaults to None (a quarter of the
            machine's available memory).

    Returns:
        The prediction, shaped as the model's (for an export: a dict of its outputs).

    Example:
    >>> import numpy as np, dlimaging as dli
    >>> model = dli.build_unet((32, 32, 1), depth=2, filters=4, compile=False)  # any size goes through
    >>> image = np.random.default_rng(0).random((100, 90, 1), dtype="float32")
    >>> tiled = predict_tiled(model, image, tile=48)   # tiles of 48 x 48 with their margins
    >>> whole = predict_tiled(model, image, tile="none")
    >>> tiled.shape, bool(np.abs(tiled - whole).max() < 1e-4)
    ((100, 90, 1), True)
    """
    predict, info, rank = _resolve(model_or_export)
    x = np.asarray(x, "float32")
    if x.ndim not in (rank, rank + 1) or x.size == 0:
        raise InputError(f"`x` must be one sample of rank {rank} (spatial axes, then channels) or a batch of them. "
                         f"Received: x of shape {x.shape}")
    batch = x if x.ndim == rank + 1 else x[None]
    size = plan_tiles(tile, batch.shape[1:-1], info, memory, option="tile", batch=len(batch))
    if size is not None and overlap is not None:
        if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < info["margin"]:
            raise InputError(f"`overlap` must be an int of at least the receptive field's reach, {info['margin']} "
                             f"pixels, for this model. Received: overlap={overlap!r}")
        info = {**info, "margin": _round_up([overlap], info["multiple"], "overlap")[0]}
    result = predict(batch) if size is None else tiled(predict, batch, size, info["margin"])
    if x.ndim == rank:
        return {k: v[0] for k, v in result.items()} if isinstance(result, dict) else result[0]
    return result
