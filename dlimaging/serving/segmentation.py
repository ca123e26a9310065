"""Segmentation models' files in and out: read an image or signal, segment it with the export at
its own size, and write its class map (a PNG of class ids, or .npy) next to the input (or where
`--out` says).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Sequence

import numpy as np

from dlimaging.data.images import TIFF_SUFFIXES, write_image
from dlimaging.errors import InputError
from dlimaging.files import claim_output, write_new
from dlimaging.serving.exports import exported_predictor
from dlimaging.serving.restoration import output_path, read_restoration_input

MASK_SUFFIX = "_mask"
_OUTPUTS = (".png", ".tif", ".tiff", ".npy")


def mask_path(source: pathlib.Path, out: pathlib.Path | None, count: int) -> pathlib.Path:
    """Where a class map goes (`dlimaging.serving.restoration.output_path`): `NAME_mask.EXT`, TIFF
    for a TIFF, PNG for another image, .npy for an array or a signal."""
    kept = source.suffix.lower()
    suffix = kept if kept in TIFF_SUFFIXES else ".png" if kept not in (".npy", ".npz", ".csv") else ".npy"
    return output_path(source, out, count, f"{source.stem}{MASK_SUFFIX}{suffix}", _OUTPUTS, "a class map")


def write_class_map(path: pathlib.Path, class_map: np.ndarray) -> pathlib.Path:
    """Writes a batch of class maps: a PNG or TIFF of one map (8-bit class ids; 16-bit beyond 255 classes)
    or .npy (the batch), as a new file (`dlimaging.files.write_new`)."""
    def save(tmp: pathlib.Path) -> None:
        if path.suffix.lower() in (".png", *TIFF_SUFFIXES):
            ids = class_map[0]
            levels = ids[..., None].astype("uint8" if ids.max(initial=0) < 256 else "uint16")
            write_image(tmp, levels, levels.dtype)  # class ids, written as they are
        else:
            with open(tmp, "wb") as handle:
                np.save(handle, class_map.astype("int32"))

    return write_new(path, save)


def segment_files(version_dir, metadata: dict[str, Any], inputs: Sequence[str | os.PathLike],
                  out: str | os.PathLike | None = None) -> list[tuple[str, pathlib.Path, tuple[int, ...]]]:
    """Runs an exported segmentation model on each file at its own size and writes its class map
    (see `mask_path`); returns (input, output, shape) per file. No file is replaced: an `out` file
    that exists is refused before any work; a `NAME_mask.EXT` that exists becomes `NAME_mask-2.EXT`."""
    shape = metadata["input"]["shape"]
    out = None if out is None else pathlib.Path(out)
    planned, claimed = [], set()
    for source in inputs:
        x, _ = read_restoration_input(source, shape)
        target = mask_path(pathlib.Path(source), out, len(inputs))
        target = claim_output(target, option="--out", given=target == out, claimed=claimed, inputs=inputs)
        planned.append((pathlib.Path(source), x, target))
    written = []
    predict = exported_predictor(version_dir, metadata)  # loaded once for all the files
    for source, x, target in planned:
        class_map = predict(x)["class_map"]
        if target.suffix.lower() in (".png", *TIFF_SUFFIXES) and len(class_map) != 1:
            raise InputError(f"Input {str(source)!r} holds {len(class_map)} images; a {target.suffix} file holds one. "
                             "Use --out NAME.npy.")
        written.append((str(source), write_class_map(target, class_map), tuple(x.shape[1:])))
    return written
