"""Restoration and segmentation folders, streamed: listed with headers, split by file, decoded in `tf.data`.

A folder of clean images (restoration) or of `images/` and `masks/` (segmentation) is not held in
memory when `cache` is "none" or "disk", or "auto" finds its decoded training images not under a
quarter of the available memory (`dlimaging.data.streaming.choose_cache`); otherwise the
in-memory loaders run as before. Streamed:

- the files are listed from their headers (`read_header`) and split by file, seeded
  (`split_items`: the split the in-memory loader makes);
- training patches are drawn per epoch as the in-memory sampler draws them (an image picked in
  proportion to the places a patch can take in it, a random place, flip and quarter turn): the
  epoch's plan says how many patches each file gives (one multinomial draw, by seed and epoch),
  and each file drawn is decoded once and cut into its patches inside the pipeline;
  `INTERLEAVE` files are decoded at a time and the patches shuffled within `PATCH_BUFFER`, so
  memory holds a few decoded images and a buffer of patches, whatever the folder's size;
- validation and test tiles (or whole images) are produced file by file, corrupted with the draws
  the in-memory loader uses (tile i with (seed, i)), and cached as `cache` says ("disk": in a
  temporary folder; "none": decoded again each epoch).
"""

from __future__ import annotations

import itertools
import pathlib
import warnings

import numpy as np
import tensorflow as tf

from dlimaging.data.images import (
    FOLDER_SUFFIXES,
    UnreadableImage,
    read_header,
    read_image,
    read_mask,
)
from dlimaging.data.normalize import normalize_item
from dlimaging.data.streaming import (
    DISK_SHUFFLE_BUFFER,
    cached,
    choose_cache,
    guarded,
)
from dlimaging.errors import InputError

INTERLEAVE = 4  # files decoded at a time for training patches
PATCH_BUFFER = DISK_SHUFFLE_BUFFER  # training patches shuffled within


def list_clean_folder(source: str):
    """(file, header) pairs of a restoration folder (sub-folders included), unreadable files skipped
    with a warning; volumes and channel counts that disagree refused, as `clean_folder` does."""
    root = pathlib.Path(source)
    listed = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in FOLDER_SUFFIXES and p.is_file()):
        try:
            listed.append((path, read_header(path)))
        except UnreadableImage as error:
            warnings.warn(f"Skipping unreadable image {path}: {error}", stacklevel=4)
    if not listed:
        raise InputError(f"`source` {source!r} holds no readable image ({', '.join(FOLDER_SUFFIXES)}).")
    files, headers = [f for f, _ in listed], [h for _, h in listed]
    volume = next((f for f, h in listed if h.volume), None)
    if volume is not None:
        raise InputError(f"`source` {source!r}: {str(volume.relative_to(root))!r} is a volume (depth, height, width, "
                         "channels); a restoration folder holds 2D images.")
    channels = [h.shape[-1] for h in headers]
    if len(set(channels)) > 1 and set(channels) != {1, 3}:
        other = next(k for k, c in enumerate(channels) if c != channels[0])
        raise InputError(f"`source` {source!r}: {str(files[0].relative_to(root))!r} has {channels[0]} channel(s) and "
                         f"{str(files[other].relative_to(root))!r} {channels[other]}; the images of a folder share "
                         "their channels.")
    return listed


def streams(cache: str, shapes, channels: int) -> tuple[str, str, object] | None:
    """(mode, note, disk) when the folder streams; None when "auto" or "memory" keep it in memory."""
    if cache == "memory":
        return None
    largest = tuple(int(max(s[axis] for s in shapes)) for axis in range(len(shapes[0]) - 1))
    mode, note, disk = choose_cache(cache, len(shapes), (*largest, channels))  # at most: the largest image
    return None if mode == "memory" else (mode, note, disk)


def reader(channels: int, masks: dict | None, normalize=None):
    """A numpy function: a file name (and its mask's, for segmentation) to float32 pixels of
    `channels` channels (grey repeated as RGB), mapped by their own percentiles when `normalize`
    gives bounds (`dlimaging.data.normalize`), the mask's class ids riding as a last channel."""

    def image(path: str) -> np.ndarray:
        pixels = read_image(path).pixels
        if pixels.shape[-1] != channels:
            pixels = np.repeat(pixels, channels, -1) if pixels.shape[-1] == 1 else pixels[..., :channels]
        if normalize is not None:
            pixels = normalize_item(pixels, normalize)
        if masks is None:
            return pixels
        mask = read_mask(masks["files"][path])
        if masks["white_is_1"]:
            mask = (mask == 255).astype(mask.dtype)
        return np.concatenate([pixels, mask[..., None].astype("float32")], -1)

    return lambda path: guarded(image, path.decode()).astype("float32", copy=False)


