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
from dlimaging.data.images import FOLDER_SUFFIXES, read_header, read_image, value_range
from dlimaging.data.item_stream import (
    batched,
    eval_tiles,
    streams,
    tile_count,
    train_patches,
)
from dlimaging.data.joint import check_joint_options, move_pair
from dlimaging.data.normalize import check_rank, normalize_item, normalize_name
from dlimaging.data.restoration import (
    DEFAULT_IMAGE_PATCH,
    TRAIN_SAMPLE,
    check_patch_settings,
    default_patch,
    image_pairs_bundle,
    random_patches,
    split_items,
    tiles,
)
from dlimaging.data.streaming import attach_cache, guarded, value_range_of
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


def match_pairs(source: str):
    """(names, {name: low file}, {name: high file}, the data's name): the files matched by name, a
    file without its partner refused in one line naming it."""
    low_dir, high_dir, name = pair_folders(source)
    lows, highs = _listing(low_dir, source), _listing(high_dir, source)
    for one, other, folder in ((lows, highs, high_dir), (highs, lows, low_dir)):
        missing = sorted(set(one) - set(other))
        if missing:
            raise InputError(f"`source` {source!r}: {str(one[missing[0]])!r} has no partner of the same name in "
                             f"{str(folder)!r} ({len(missing)} such file(s)).")
    return sorted(lows), lows, highs, name


def _check_shapes(source: str, names, lows, highs, low_shapes, high_shapes) -> None:
    """Partners share their shape, and all pairs their rank and channels (one line naming a file)."""
    for n, low, high in zip(names, low_shapes, high_shapes):
        if tuple(low) != tuple(high):
            raise InputError(f"`source` {source!r}: pair {n!r} differs in shape: {str(lows[n])!r} is "
                             f"{tuple(low)}, {str(highs[n])!r} {tuple(high)}.")
    first = low_shapes[0]
    for n, low in zip(names, low_shapes):
        if len(low) != len(first) or low[-1] != first[-1]:
            raise InputError(f"`source` {source!r}: {str(lows[n])!r} has shape {tuple(low)} and "
                             f"{str(lows[names[0]])!r} {tuple(first)}; the pairs share their rank and channels.")


def read_pairs(source: str):
    """The matched pairs: (names, low images, high images, the data's name, max_val); see the module."""
    names, lows, highs, name = match_pairs(source)
    read = [(read_image(lows[n]), read_image(highs[n])) for n in names]
    _check_shapes(source, names, lows, highs, [low.pixels.shape for low, _ in read],
                  [high.pixels.shape for _, high in read])
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
    Pairs of 2D images stream from disk as `cache` says (`_streamed_pairs`); volumes, and "memory"
    (or "auto" with room), are read into memory.
    `normalize` (percentile bounds, `dlimaging.data.normalize`) maps each low image by its own
    percentiles and its high partner by the LOW image's."""
    _refuse(task, corruption, n2v_fraction)
    check_patch_settings(patch_size, patches_per_epoch)
    if cache != "memory":
        bundle = _streamed_pairs(source, task, cache, patch_size, patches_per_epoch, (validation_split, test_split),
                                 batch_size, seed, augmentation, normalize)
        if bundle is not None:
            return bundle
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


def _pair_reader(partners: dict[str, str], normalize):
    """A numpy function: a low file's name to its pixels and its high partner's as one float32 item
    (low channels first), each low image mapped by its own percentiles and its partner by the low
    image's when `normalize` gives bounds, as the in-memory loader does."""

    def read(path: str) -> np.ndarray:
        low, high = read_image(path).pixels, read_image(partners[path]).pixels
        if normalize is not None:
            low, high = normalize_item(low, normalize), normalize_item(high, normalize, reference=low)
        return np.concatenate([low, high], -1)

    return lambda path: guarded(read, path.decode()).astype("float32", copy=False)


