"""Restoration data: clean images or signals, split by image, cut into patches and corrupted on the fly.

`load_dataset(source, task=<a task whose labels are clean signals>, corruption=...)`
comes here. The clean data is a list of items (whole images, signals or volumes), each
of shape (height, width, channels), (length, channels) or (depth, height, width, channels):
scikit-image's sample images, any folder of images, a source whose samples
are signals (the synthetic spectra, MNIST-1D), or the synthetic volumes (`blobs3d`).
A volume's patches are cubes; their flips and quarter turns are in the (height, width) plane.

The items are split by ITEM: validation and test patches come from whole
images that training never sees. Training draws `patches_per_epoch` random
patches (random item, weighted by its size; random place; for square image
patches a random flip or rotation) and corrupts each with a fresh draw, every
epoch. Validation and test items are tiled into patches once, and corrupted
once with seeded draws, so their scores are comparable from epoch to epoch
and from trial to trial.
"""

from __future__ import annotations

import itertools
import pathlib
import warnings

import numpy as np
import tensorflow as tf

from dlimaging import registry
from dlimaging.data.bundle import DatasetBundle, find_source
from dlimaging.data.corruption import (
    check_corruption,
    check_for_patch,
    check_for_range,
    check_for_samples,
)
from dlimaging.data.degrade import corrupt
from dlimaging.data.images import (
    FOLDER_SUFFIXES,
    UnreadableImage,
    integer_scale,
    read_image,
    value_range,
)
from dlimaging.data.item_stream import (
    batched,
    eval_tiles,
    list_clean_folder,
    reader,
    streams,
    tile_count,
    train_patches,
)
from dlimaging.data.joint import check_joint_options, move_pair
from dlimaging.data.n2v import mask_once, mask_patch
from dlimaging.data.normalize import check_rank, normalize_item, normalize_name
from dlimaging.data.streaming import attach_cache, value_range_of
from dlimaging.errors import InputError
from dlimaging.validation import check_number

# scikit-image's sample photographs that ship in its wheel (no download); the synthetic ones
# (checkerboard, colorwheel, blobs, horse, logo), the tiny faces (lfw_subset) and the huge, mostly
# black retina are left out. Two are read under another name (`RENAMED`): the coffee cup (the name
# "coffee" is the coffee spectra's source) and the left view of the stereo motorcycle pair (only
# one view, so the two near-identical views cannot fall on both sides of a split).
SAMPLE_IMAGES = ("astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee_cup", "coins", "grass",
                 "gravel", "hubble_deep_field", "immunohistochemistry", "moon", "motorcycle", "page", "rocket",
                 "text")


RENAMED = {"coffee_cup": lambda data: data.coffee(), "motorcycle": lambda data: data.stereo_motorcycle()[0]}
COLOUR = "rgb"  # the option that keeps the colour photographs in colour
DEFAULT_IMAGE_PATCH = 64
DEFAULT_VOLUME_PATCH = 16  # a cube: 4,096 voxels, as many as a 64 x 64 image patch
TRAIN_SAMPLE = 256  # training patches kept as arrays (one fixed draw), for adapting and plotting


def _to_unit(array: np.ndarray) -> np.ndarray:
    scale = integer_scale(array.dtype)
    array = array.astype("float32")
    return array / np.float32(scale) if scale else array


def clean_skimage(source: str, *, prefix=None, **_options):
    """scikit-image's sample images, grey ("skimage"), or "skimage:rgb" (the colour ones, in colour), or
    "skimage:camera,moon,..." (those, grey)."""
    import skimage.color
    import skimage.data

    options = source[len(prefix):].split(",") if prefix and source.startswith(prefix) else []
    options = [o.strip() for o in options if o.strip()]
    colour = COLOUR in options
    names = [o for o in options if o != COLOUR] or list(SAMPLE_IMAGES)
    unknown = [n for n in names if n not in SAMPLE_IMAGES]
    if unknown:
        raise InputError(
            f"`source` {source!r}: {unknown[0]!r} is not one of scikit-image's sample images here; "
            f"expected {', '.join(SAMPLE_IMAGES)} (or {COLOUR!r} for the colour ones in colour)."
        )
    items = []
    for name in names:
        image = RENAMED[name](skimage.data) if name in RENAMED else getattr(skimage.data, name)()
        if colour and image.ndim == 2:
            continue
        if not colour and image.ndim == 3:
            image = (skimage.color.rgb2gray(image[..., :3]) * 255).round().astype("uint8")
        image = _to_unit(image[..., :3] if image.ndim == 3 else image[..., None])
        items.append((name, image))
    return items, (1.0, source.split(":", 1)[0])


