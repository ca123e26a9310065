"""Restoration models' files in and out: read an image or signal, restore it with the export,
and write it next to the input (or where `--out` says).
"""

from __future__ import annotations

import math
import os
import pathlib
from typing import Any, Sequence

import numpy as np

from dlimaging.data.images import TIFF_SUFFIXES, read_image, write_image
from dlimaging.data.normalize import predict_normalized
from dlimaging.errors import InputError
from dlimaging.files import claim_output, write_new
from dlimaging.serving.exports import exported_predictor
from dlimaging.serving.inputs import (
    as_float32,
    parse_number,
    read_array_file,
    read_input,
)
from dlimaging.serving.tiling import (
    check_memory,
    parse_tiles,
    plan_tiles,
    tiling_predictor,
)

RESTORED_SUFFIX = "_restored"
_IMAGE_OUTPUTS = (".png", ".tif", ".tiff", ".npy")
_SIGNAL_OUTPUTS = (".csv", ".npy")
_VOLUME_OUTPUTS = (".tif", ".tiff", ".npy")
_KINDS = {2: "signals", 3: "images", 4: "volumes"}  # what a model of input rank r restores


def _read_signal_csv(path: pathlib.Path) -> tuple[np.ndarray, list[str]]:
    """A CSV file of signals (a header, then one signal per row) as float64 rows, and its header."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise InputError(f"Input {str(path)!r} needs a header row and at least one signal per row.")
    values = [[parse_number(cell.strip()) for cell in row] for row in rows[1:]]
    if any(len(row) != len(rows[0]) or any(v is None or not math.isfinite(v) for v in row) for row in values):
        raise InputError(f"Input {str(path)!r}: every row must hold one finite number per header column.")
    return np.asarray(values, "float64"), [cell.strip() for cell in rows[0]]


def read_restoration_input(path: str | os.PathLike, input_shape: Sequence[int]) -> tuple[np.ndarray, dict[str, Any]]:
    """One file for a restoration model, at its own size: an image (png, jpg, tif, ...; integer
    pixels scaled to [0, 1], floats kept; a TIFF of several pages is a volume), an array (.npy: one sample or a batch) or, for signals, a CSV file (a
    header, then one signal per row). Returns a batch of the model's rank and what writing
    the result back needs; refuses, in one line naming the file, a file that cannot be read,
    an empty batch, values float32 cannot hold, and a number of channels the model does not take."""
    path, input_shape = pathlib.Path(path), tuple(input_shape)
    rank, channels = len(input_shape), input_shape[-1]
    if not path.is_file():
        raise InputError(f"Input {str(path)!r}: no such file.")
    suffix = path.suffix.lower()
    info: dict[str, Any] = {"suffix": suffix, "wide": False, "header": None, "shape": None}
    if suffix == ".csv":
        if rank != 2 or channels != 1:
            raise InputError(f"Input {str(path)!r} is a CSV file of signals; the model restores {input_shape[:-1]} "
                             f"{_KINDS[rank]} of {channels} channel(s). Use a .npy file.")
        values, info["header"] = read_input(path, _read_signal_csv)
        return as_float32(path, values)[..., None], info
    if suffix in (".npy", ".npz"):
        array = read_input(path, lambda p: read_array_file(p, suffix))
        info["shape"] = array.shape
        array = as_float32(path, array)
        if channels == 1 and (array.ndim == rank - 1 or (array.ndim == rank and array.shape[-1] != 1)):
            # (length,) or (height, width), or a stack of them, (N, length) or (N, height, width): one channel
            array = array[..., None]
        if array.ndim == rank:
            array = array[None]
    else:
        image = read_input(path, read_image)
        if rank != (4 if image.volume else 3):
            kind = "a volume" if image.volume else "an image"
            raise InputError(f"Input {str(path)!r} is {kind} of shape {image.pixels.shape}; the model restores "
                             f"samples of shape {input_shape}.")
        info["dtype"] = image.dtype
        info["wide"] = image.dtype == np.uint16
        array = image.pixels[None]
    if array.ndim != rank + 1 or array.size == 0:
        raise InputError(f"Input {str(path)!r} has shape {info['shape']}; the model restores samples of rank {rank} "
                         f"with {channels} channel(s), e.g. {input_shape}, or a batch of N >= 1 of them, none empty.")
    if array.shape[-1] != channels:
        kind = {1: "grey", 3: "colour (RGB)"}.get(array.shape[-1], f"{array.shape[-1]}-channel")
        wanted = {1: "grey", 3: "colour (RGB)"}.get(channels, f"{channels}-channel")
        raise InputError(
            f"Input {str(path)!r} has {array.shape[-1]} channel(s) ({kind}); the model restores {wanted} "
            f"inputs of {channels} channel(s). Convert it first. Received: an input of shape {array.shape[1:]}")
    return array, info


def output_path(source: pathlib.Path, out: pathlib.Path | None, count: int, name: str,
                allowed: Sequence[str], what: str) -> pathlib.Path:
    """Where the result for `source` goes: `out` itself (one input, a file name ending in one of
    `allowed`, not the input), `out/name` (a folder), or `name` next to the input."""
    if out is None:
        return source.with_name(name)
    if out.suffix and not out.is_dir():
        if count != 1:
            raise InputError(f"--out {str(out)!r} is one file, for one input; {count} inputs need a folder.")
        if out.suffix.lower() not in allowed:
            raise InputError(f"--out {str(out)!r}: {what} is written as {' or '.join(allowed)}. Received: {out.suffix}")
        if out.resolve() == source.resolve():
            raise InputError(f"--out {str(out)!r} is the input itself; it is never overwritten.")
        return out
    return out / name


def restored_path(source: pathlib.Path, out: pathlib.Path | None, count: int, images: bool,
                  volumes: bool = False) -> pathlib.Path:
    """Where a restored file goes (`output_path`): `NAME_restored.EXT`, where TIFF stays TIFF, other
    images become PNG, signals keep CSV or .npy, and volumes keep TIFF or .npy."""
    allowed = _VOLUME_OUTPUTS if volumes else _IMAGE_OUTPUTS if images else _SIGNAL_OUTPUTS
    kept = source.suffix.lower() if source.suffix.lower() in allowed else ".npy"
    suffix = kept if not images or volumes or source.suffix.lower() in (".npy", ".npz", *TIFF_SUFFIXES) else ".png"
    return output_path(source, out, count, f"{source.stem}{RESTORED_SUFFIX}{suffix}", allowed,
                       f"a restored {'volume' if volumes else 'image' if images else 'signal'}")


def write_restored(path: pathlib.Path, restored: np.ndarray, info: dict[str, Any]) -> pathlib.Path:
    """Writes a restored batch as PNG (one image), TIFF (one image or volume, in the input's type:
    integers rescaled to its range and clipped, floats as they are), .npy (the input's layout) or
    CSV (the input's header),
    as a new file: one that exists at `path` is never replaced (`dlimaging.files.write_new`)."""
    suffix = path.suffix.lower()

    def save(tmp: pathlib.Path) -> None:
        if suffix == ".png":
            write_image(tmp, np.clip(restored[0], 0.0, 1.0), "uint16" if info.get("wide") else "uint8")
        elif suffix in TIFF_SUFFIXES:  # the input's bit depth: integers rescaled to its range and clipped
            write_image(tmp, restored[0], info.get("dtype") or np.dtype("float32"))
        elif suffix == ".csv":
            header = info.get("header") or [str(i) for i in range(restored.shape[1])]
            lines = [",".join(header)] + [",".join(f"{v:.7g}" for v in row[:, 0]) for row in restored]
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            shape = info.get("shape")
            with open(tmp, "wb") as handle:
                np.save(handle, restored.reshape(shape) if shape is not None and np.prod(shape) == restored.size
                        else restored)

    return write_new(path, save)


def restore_files(version_dir, metadata: dict[str, Any], inputs: Sequence[str | os.PathLike],
                  out: str | os.PathLike | None = None, *, tiles="auto",
                  memory=None) -> list[tuple[str, pathlib.Path, tuple[int, ...]]]:
    """Runs an exported restoration model on each file at its own size and writes the result
    (see `restored_path`); returns (input, output, shape) per file. A large image goes in tiles
    (`dlimaging.serving.tiling.plan_tiles`: `tiles` "auto", "none" or a size; `memory` in GB).

    No file is replaced (`dlimaging.files.claim_output`): an `out` file that exists is refused
    before any work; a made-up `NAME_restored.EXT` that exists, or that another input of the
    same call writes, becomes the next free `NAME_restored-2.EXT`, `-3`, ... A model trained with
    `normalize="percentile"` (its metadata) gets each input normalised by its own percentiles, and
    its output is mapped back into the input's units (a TIFF written at the input's bit depth)."""
    shape = metadata["input"]["shape"]
    out = None if out is None else pathlib.Path(out)
    images = len(shape) in (3, 4)  # images and volumes
    planned, claimed = [], set()
    parse_tiles(tiles, len(shape) - 1, "--tiles"), check_memory(memory, "--memory")  # refused before any reading
    for source in inputs:
        x, info = read_restoration_input(source, shape)
        plan_tiles(tiles, x.shape[1:-1], metadata.get("tiling"), memory, option="--tiles", memory_option="--memory",
                   batch=len(x))  # every refusal before any work
        target = restored_path(pathlib.Path(source), out, len(inputs), images, volumes=len(shape) == 4)
        target = claim_output(target, option="--out", given=target == out, claimed=claimed, inputs=inputs)
        planned.append((pathlib.Path(source), x, info, target))
    predict = tiling_predictor(exported_predictor(version_dir, metadata), metadata, tiles, memory)
    # A model trained on percentile-normalised images: each input mapped alike, the result mapped back.
    restored = [predict_normalized(predict, x, metadata.get("normalize"), "restored", back=True)
                for _, x, _, _ in planned]
    low, high = metadata["input"].get("value_range", (0.0, 1.0))
    for (source, x, _, target), result in zip(planned, restored):  # every check before any file is written
        if not np.all(np.isfinite(result)):
            raise InputError(f"Input {str(source)!r}: the model's output holds NaN or inf values; the input's values, "
                             f"from {float(x.min()):.4g} to {float(x.max()):.4g}, lie far outside the range the "
                             f"model was trained on, [{low:g}, {high:g}].")
        if images and target.suffix.lower() in (".png", *TIFF_SUFFIXES) and len(result) != 1:
            raise InputError(f"Input {str(source)!r} holds {len(result)} images; a {target.suffix} file holds one. "
                             "Use --out NAME.npy.")
        if result.ndim == 5 and target.suffix.lower() == ".png":
            raise InputError(f"Input {str(source)!r} is a volume; a PNG holds an image. Use --out NAME.tif or NAME.npy.")
    written = []
    for (source, x, info, target), result in zip(planned, restored):
        written.append((str(source), write_restored(target, result, info), tuple(x.shape[1:])))
    return written
