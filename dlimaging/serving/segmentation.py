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
from dlimaging.serving.tiling import (
    check_memory,
    parse_tiles,
    plan_tiles,
    tiling_predictor,
)

MASK_SUFFIX = "_mask"
_OUTPUTS = (".png", ".npy")


def mask_path(source: pathlib.Path, out: pathlib.Path | None, count: int) -> pathlib.Path:
    """Where a class map goes (`dlimaging.serving.restoration.output_path`): `NAME_mask.EXT`, PNG
    for an image, .npy for an array or a signal."""
    suffix = ".png" if source.suffix.lower() not in (".npy", ".npz", ".csv") else ".npy"
    return output_path(source, out, count, f"{source.stem}{MASK_SUFFIX}{suffix}", _OUTPUTS, "a class map")


def write_class_map(path: pathlib.Path, class_map: np.ndarray) -> pathlib.Path:
    """Writes a batch of class maps: a PNG of one map (8-bit class ids; 16-bit beyond 255 classes)
    or .npy (the batch), as a new file (`dlimaging.files.write_new`)."""
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
                  out: str | os.PathLike | None = None, *, tiles="auto",
                  memory=None) -> list[tuple[str, pathlib.Path, tuple[int, ...]]]:
    """Runs an exported segmentation model on each file at its own size and writes its class map
    (see `mask_path`); returns (input, output, shape) per file. A large image goes in tiles, as in
    `dlimaging.serving.restoration.restore_files`. No file is replaced: an `out` file
    that exists is refused before any work; a `NAME_mask.EXT` that exists becomes `NAME_mask-2.EXT`."""
    shape = metadata["input"]["shape"]
    out = None if out is None else pathlib.Path(out)
    planned, claimed = [], set()
    parse_tiles(tiles, len(shape) - 1, "--tiles"), check_memory(memory, "--memory")  # refused before any reading
    for source in inputs:
        x, _ = read_restoration_input(source, shape)
        plan_tiles(tiles, x.shape[1:-1], metadata.get("tiling"), memory, option="--tiles", memory_option="--memory",
                   batch=len(x))  # every refusal before any work
        target = mask_path(pathlib.Path(source), out, len(inputs))
        target = claim_output(target, option="--out", given=target == out, claimed=claimed, inputs=inputs)
        planned.append((pathlib.Path(source), x, target))
    written = []
    predict = tiling_predictor(exported_predictor(version_dir, metadata), metadata, tiles, memory)
    for source, x, target in planned:
        class_map = predict(x)["class_map"]
        if target.suffix.lower() == ".png" and len(class_map) != 1:
            raise InputError(f"Input {str(source)!r} holds {len(class_map)} images; a PNG holds one. Use --out NAME.npy.")
        written.append((str(source), write_class_map(target, class_map), tuple(x.shape[1:])))
    return written
