"""Segmentation models' files in and out: read an image or signal, segment it with the export at
its own size, and write its class map (a PNG of class ids, or .npy) next to the input (or where
`--out` says), and with `overlay` a colour picture of the class map over the image
(`NAME_overlay.png`, beside the class map).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Sequence

import numpy as np

from dlimaging.data.images import TIFF_SUFFIXES, write_image
from dlimaging.data.normalize import predict_normalized
from dlimaging.errors import InputError
from dlimaging.files import claim_output, write_new
from dlimaging.serving.exports import exported_predictor
from dlimaging.serving.restoration import output_path, read_restoration_input
from dlimaging.serving.tiling import (
    check_memory,
    parse_tiles,
    plan_tiles,
    tiling_predictor,
)

MASK_SUFFIX = "_mask"
OVERLAY_SUFFIX = "_overlay"
_OUTPUTS = (".png", ".tif", ".tiff", ".npy")


def mask_path(source: pathlib.Path, out: pathlib.Path | None, count: int, volumes: bool = False) -> pathlib.Path:
    """Where a class map goes (`dlimaging.serving.restoration.output_path`): `NAME_mask.EXT`, TIFF
    for a TIFF, PNG for another image, .npy for an array, a signal or a volume not in a TIFF."""
    kept = source.suffix.lower()
    suffix = kept if kept in TIFF_SUFFIXES else ".png" if kept not in (".npy", ".npz", ".csv") and not volumes \
        else ".npy"
    allowed, what = ((".tif", ".tiff", ".npy"), "a volume's class map") if volumes else (_OUTPUTS, "a class map")
    return output_path(source, out, count, f"{source.stem}{MASK_SUFFIX}{suffix}", allowed, what)


def write_class_map(path: pathlib.Path, class_map: np.ndarray, shape: Sequence[int] | None = None) -> pathlib.Path:
    """Writes a batch of class maps: a PNG or TIFF of one map (8-bit class ids; 16-bit beyond 255
    classes) or .npy (in the layout of the input of `shape` without its channels: one volume (depth,
    height, width) gives one map of that shape; else the batch), as a new file (`dlimaging.files.write_new`)."""
    if shape is not None and path.suffix.lower() == ".npy":
        layouts = [tuple(shape[:-1]), tuple(shape)]  # the input less its channel axis, or one without any
        class_map = next((class_map.reshape(s) for s in layouts if s and np.prod(s) == class_map.size), class_map)

    def save(tmp: pathlib.Path) -> None:
        if path.suffix.lower() in (".png", *TIFF_SUFFIXES):
            ids = class_map[0]
            levels = ids[..., None].astype("uint8" if ids.max(initial=0) < 256 else "uint16")
            write_image(tmp, levels, levels.dtype)  # class ids, written as they are
        else:
            with open(tmp, "wb") as handle:
                np.save(handle, class_map.astype("int32"))

    return write_new(path, save)


def write_overlay(path: pathlib.Path, image: np.ndarray, class_map: np.ndarray) -> pathlib.Path:
    """Writes an RGB PNG of `class_map` (height, width) over `image` (height, width, channels): each
    class above 0 tinted with its fixed colour, the background left as the image
    (`dlimaging.plots.segmentation.overlay_rgb`), as a new file."""
    from PIL import Image

    from dlimaging.plots.segmentation import overlay_rgb

    rgb = (np.clip(overlay_rgb(image, class_map), 0.0, 1.0) * 255).round().astype("uint8")
    return write_new(path, lambda tmp: Image.fromarray(rgb).save(tmp, format="PNG"))


def _overlay_target(source: pathlib.Path, x: np.ndarray, target: pathlib.Path, claimed, inputs) -> pathlib.Path:
    """Where `--overlay` draws `source`: `NAME_overlay.png` beside its class map; one image only."""
    if x.ndim != 4:
        raise InputError(f"--overlay draws a class map over an image; input {str(source)!r} holds signals "
                         f"{tuple(x.shape[1:])}. Received: --overlay")
    if len(x) != 1:
        raise InputError(f"--overlay draws one image; input {str(source)!r} holds {len(x)}. Pass one image per file.")
    return claim_output(target.parent / f"{source.stem}{OVERLAY_SUFFIX}.png", option="--out", given=False,
                        claimed=claimed, inputs=inputs)


def segment_files(version_dir, metadata: dict[str, Any], inputs: Sequence[str | os.PathLike],
                  out: str | os.PathLike | None = None, overlay: bool = False, *, tiles="auto",
                  memory=None) -> list[tuple]:
    """Runs an exported segmentation model on each file at its own size and writes its class map
    (see `mask_path`); returns (input, output, shape) per file, and with `overlay` the path of
    `NAME_overlay.png` as a fourth item (`write_overlay`, beside the class map; images only, one per
    file). A large image goes in tiles, as in `dlimaging.serving.restoration.restore_files`. No file is
    replaced: an `out` file that exists is refused before any work; a `NAME_mask.EXT` (or
    `NAME_overlay.png`) that exists becomes `NAME_mask-2.EXT`."""
    shape = metadata["input"]["shape"]
    out = None if out is None else pathlib.Path(out)
    planned, claimed = [], set()
    parse_tiles(tiles, len(shape) - 1, "--tiles"), check_memory(memory, "--memory")  # refused before any reading
    for source in inputs:
        x, info = read_restoration_input(source, shape)
        plan_tiles(tiles, x.shape[1:-1], metadata.get("tiling"), memory, option="--tiles", memory_option="--memory",
                   batch=len(x))  # every refusal before any work
        target = mask_path(pathlib.Path(source), out, len(inputs), volumes=len(shape) == 4)
        target = claim_output(target, option="--out", given=target == out, claimed=claimed, inputs=inputs)
        drawn = _overlay_target(pathlib.Path(source), x, target, claimed, inputs) if overlay else None
        planned.append((pathlib.Path(source), x, target, drawn, info.get("shape")))
    written = []
    predict = tiling_predictor(exported_predictor(version_dir, metadata), metadata, tiles, memory)
    for source, x, target, drawn, layout in planned:
        class_map = predict_normalized(predict, x, metadata.get("normalize"), "class_map", back=False)
        if target.suffix.lower() in (".png", *TIFF_SUFFIXES) and len(class_map) != 1:
            raise InputError(f"Input {str(source)!r} holds {len(class_map)} images; a {target.suffix} file holds one. "
                             "Use --out NAME.npy.")
        row = (str(source), write_class_map(target, class_map, layout), tuple(x.shape[1:]))
        written.append(row + (write_overlay(drawn, x[0], class_map[0]),) if drawn else row)
    return written