def clean_folder(source: str, **_options):
    """Every image in the folder and its sub-folders (`dlimaging.data.images`: PNG, JPEG, TIFF,
    2D .npy): grey when all are grey, else colour. Its `max_val` is 1 for integer pixels, the
    data's own span where a file holds floats."""
    root = pathlib.Path(source)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in FOLDER_SUFFIXES and p.is_file())
    images = []
    for path in files:
        try:
            images.append((str(path.relative_to(root)), read_image(path)))
        except UnreadableImage as error:
            warnings.warn(f"Skipping unreadable image {path}: {error}", stacklevel=3)
    if not images:
        raise InputError(f"`source` {source!r} holds no readable image ({', '.join(FOLDER_SUFFIXES)}).")
    volume = next((name for name, image in images if image.volume), None)
    if volume is not None:
        raise InputError(f"`source` {source!r}: {volume!r} is a volume (depth, height, width, channels); a "
                         "restoration folder holds 2D images.")
    channels = {image.channels for _, image in images}
    if len(channels) > 1 and channels != {1, 3}:
        (a, first), (b, other) = images[0], next(item for item in images if item[1].channels != images[0][1].channels)
        raise InputError(f"`source` {source!r}: {a!r} has {first.channels} channel(s) and {b!r} "
                         f"{other.channels}; the images of a folder share their channels.")
    items = [(name, np.repeat(image.pixels, 3, -1) if 3 in channels and image.channels == 1 else image.pixels)
             for name, image in images]
    low, high = value_range([image for _, image in images])
    return items, (high - min(0.0, low), root.name)


def clean_samples(source: str, **options):
    """The samples of a signal source (the synthetic spectra, MNIST-1D), each an item."""
    loaded = find_source(source).load(source, **options)
    arrays, name = loaded[0], loaded[2]
    x = np.concatenate([arrays[k] for k in ("x", "x_test") if k in arrays]).astype("float32")
    if x.ndim != 3:
        raise InputError(f"`source` {source!r}: restoration needs signals (N, length, channels); it holds {x.shape}.")
    max_val = float(x.max() - min(0.0, float(x.min())))
    return [(str(i), sample) for i, sample in enumerate(x)], (max_val, name)


def split_items(count: int, validation_split: float, test_split: float, seed: int, source: str):
    """Item indices for train, validation and test: whole items, shuffled by `seed`; a fraction
    above 0 gets at least one item, and training keeps at least one."""
    sizes = [0 if f == 0 else max(1, round(count * f)) for f in (validation_split, test_split)]
    if count - sum(sizes) < 1:
        raise InputError(
            f"`source` {source!r} has {count} image(s): validation_split={validation_split} and "
            f"test_split={test_split} take {sizes[0]} and {sizes[1]} whole image(s) and leave none for training."
        )
    order = np.random.default_rng(seed).permutation(count)
    return order[sum(sizes):], order[:sizes[0]], order[sizes[0]:sum(sizes)]