def _mapped_ranges(read, files, channels: int):
    """The (min, max) of the mapped low images and of their partners, read one pair at a time."""
    inputs, targets = [np.inf, -np.inf], [np.inf, -np.inf]
    for path in files:
        both = read(path.encode())
        for bounds, part in ((inputs, both[..., :channels]), (targets, both[..., channels:])):
            bounds[:] = min(bounds[0], float(part.min())), max(bounds[1], float(part.max()))
    return tuple(inputs), tuple(targets)


def _streamed_pairs(source, task, cache, patch_size, patches_per_epoch, split, batch_size, seed, augmentation,
                    normalize) -> DatasetBundle | None:
    """Pairs of 2D images streamed (`dlimaging.data.item_stream`): listed from their headers, split by
    pair as in memory, training patches cut at one place in both partners, held-out tiles pair by
    pair; None when they are volumes or `cache` keeps them in memory."""
    names, lows, highs, name = match_pairs(source)
    low_headers, high_headers = [read_header(lows[n]) for n in names], [read_header(highs[n]) for n in names]
    shapes = [h.shape for h in low_headers]
    _check_shapes(source, names, lows, highs, shapes, [h.shape for h in high_headers])
    channels = shapes[0][-1]
    streamed = None if low_headers[0].volume else streams(cache, shapes, 2 * channels)
    if streamed is None:
        return None
    (mode, note, disk), files = streamed, [str(lows[n]) for n in names]
    read = _pair_reader({str(lows[n]): str(highs[n]) for n in names}, normalize)
    check_rank(normalize, shapes[0], source)
    if normalize is None:  # the inputs' range, and the targets' for max_val, as in memory
        inputs, targets = value_range_of(files, low_headers), value_range_of([str(highs[n]) for n in names],
                                                                               high_headers)
    else:  # once mapped: read pair by pair
        inputs, targets = _mapped_ranges(read, files, channels)
    patch_size = DEFAULT_IMAGE_PATCH if patch_size is None else patch_size
    patch = (patch_size, patch_size)
    small = [k for k, shape in enumerate(shapes) if min(shape[:2]) < patch_size]
    if small:
        raise InputError(f"`patch_size` {patch_size} is larger than {len(small)} pair(s) of `source` {source!r} "
                         f"(e.g. {names[small[0]]!r}, of shape {shapes[small[0]]}). Received: patch_size={patch_size}")
    train, validation, test = split_items(len(names), *split, seed, source)
    patches_per_epoch = patches_per_epoch or sum(tile_count(shapes[k], patch) for k in train)
    moves = check_joint_options(augmentation, image=True, moving_only=True, volume=False)

    def finish(both, fold):  # moved alike (the in-memory sampler's fold 7), then parted
        if moves:
            both, _ = move_pair(both, both, fold(7), moves)
        return both[..., :channels], both[..., channels:]

    train_ds = train_patches([files[k] for k in train], [shapes[k] for k in train], patch, patches_per_epoch, seed,
                             read, 2 * channels, finish).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    held_out = {}
    for split_name, indices in (("validation", validation), ("test", test)):
        ds = eval_tiles([files[k] for k in indices], read, 2 * channels, patch, tiles).map(
            lambda i, both: (both[..., :channels], both[..., channels:]))
        count = sum(tile_count(shapes[k], patch) for k in indices)
        held_out[split_name] = (batched(ds, batch_size, mode, disk, split_name) if count else None, count)
    return attach_cache(DatasetBundle(
        train=train_ds, validation=held_out["validation"][0], test=held_out["test"][0],
        input_shape=(*patch, channels), num_classes=None, class_names=[], task=task, name=name,
        num_train=patches_per_epoch, num_validation=held_out["validation"][1], num_test=held_out["test"][1],
        value_range=inputs, max_val=targets[1] - min(0.0, targets[0]), corruption=(), normalize=normalize_name(normalize),
        cache=mode, cache_note=note,
        items={s: [names[k] for k in indices] for s, indices in
               (("train", train), ("validation", validation), ("test", test))}), disk)


def pairs_only(source: str, **_options):
    """The loader of a pairs source for a task other than restoration."""
    raise InputError(f"`source` {source!r} holds pairs of low- and high-quality images: use it with "
                     f"task='restoration'. Received: source={source!r}")
