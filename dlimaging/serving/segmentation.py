"""Segmentation models' files in and out: read an image or signal, segment it with the export at
its own size, and write its class map (a PNG of class ids, or .npy) next to the input (or where
`--out` says).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Sequence

import numpy as np

from dlimaging.errors import InputError
from dlimaging.files import claim_output, write_new
from dlimaging.serving.exports import exported_predictor
from dlimaging.serving.restoration import output_path, read_restoration_input

MASK_SUFFIX = "_mask"
_OUTPUTS = (".png", ".npy")


def mask_path(source: pathlib.Path, out: pathlib.Path | None, count: int, volumes: bool = False) -> pathlib.Path:
    """Where a class map goes (`dlimaging.serving.restoration.output_path`): `NAME_mask.EXT`, PNG
    for an image, .npy for an array, a signal or a volume."""
    suffix = ".png" if source.suffix.lower() not in (".npy", ".npz", ".csv") else ".npy"
    allowed, what = ((".npy",), "a volume's class map") if volumes else (_OUTPUTS, "a class map")
    return output_path(source, out, count, f"{source.stem}{MASK_SUFFIX}{suffix}", allowed, what)


def write_class_map(path: pathlib.Path, class_map: np.ndarray, shape: Sequence[int] | None = None) -> pathlib.Path:
    """Writes a batch of class maps: a PNG of one map (8-bit class ids; 16-bit beyond 255 classes)
    or .npy (in the layout of the input of `shape` without its channels: one volume (depth, height,
    width) gives one map of that shape; else the batch), as a new file (`dlimaging.files.write_new`)."""
    if shape is not None:
        layouts = [tuple(shape[:-1]), tuple(shape)]  # the input less its channel axis, or one without any
        class_map = next((class_map.reshape(s) for s in layouts if s and np.prod(s) == class_map.size), class_map)

    def save(tmp: pathlib.Path) -> None:
        if path.suffix.lower() == ".png":
            from PIL import Image

            ids = class_map[0]
            Image.fromarray(ids.astype("uint8" if ids.max(initial=0) < 256 else "uint16")).save(tmp, format="PNG")
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
        x, info = read_restoration_input(source, shape)
        target = mask_path(pathlib.Path(source), out, len(inputs), volumes=len(shape) == 4)
        target = claim_output(target, option="--out", given=target == out, claimed=claimed, inputs=inputs)
        planned.append((pathlib.Path(source), x, target, info.get("shape")))
    written = []
    predict = exported_predictor(version_dir, metadata)  # loaded once for all the files
    for source, x, target, layout in planned:
        class_map = predict(x)["class_map"]
        if target.suffix.lower() == ".png" and len(class_map) != 1:
            raise InputError(f"Input {str(source)!r} holds {len(class_map)} images; a PNG holds one. Use --out NAME.npy.")
        written.append((str(source), write_class_map(target, class_map, layout), tuple(x.shape[1:])))
    return written