def tiles(item: np.ndarray, patch: tuple[int, ...]) -> list[np.ndarray]:
    """Non-overlapping patches covering the item, centred (the margins left are split evenly): an
    image is cut into (height, width) patches, a volume into (depth, height, width) ones."""
    spatial = item.shape[:len(patch)]
    counts = [size // side for size, side in zip(spatial, patch)]
    starts = [(size - count * side) // 2 for size, count, side in zip(spatial, counts, patch)]
    return [item[tuple(slice(start + i * side, start + (i + 1) * side) for start, i, side in zip(starts, index, patch))]
            for index in itertools.product(*(range(count) for count in counts))]


def corrupt_once(clean: np.ndarray, steps, seed: int, max_val: float) -> np.ndarray:
    """Each patch corrupted once, patch i with the draw (seed, i): the same every time."""
    ds = tf.data.Dataset.from_tensor_slices((clean, tf.range(len(clean), dtype=tf.int64)))
    ds = ds.map(lambda x, i: corrupt(x, steps, tf.stack([tf.constant(seed, tf.int64), i]), max_val))
    return np.concatenate(list(ds.batch(256).as_numpy_iterator())) if len(clean) else clean


class _Sampler:
    """Random patches of the training items, as a function of one int64 key (the draw).

    Items are images (height, width, channels), signals as images of height 1, or volumes (depth,
    height, width, channels); inside, an image is a volume of depth 1, and `patch` is (height,
    width) or (depth, height, width)."""

    def __init__(self, items, patch, steps, max_val, augment, moves=None):
        self.volume = len(patch) == 3
        self.patch = tuple(patch) if self.volume else (1,) + tuple(patch)
        self.steps, self.max_val, self.augment = steps, float(max_val), augment
        self.moves = moves or {}  # joint augmentation's moving options, drawn per patch
        items = [i if self.volume else i[None] for i in items]
        self.channels = items[0].shape[-1]
        self.flat = tf.constant(np.concatenate([i.reshape(-1, self.channels) for i in items]))
        self.offsets = tf.constant(np.cumsum([0] + [int(np.prod(i.shape[:3])) for i in items[:-1]]), tf.int64)
        self.sizes = tf.constant([i.shape[:3] for i in items], tf.int64)  # (depth, height, width) of each
        # An item is picked in proportion to the places a patch can take in it.
        places = np.array([np.prod([s - p + 1 for s, p in zip(i.shape[:3], self.patch)]) for i in items], "float64")
        self.logits = tf.constant(np.log(places)[None], tf.float32)

    def __call__(self, key):
        seed = tf.stack([key, tf.constant(0x5EED, tf.int64)])
        fold = lambda n: tf.random.experimental.stateless_fold_in(seed, n)  # noqa: E731
        i = tf.random.stateless_categorical(self.logits, 1, fold(1))[0, 0]
        size = self.sizes[i]
        # Folds 2 and 3 draw the row and column, as before volumes; 8 draws the slice.
        starts = [tf.random.stateless_uniform([], fold(n), 0, size[axis] - self.patch[axis] + 1, tf.int64)
                  for axis, n in ((0, 8), (1, 2), (2, 3))]
        z, rows, cols = (start + tf.range(side, dtype=tf.int64) for start, side in zip(starts, self.patch))
        index = (z[:, None, None] * size[1] + rows[None, :, None]) * size[2] + cols[None, None, :]
        clean = tf.gather(self.flat, self.offsets[i] + index)
        clean = clean if self.volume else clean[0]
        if self.augment:  # one of the 8 flips and rotations of a square patch (in each slice of a volume)
            clean = tf.image.rot90(clean, tf.random.stateless_uniform([], fold(4), 0, 4, tf.int32))
            clean = tf.where(tf.random.stateless_uniform([], fold(5)) < 0.5, tf.reverse(clean, [-2]), clean)
        if self.patch[1] == 1:  # a signal window
            clean = tf.reshape(clean, (self.patch[2], self.channels))
        if self.moves:  # moved before the corruption: the noisy patch moves with the clean one
            clean, _ = move_pair(clean, clean, fold(7), self.moves)
        return corrupt(clean, self.steps, fold(6), self.max_val), clean


def random_patches(items, patch: tuple[int, int], *, count: int, seed: int, moves=None) -> tf.data.Dataset:
    """`count` random square patches of the image `items` per epoch, a fresh draw each epoch: the
    training sampler of restoration, without the corruption. All the channels of an item are cut at
    one place and turned alike (a random flip or quarter turn, and `moves`: checked joint moving
    options), so a mask (segmentation) or a target (pairs) stacked as last channels stays on its image."""
    sampler = _Sampler(items, patch, (), 1.0, augment=True, moves=moves)
    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(count)
    return keys.map(lambda key: sampler(key)[1], num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def unlabelled(source: str, **_options):
    """The loader of a source of clean images only: it has no labels to learn."""
    task = registry.task_for_labels(registry.CLEAN)
    raise InputError(f"`source` {source!r} holds clean images without labels: use it with task={task!r} and a "
                     f"`corruption`. Received: source={source!r}")


def default_patch(items, rank: int) -> int:
    """The patch side when `patch_size` is None: a signal's whole (shortest) length, 64 for images,
    and for volumes 16, or their smallest side when it is shorter."""
    if rank == 2:
        return min(i.shape[1] for i in items)
    if rank == 4:
        return min(DEFAULT_VOLUME_PATCH, *(min(i.shape[:3]) for i in items))
    return DEFAULT_IMAGE_PATCH


def check_patch_settings(patch_size, patches_per_epoch):
    """`patch_size`: an int (square image patches, or a signal window) or None; `patches_per_epoch` an int or None."""
    if patch_size is not None:
        check_number("patch_size", patch_size, low=1, integer=True)
    if patches_per_epoch is not None:
        check_number("patches_per_epoch", patches_per_epoch, low=1, integer=True)


def _check_source(source: str, entry: registry.Source, task: str, corruption, n2v_fraction) -> tuple:
    """The corruption steps: a supervised task needs a corruption; Noise2Void (`n2v_fraction` set)
    takes a folder of images without one (they are the noisy images), and a source of clean images
    (the sample photographs, spectra) only with one (of which only the noisy version is used)."""
    if entry.clean is None:
        takers = [name for name, e in registry.SOURCES.items() if e.clean is not None]
        what = "Noise2Void (target='self') needs noisy images or signals" if n2v_fraction else \
            "a labelled dataset, not clean images or signals"
        raise InputError(
            f"`source` {source!r} is {'a dataset of pairs or labels: ' + what if n2v_fraction else what}: "
            f"task={task!r} needs one of {', '.join(takers)}. Received: source={source!r}"
        )
    if corruption is None and n2v_fraction and not entry.folder:
        raise InputError(
            f"`source` {source!r} holds clean images or signals, on which Noise2Void (target='self') has no noise "
            "to remove: give a `corruption` (only its noisy version is used) or a folder of noisy images. "
            "Received: corruption=None")
    if corruption is None and not n2v_fraction:
        raise InputError(f"task={task!r} needs a `corruption`, e.g. {{'kind': 'gaussian', 'sigma': 0.1}}. "
                         "Received: corruption=None")
    return () if corruption is None else check_corruption(corruption)


def load_restoration(source: str, entry: registry.Source, *, task: str, corruption, patch_size, patches_per_epoch,
                     validation_split: float, test_split: float, batch_size: int, seed: int, options: dict,
                     augmentation=None, n2v_fraction: float | None = None, cache: str = "memory", normalize=None):
    """The `DatasetBundle` of a restoration task: `(corrupted, clean)` batches; see the module's docstring.
    `augmentation`'s moving options (`dlimaging.data.joint`: rotation, zoom, translation, ...) move each
    training patch before it is corrupted. With `n2v_fraction` (Noise2Void, `target="self"`), the
    batches are `(masked noisy, noisy and mask)` (`dlimaging.data.n2v`), in every split: no clean
    image is used; a folder's images are read as noisy already (no `corruption` needed). A folder
    streams as `cache` says (`dlimaging.data.item_stream`), except for Noise2Void. `normalize`
    (percentile bounds, `dlimaging.data.normalize`) maps each clean item by its own percentiles
    before any corruption; `max_val` is then 1."""
    steps = _check_source(source, entry, task, corruption, n2v_fraction)
    check_patch_settings(patch_size, patches_per_epoch)
    if entry.folder and not n2v_fraction:
        listed = list_clean_folder(source)
        streamed = streams(cache, [h.shape for _, h in listed], max(h.shape[-1] for _, h in listed))
        if streamed is not None:
            return _streamed(source, task, steps, listed, streamed, patch_size, patches_per_epoch,
                             (validation_split, test_split), batch_size, seed, augmentation, normalize)
    named, (max_val, name) = registry.resolve(entry.clean)(source, **options)
    names = [n for n, _ in named]
    items = [i[None] if i.ndim == 2 else i for _, i in named]  # a signal (length, C) is an image of height 1
    rank = named[0][1].ndim  # 2: signals, 3: images, 4: volumes
    if normalize is not None:
        check_rank(normalize, named[0][1].shape, source)
        items, max_val = [normalize_item(i, normalize) for i in items], 1.0
    signals, volumes = rank == 2, rank == 4
    check_for_samples(steps, rank, source)
    check_for_range(steps, max_val, source)
    patch_size = default_patch(items, rank) if patch_size is None else patch_size
    patch = (1, patch_size) if signals else (patch_size,) * (rank - 1)
    check_for_patch(steps, patch_size)
    small = [n for n, i in zip(names, items) if any(size < side for size, side in zip(i.shape, patch))]
    if small:
        raise InputError(
            f"`patch_size` {patch_size} is larger than {len(small)} item(s) of `source` {source!r} "
            f"(e.g. {small[0]!r}, of shape {named[names.index(small[0])][1].shape}). Received: patch_size={patch_size}"
        )
    train, validation, test = split_items(len(items), validation_split, test_split, seed, source)

    def tile_split(indices):
        cut = [t for k in indices for t in tiles(items[k], patch)]
        shape = (0, patch[1], items[0].shape[-1]) if signals else (0, *patch, items[0].shape[-1])
        return np.stack([t[0] if signals else t for t in cut]) if cut else np.zeros(shape, "float32")

    if patches_per_epoch is None:
        patches_per_epoch = sum(len(tiles(items[k], patch)) for k in train)
    moves = check_joint_options(augmentation, image=not signals, moving_only=True, volume=volumes)
    sampler = _Sampler([items[k] for k in train], patch, steps, max_val, augment=not signals, moves=moves)
    if n2v_fraction:  # the noisy patch, masked with the draw (seed, key); the clean one is dropped
        supervised = sampler
        sampler = lambda key: mask_patch(supervised(key)[0], n2v_fraction,  # noqa: E731
                                         tf.stack([tf.constant(seed, tf.int64), key]))
    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(patches_per_epoch)
    train_ds = keys.map(sampler, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    train_ds = train_ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    # One fixed draw of training patches, kept as arrays (keys apart from the random ones' range).
    fixed = tf.data.Dataset.range(-min(patches_per_epoch, TRAIN_SAMPLE), 0).map(sampler)
    x_train, y_train = (np.concatenate(a) for a in zip(*fixed.batch(256).as_numpy_iterator()))
    arrays = {"x_train": x_train, "y_train": y_train}
    for split, indices, offset in (("validation", validation, 1), ("test", test, 2)):
        clean = tile_split(indices)
        noisy = corrupt_once(clean, steps, (seed * 3 + offset) % 2**63, max_val)
        if n2v_fraction:  # masked once, seeded: a self-supervised score, comparable across epochs
            noisy, clean = mask_once(noisy, n2v_fraction, (seed * 3 + offset + 7) % 2**63)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = noisy, clean
    return image_pairs_bundle(
        train_ds, arrays, batch_size, items, task=task, name=name, num_train=patches_per_epoch, max_val=max_val,
        corruption=steps, self_supervised=bool(n2v_fraction), normalize=normalize_name(normalize),
        items={split: [names[k] for k in indices] for split, indices in
               (("train", train), ("validation", validation), ("test", test))})


def image_pairs_bundle(train: tf.data.Dataset, arrays: dict, batch_size: int, values, **fields) -> DatasetBundle:
    """The bundle of an image-to-image task from its training pipeline and its `arrays` (a fixed
    draw of training patches and the held-out `x_`/`y_` tiles of validation and test, batched here),
    its value range the one of the items `values`; `fields` are the rest of `DatasetBundle`'s."""
    held_out = {split: tf.data.Dataset.from_tensor_slices((arrays[f"x_{split}"], arrays[f"y_{split}"]))
                .batch(batch_size).prefetch(tf.data.AUTOTUNE) if len(arrays[f"x_{split}"]) else None
                for split in ("validation", "test")}
    everything = np.concatenate([v.reshape(-1) for v in values])
    return DatasetBundle(
        train=train, validation=held_out["validation"], test=held_out["test"],
        input_shape=tuple(int(d) for d in arrays["x_train"].shape[1:]), num_classes=None, class_names=[],
        num_validation=len(arrays["x_validation"]), num_test=len(arrays["x_test"]),
        value_range=(float(everything.min()), float(everything.max())), arrays=arrays, **fields)


def clean_items(source: str, **options):
    """The clean items of a restoration source, by name: {name: array}, and its `max_val`."""
    entry = find_source(source)
    if entry.clean is None:
        raise InputError(f"`source` {source!r} is a labelled dataset, not clean images or signals.")
    named, (max_val, _) = registry.resolve(entry.clean)(source, prefix=entry.prefix, **options)
    return dict(named), max_val


def _streamed(source, task, steps, listed, streamed, patch_size, patches_per_epoch, split, batch_size, seed,
              augmentation, normalize=None) -> DatasetBundle:
    """A restoration folder, streamed (`dlimaging.data.item_stream`): the in-memory loader's split,
    patches, corruption draws and bundle, without holding the images."""
    (files, headers), (mode, note, disk), root = zip(*listed), streamed, pathlib.Path(source)
    channels = max(h.shape[-1] for h in headers)
    shapes = [(*h.shape[:2], channels) for h in headers]
    names = [str(pathlib.Path(f).relative_to(root)) for f in files]
    low, high = value_range_of(files, headers)
    max_val = high - min(0.0, low)
    check_for_samples(steps, 3, source)
    check_for_range(steps, max_val, source)
    patch_size = DEFAULT_IMAGE_PATCH if patch_size is None else patch_size
    patch = (patch_size, patch_size)
    check_for_patch(steps, patch_size)
    small = [k for k, shape in enumerate(shapes) if min(shape[:2]) < patch_size]
    if small:
        raise InputError(
            f"`patch_size` {patch_size} is larger than {len(small)} item(s) of `source` {source!r} "
            f"(e.g. {names[small[0]]!r}, of shape {shapes[small[0]]}). Received: patch_size={patch_size}")
    train, validation, test = split_items(len(files), *split, seed, source)
    if patches_per_epoch is None:
        patches_per_epoch = sum(tile_count(shapes[k], patch) for k in train)
    moves = check_joint_options(augmentation, image=True, moving_only=True, volume=False)
    read = reader(channels, None, normalize)

    def finish(clean, fold):  # moved, then corrupted: the in-memory sampler's folds 7 and 6
        if moves:
            clean, _ = move_pair(clean, clean, fold(7), moves)
        return corrupt(clean, steps, fold(6), max_val), clean

    train_ds = train_patches([files[k] for k in train], [shapes[k] for k in train], patch, patches_per_epoch, seed,
                             read, channels, finish).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    splits = {}
    for split_name, indices, offset in (("validation", validation, 1), ("test", test, 2)):
        draw = tf.constant((seed * 3 + offset) % 2**63, tf.int64)  # tile i corrupted with (draw, i), as in memory
        ds = eval_tiles([files[k] for k in indices], read, channels, patch, tiles).map(
            lambda i, clean, draw=draw: (corrupt(clean, steps, tf.stack([draw, i]), max_val), clean))
        count = sum(tile_count(shapes[k], patch) for k in indices)
        splits[split_name] = (batched(ds, batch_size, mode, disk, split_name) if count else None, count)
    return attach_cache(DatasetBundle(
        train=train_ds, validation=splits["validation"][0], test=splits["test"][0], input_shape=(*patch, channels),
        num_classes=None, class_names=[], task=task, name=root.name, num_train=patches_per_epoch,
        num_validation=splits["validation"][1], num_test=splits["test"][1], value_range=(low, high), max_val=max_val,
        corruption=steps, cache=mode, cache_note=note,
        items={s: [names[k] for k in indices] for s, indices in
               (("train", train), ("validation", validation), ("test", test))}), disk)
