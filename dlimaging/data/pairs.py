"""Paired restoration data (CARE, Weigert et al. 2018): the same field acquired twice, at low and at
high quality.

`load_dataset("pairs:LOW_DIR,HIGH_DIR", task="restoration")`, or a folder holding `low/` and
`high/`, comes here. Files are matched by name: their path relative to LOW_DIR (or HIGH_DIR)
without the suffix, so `low/a/cell1.tif` pairs with `high/a/cell1.png`. A file without its
partner, a pair whose shapes differ, and images mixed with volumes are refused in one line naming
the file. The pairs are split by PAIR (validation and test patches come from pairs training never
sees), never by patch. Training draws `patches_per_epoch` random patches per epoch with
restoration's sampler (`random_patches`): the low and the high image ride as the channels of one
item, so both are cut at one place and turned (and moved by `augmentation`) alike. There is no
synthetic corruption: the low image is the input, the high one the target.
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow as tf

from dlimaging.data.bundle import DatasetBundle
from dlimaging.data.images import FOLDER_SUFFIXES, read_image, value_range
from dlimaging.data.joint import check_joint_options
from dlimaging.data.normalize import check_rank, normalize_item, normalize_name
from dlimaging.data.restoration import (
    TRAIN_SAMPLE,
    check_patch_settings,
    default_patch,
    image_pairs_bundle,
    random_patches,
    split_items,
    tiles,
)
from dlimaging.errors import InputError

PREFIX = "pairs:"
FOLDERS = ("low", "high")  # a folder holding these two is a pairs source for restoration


def is_pairs(source: str) -> bool:
    """True for `pairs:LOW_DIR,HIGH_DIR` and for a folder holding `low/` and `high/`."""
    return source.startswith(PREFIX) or all((pathlib.Path(source) / f).is_dir() for f in FOLDERS)


def pair_folders(source: str) -> tuple[pathlib.Path, pathlib.Path, str]:
    """(low folder, high folder, the data's name) of a pairs source."""
    if not source.startswith(PREFIX):
        root = pathlib.Path(source)
        return root / FOLDERS[0], root / FOLDERS[1], root.name
    parts = [p.strip() for p in source[len(PREFIX):].split(",")]
    if len(parts) != 2 or not all(parts):
        raise InputError(f"`source` {source!r}: a pairs source names two folders, {PREFIX}LOW_DIR,HIGH_DIR. "
                         f"Received: source={source!r}")
    for part in parts:
        if not pathlib.Path(part).is_dir():
            raise InputError(f"`source` {source!r}: {part!r} is not a folder.")
    low, high = map(pathlib.Path, parts)
    return low, high, f"{low.name}_{high.name}"


def _listing(folder: pathlib.Path, source: str) -> dict[str, pathlib.Path]:
    """The image files under `folder` by name: relative path without the suffix."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES)
    named: dict[str, pathlib.Path] = {}
    for path in files:
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in named:
            raise InputError(f"`source` {source!r}: {str(named[key])!r} and {str(path)!r} have the same name; "
                             "pairs are matched by name without the suffix.")
        named[key] = path
    if not files:
        raise InputError(f"`source` {source!r}: {str(folder)!r} holds no image ({', '.join(FOLDER_SUFFIXES)}).")
    return named


def read_pairs(source: str):
    """The matched pairs: (names, low images, high images, the data's name, max_val); see the module."""
    low_dir, high_dir, name = pair_folders(source)
    lows, highs = _listing(low_dir, source), _listing(high_dir, source)
    for one, other, folder in ((lows, highs, high_dir), (highs, lows, low_dir)):
        missing = sorted(set(one) - set(other))
        if missing:
            raise InputError(f"`source` {source!r}: {str(one[missing[0]])!r} has no partner of the same name in "
                             f"{str(folder)!r} ({len(missing)} such file(s)).")
    names = sorted(lows)
    read = [(read_image(lows[n]), read_image(highs[n])) for n in names]
    for n, (low, high) in zip(names, read):
        if low.pixels.shape != high.pixels.shape:
            raise InputError(f"`source` {source!r}: pair {n!r} differs in shape: {str(lows[n])!r} is "
                             f"{low.pixels.shape}, {str(highs[n])!r} {high.pixels.shape}.")
    first = read[0][0]
    for n, (low, _) in zip(names, read):
        if low.volume != first.volume or low.channels != first.channels:
            raise InputError(f"`source` {source!r}: {str(lows[n])!r} has shape {low.pixels.shape} and "
                             f"{str(lows[names[0]])!r} {first.pixels.shape}; the pairs share their rank and channels.")
    high_range = value_range([high for _, high in read])
    return names, [low.pixels for low, _ in read], [high.pixels for _, high in read], name, \
        high_range[1] - min(0.0, high_range[0])


def _refuse(task: str, corruption, n2v_fraction) -> None:
    if corruption is not None:
        raise InputError(f"`corruption` does not apply to a pairs source: its low images are the input. "
                         f"Received: corruption={corruption!r}")
    if n2v_fraction:
        raise InputError(f"Noise2Void (target='self') learns from noisy images alone; a pairs source has "
                         f"targets. Received: n2v_fraction={n2v_fraction!r}")


def _split_channels(stacked: list[np.ndarray], channels: int, shape: tuple[int, ...]):
    if not stacked:
        empty = np.zeros((0, *shape, channels), "float32")
        return empty, empty.copy()
    array = np.stack(stacked)
    return array[..., :channels], array[..., channels:]


def load_pairs(source: str, *, task: str, corruption, patch_size, patches_per_epoch, validation_split: float,
               test_split: float, batch_size: int, seed: int, augmentation=None, n2v_fraction=None,
               normalize=None, cache: str = "memory") -> DatasetBundle:
    """The `DatasetBundle` of paired restoration data: `(low, high)` batches; see the module's docstring.
    The pairs are read into memory whatever `cache` says (pairs do not stream yet).
    `normalize` (percentile bounds, `dlimaging.data.normalize`) maps each low image by its own
    percentiles and its high partner by the LOW image's."""
    _refuse(task, corruption, n2v_fraction)
    check_patch_settings(patch_size, patches_per_epoch)
    names, lows, highs, name, max_val = read_pairs(source)
    rank = lows[0].ndim  # 3: images, 4: volumes
    check_rank(normalize, lows[0].shape, source)
    if normalize is not None:
        highs = [normalize_item(h, normalize, reference=low) for h, low in zip(highs, lows)]
        lows = [normalize_item(low, normalize) for low in lows]
        max_val = float(max(h.max() for h in highs)) - min(0.0, float(min(h.min() for h in highs)))
    patch_size = default_patch(lows, rank) if patch_size is None else patch_size
    patch = (patch_size,) * (rank - 1)
    small = [n for n, i in zip(names, lows) if any(size < side for size, side in zip(i.shape, patch))]
    if small:
        shape = lows[names.index(small[0])].shape
        raise InputError(f"`patch_size` {patch_size} is larger than {len(small)} pair(s) of `source` {source!r} "
                         f"(e.g. {small[0]!r}, of shape {shape}). Received: patch_size={patch_size}")
    train, validation, test = split_items(len(names), validation_split, test_split, seed, source)
    channels = lows[0].shape[-1]
    stacked = [np.concatenate([low, high], -1) for low, high in zip(lows, highs)]
    moves = check_joint_options(augmentation, image=True, moving_only=True, volume=rank == 4)
    if patches_per_epoch is None:
        patches_per_epoch = sum(len(tiles(stacked[k], patch)) for k in train)

    def sampled(count, key):
        ds = random_patches([stacked[k] for k in train], patch, count=count, seed=key, moves=moves)
        return ds.map(lambda t: (t[..., :channels], t[..., channels:]))

    train_ds = sampled(patches_per_epoch, seed).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    fixed = sampled(min(patches_per_epoch, TRAIN_SAMPLE), seed + 1).batch(TRAIN_SAMPLE)
    arrays = dict(zip(("x_train", "y_train"), (a.numpy() for a in next(iter(fixed)))))
    for split, indices in (("validation", validation), ("test", test)):
        x, y = _split_channels([t for k in indices for t in tiles(stacked[k], patch)], channels, patch)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    return image_pairs_bundle(
        train_ds, arrays, batch_size, lows, task=task, name=name, num_train=patches_per_epoch, max_val=max_val,
        corruption=(), normalize=normalize_name(normalize),
        items={split: [names[k] for k in indices] for split, indices in
               (("train", train), ("validation", validation), ("test", test))})


def pairs_only(source: str, **_options):
    """The loader of a pairs source for a task other than restoration."""
    raise InputError(f"`source` {source!r} holds pairs of low- and high-quality images: use it with "
                     f"task='restoration'. Received: source={source!r}")