def _decode(path, read, depth: int):
    pixels = tf.numpy_function(read, [path], tf.float32, stateful=False)
    return tf.ensure_shape(pixels, (None, None, depth))


def cut_patch(image, key, patch: tuple[int, int], augment: bool):
    """One random `patch` of `image` (height, width, channels) at a place drawn by `key`, turned
    by one of the 8 flips and rotations when `augment` (the in-memory sampler's folds 2 to 5)."""
    seed = tf.stack([key, tf.constant(0x5EED, tf.int64)])
    fold = lambda n: tf.random.experimental.stateless_fold_in(seed, n)  # noqa: E731
    size = tf.shape(image, tf.int64)
    row = tf.random.stateless_uniform([], fold(2), 0, size[0] - patch[0] + 1, tf.int64)
    col = tf.random.stateless_uniform([], fold(3), 0, size[1] - patch[1] + 1, tf.int64)
    clean = image[row:row + patch[0], col:col + patch[1]]
    if augment:
        clean = tf.image.rot90(clean, tf.random.stateless_uniform([], fold(4), 0, 4, tf.int32))
        clean = tf.where(tf.random.stateless_uniform([], fold(5)) < 0.5, tf.reverse(clean, [-2]), clean)
    return clean, fold


def train_patches(files, shapes, patch, count: int, seed: int, read, depth: int, finish) -> tf.data.Dataset:
    """`count` random patches per epoch of the training `files` (see the module's docstring),
    each `finish(patch, fold)`ed (restoration: moved and corrupted)."""
    names = np.asarray([str(f) for f in files])
    places = np.array([np.prod([s - p + 1 for s, p in zip(shape[:2], patch)]) for shape in shapes], "float64")
    share = places / places.sum()
    epochs = itertools.count()

    def plan():
        rng = np.random.default_rng([seed, next(epochs)])
        counts = rng.multinomial(count, share)
        for k in rng.permutation(len(names)):
            if counts[k]:
                yield names[k], counts[k], rng.integers(0, 2**62)

    def patches(path, n, key):
        image = _decode(path, read, depth)
        keys = tf.data.Dataset.range(n).map(lambda j: tf.random.experimental.stateless_fold_in(
            tf.stack([key, tf.constant(1, tf.int64)]), j)[0])
        return keys.map(lambda k: finish(*cut_patch(image, k, patch, augment=True)))

    signature = (tf.TensorSpec((), tf.string), tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.int64))
    ds = tf.data.Dataset.from_generator(plan, output_signature=signature)
    ds = ds.interleave(patches, cycle_length=INTERLEAVE, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.shuffle(min(count, PATCH_BUFFER), seed=seed, reshuffle_each_iteration=True)


def tile_count(shape, patch) -> int:
    """The tiles `dlimaging.data.restoration.tiles` cuts from an image of `shape`."""
    return int(np.prod([size // side for size, side in zip(shape[:2], patch)]))


def eval_tiles(files, read, depth: int, patch, tiles) -> tf.data.Dataset:
    """The tiles of `files`, file by file (or the whole images when `patch` is None), enumerated."""
    ds = tf.data.Dataset.from_tensor_slices(np.asarray([str(f) for f in files]))
    if patch is None:
        ds = ds.map(lambda path: _decode(path, read, depth))
    else:
        def cut(path):
            cut = np.stack(tiles(read(path), patch)).astype("float32")
            return cut

        ds = ds.map(lambda path: tf.ensure_shape(tf.numpy_function(cut, [path], tf.float32, stateful=False),
                                                 (None, *patch, depth))).unbatch()
    return ds.enumerate()


def batched(ds, batch_size: int, mode: str, disk, split: str) -> tf.data.Dataset:
    return cached(ds, mode, disk, split).batch(batch_size).prefetch(tf.data.AUTOTUNE)
