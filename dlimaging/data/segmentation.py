"""Segmentation data: images and their masks of class ids, split by image.

`load_dataset(source, task=<a task whose labels are masks>)` comes here. The source gives a
list of images (height, width, channels), signals (length, channels) or volumes (depth, height,
width, channels) and their masks (height, width), (length,) or (depth, height, width) of integer
class ids:

- a folder with `images/` and `masks/`, matched by file name (PNG, JPEG or TIFF images, read by
  `dlimaging.data.images`; PNG or TIFF masks of 8-, 16- or 32-bit integer class ids), and
  optionally `classes.txt` (one class name per line);
- a `.npz` file with `x` and `masks` (and optionally `x_test` and `masks_test`);
- `cells`, the synthetic fluorescence-like images (`dlimaging.data.cells`), or volumes (`cells:ndim=3`).

The items are split by IMAGE: validation and test pixels come from whole images training never
sees. Images of different sizes, or a `patch_size`, are cut into square patches (tiles) after
the split. A mask of only 0 and 255 is read as 2 classes (255 is class 1).
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow as tf

from dlimaging import registry
from dlimaging.data.bundle import DatasetBundle
from dlimaging.data.images import (
    IMAGE_SUFFIXES,
    integer_scale,
    read_header,
    read_image,
    read_mask,
)
from dlimaging.data.item_stream import (
    PATCH_BUFFER,
    batched,
    eval_tiles,
    reader,
    streams,
    tile_count,
    train_patches,
)
from dlimaging.data.joint import joint_augmentation
from dlimaging.data.normalize import check_rank, normalize_item, normalize_name
from dlimaging.data.restoration import (
    check_patch_settings,
    random_patches,
    split_items,
    tiles,
)
from dlimaging.data.streaming import attach_cache, cached, value_range_of
from dlimaging.errors import InputError

MASK_SUFFIXES = (".png", ".tif", ".tiff")
IMAGE_FILE_SUFFIXES = IMAGE_SUFFIXES
CLASSES_FILE = "classes.txt"


def _read_image(path: pathlib.Path) -> np.ndarray:
    """An image (height, width, channels) or a volume (depth, height, width, channels) as float32,
    scaled as `dlimaging.data.images` scales it."""
    return read_image(path).pixels


def _size(shape) -> str:
    """A mask's or image's spatial size as the messages say it: width x height, or depth x height x
    width for a volume."""
    return f"{shape[1]}x{shape[0]}" if len(shape) == 2 else "x".join(map(str, shape)) + " (depth x height x width)"


def _class_names(root: pathlib.Path) -> list[str] | None:
    path = root / CLASSES_FILE
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) < 2:
        raise InputError(f"{str(path)!r} names {len(names)} class(es); segmentation needs at least 2, one per line.")
    return names


def check_masks(masks: list[np.ndarray], class_names: list[str] | None, names: list[str], what: str) -> list[str]:
    """Masks of 0 and 255 only become 0 and 1 (in place); values beyond the classes are refused,
    naming the item. Returns the class names ("0", "1", ... when none are given)."""
    values = set()
    for mask in masks:
        values |= set(np.unique(mask).tolist())
    if values <= {0, 255} and 255 in values and (class_names is None or len(class_names) == 2):
        for i, mask in enumerate(masks):
            masks[i] = (mask == 255).astype(mask.dtype)
        values = {0, 1}
    count = len(class_names) if class_names is not None else max(2, int(max(values)) + 1)
    for name, mask in zip(names, masks):
        if mask.max() >= count:
            where = f"the {len(class_names)} classes of {CLASSES_FILE}" if class_names else f"{count} classes"
            raise InputError(f"Mask {name!r} of {what} holds class id {int(mask.max())}, beyond {where} "
                             f"(ids 0..{count - 1}).")
    return list(class_names) if class_names is not None else [str(i) for i in range(count)]


def list_masks_folder(source: str):
    """(root, image files, mask files) of a folder's `images/` and `masks/`, matched by file name
    (without the suffix), in name order; a file without its partner is refused."""
    root = pathlib.Path(source)
    folders = [root / "images", root / "masks"]
    if not all(f.is_dir() for f in folders):
        raise InputError(f"`source` {source!r}: segmentation needs a folder with `images/` and `masks/` "
                         "(masks matched to images by file name).")
    images = {p.stem: p for p in sorted(folders[0].iterdir()) if p.suffix.lower() in IMAGE_FILE_SUFFIXES}
    masks = {p.stem: p for p in sorted(folders[1].iterdir()) if p.suffix.lower() in MASK_SUFFIXES}
    if not images:
        raise InputError(f"`source` {source!r}: `images/` holds no image ({', '.join(IMAGE_FILE_SUFFIXES)}).")
    for one, other, side in ((images, masks, "masks/"), (masks, images, "images/")):
        missing = sorted(set(one) - set(other))
        if missing:
            raise InputError(f"{str(one[missing[0]])!r} has no file of the same name in {side} "
                             f"({len(missing)} such file(s)).")
    return root, [images[stem] for stem in sorted(images)], [masks[stem] for stem in sorted(images)]


def folder_masks(source: str, **_options):
    """A folder's `images/` and `masks/`, matched by file name (without the suffix)."""
    root, image_files, mask_files = list_masks_folder(source)
    images = {p.stem: p for p in image_files}
    masks = {p.stem: p for p in mask_files}
    xs, ys = [], []
    for stem in sorted(images):
        x, y = _read_image(images[stem]), read_mask(masks[stem])
        if x.shape[:-1] != y.shape:
            raise InputError(f"Mask {str(masks[stem])!r} is {_size(y.shape)}; its image "
                             f"{images[stem].name!r} is {_size(x.shape[:-1])}.")
        if xs and x.ndim != xs[0].ndim:
            kinds = {3: "an image", 4: "a volume"}
            raise InputError(f"`source` {source!r} mixes images and volumes: {images[stem].name!r} is "
                             f"{kinds[x.ndim]}, {images[sorted(images)[0]].name!r} {kinds[xs[0].ndim]}.")
        xs.append(x)
        ys.append(y)
    if len({x.shape[-1] for x in xs}) > 1:
        xs = [np.repeat(x, 3, -1) if x.shape[-1] == 1 else x[..., :3] for x in xs]
    names = [str(masks[stem]) for stem in sorted(images)]
    class_names = check_masks(ys, _class_names(root), names, f"`source` {source!r}")
    return xs, ys, class_names, root.name


def npz_masks(source: str, **_options):
    """A `.npz` file's `x` and `masks` (and `x_test`, `masks_test`, kept as more items)."""
    path = pathlib.Path(source)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as error:
        raise InputError(f"`source` {str(path)!r} is not a readable .npz file ({error}).") from None
    if "x" not in arrays or "masks" not in arrays:
        raise InputError(f"`source` {str(path)!r}: segmentation needs the arrays `x` and `masks`. "
                         f"Found: {sorted(arrays)}")
    xs, ys = [], []
    for x_key, y_key in (("x", "masks"), ("x_test", "masks_test")):
        if x_key not in arrays:
            continue
        x, masks = arrays[x_key], arrays[y_key]
        if not np.issubdtype(masks.dtype, np.integer) and masks.dtype != bool:
            raise InputError(f"`source` {str(path)!r}: `{y_key}` holds {masks.dtype} values; masks hold integer "
                             "class ids.")
        if x.ndim == masks.ndim:
            x = x[..., None]
        if x.shape[:-1] != masks.shape:
            raise InputError(f"`source` {str(path)!r}: `{y_key}` has shape {masks.shape}; `{x_key}` {x.shape} "
                             f"needs masks of shape {x.shape[:-1]}.")
        scale = integer_scale(x.dtype)
        x = x.astype("float32") / np.float32(scale) if scale else x.astype("float32")
        xs += list(x)
        ys += [m.astype("int64") for m in masks]
    if any(m.min() < 0 for m in ys):
        raise InputError(f"`source` {str(path)!r}: `masks` holds negative values; class ids are >= 0.")
    class_names = check_masks(ys, None, [f"{i}" for i in range(len(ys))], f"`source` {str(path)!r}")
    return xs, ys, class_names, path.stem


def masks_only(source: str, **_options):
    """The loader of a source of images and masks only (cells), for a task other than segmentation."""
    task = registry.task_for_labels(registry.MASKS)
    raise InputError(f"`source` {source!r} holds images and masks: use it with task={task!r}. "
                     f"Received: source={source!r}")


def _patches(images, masks, indices, patch):
    """The items of `indices`, whole, or cut into `patch`-sized tiles (`patch` None: whole)."""
    if patch is None:
        return [images[k] for k in indices], [masks[k] for k in indices]
    xs = [t for k in indices for t in tiles(images[k], patch)]
    ys = [t[..., 0] for k in indices for t in tiles(masks[k][..., None], patch)]
    return xs, ys


def _sampled(images, masks, patch, count, seed) -> tf.data.Dataset:
    """`count` random (image, mask) patches of the training images per epoch, by restoration's
    sampler: the mask rides as a last channel, so both are cut at one place and turned alike."""
    stacked = [np.concatenate([x, y[..., None].astype("float32")], -1) for x, y in zip(images, masks)]
    ds = random_patches(stacked, patch, count=count, seed=seed)
    return ds.map(lambda t: (t[..., :-1], tf.cast(tf.round(t[..., -1]), tf.int32)))


def _batches(xs, ys, batch_size, *, shuffle, seed, augment=None, sampled=None):
    if sampled is not None:
        ds = sampled
    elif not xs:
        return None
    else:
        ds = tf.data.Dataset.from_tensor_slices((np.stack(xs), np.stack(ys).astype("int32"))).cache()
    if shuffle and sampled is None:
        ds = ds.shuffle(len(xs), seed=seed, reshuffle_each_iteration=True)
    if augment is not None:
        ds = augment(ds, seed)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_segmentation(source: str, entry: registry.Source, *, task: str, patch_size, split: tuple[float, float],
                      batch_size: int, seed: int, corruption=None, patches_per_epoch=None, augmentation=None,
                      cache: str = "memory", normalize=None):
    """The `DatasetBundle` of a segmentation task: `(image, mask)` batches; see the module's docstring.

    `split` is (validation_split, test_split); `corruption` applies to restoration only: refused
    when given. With `patch_size`, `patches_per_epoch` or images of different sizes, training draws
    `patches_per_epoch` random patches per epoch (restoration's sampler; default: as many as the
    training images hold tiles), validation and test images are tiled. `augmentation`
    (`dlimaging.data.joint`) moves each training image and its mask with one draw, every epoch.
    `normalize` (percentile bounds) maps each whole image by its own percentiles before any patch."""
    if corruption is not None:
        raise InputError(f"`corruption` applies to restoration, not to task={task!r}. "
                         f"Received: corruption={corruption!r}")
    validation_split, test_split = split
    if entry.masks is None:
        takers = [name for name, e in registry.SOURCES.items() if e.masks is not None]
        raise InputError(f"`source` {source!r} has no masks: task={task!r} needs one of {', '.join(takers)}. "
                         f"Received: source={source!r}")
    check_patch_settings(patch_size, patches_per_epoch)
    note = None
    if entry.folder:  # streamed as `cache` says (`dlimaging.data.item_stream`)
        listed = list_masks_folder(source)
        headers = [read_header(f) for f in listed[1]]
        volumes = any(h.volume for h in headers)  # a folder of volumes loads into memory
        if volumes and cache in ("none", "disk"):
            note = (f"cache={cache!r} applies to folders of 2D images: this folder of volumes is read into "
                    "memory.")
        streamed = None if volumes else streams(cache, [h.shape for h in headers], max(h.shape[-1] for h in headers))
        if streamed is not None:
            return _streamed(source, task, listed, headers, streamed, patch_size, patches_per_epoch, split,
                             batch_size, seed, augmentation, normalize)
    images, masks, class_names, name = registry.resolve(entry.masks)(source, prefix=entry.prefix)
    if normalize is not None:
        check_rank(normalize, images[0].shape, source)
        images = [normalize_item(i, normalize) for i in images]
    augment = joint_augmentation(augmentation, image=images[0].ndim >= 3, volume=images[0].ndim == 4)
    names = [str(i) for i in range(len(images))]
    signals = images[0].ndim == 2
    same = len({i.shape for i in images}) == 1
    patch = None
    if patch_size is not None or patches_per_epoch is not None or not same:
        if signals:
            argument = "patch_size" if patch_size is not None else "patches_per_epoch"
            value = patch_size if patch_size is not None else patches_per_epoch
            raise InputError(f"`{argument}` applies to images; `source` {source!r} holds signals. "
                             f"Received: {argument}={value!r}")
        side = patch_size or min(64, *(min(i.shape[:-1]) for i in images))
        small = [n for n, i in zip(names, images) if min(i.shape[:-1]) < side]
        if small:
            raise InputError(f"`patch_size` {side} is larger than image {small[0]} of `source` {source!r} "
                             f"({images[int(small[0])].shape[:-1]}). Received: patch_size={patch_size!r}")
        patch = (side,) * (images[0].ndim - 1)  # a square, or a volume's cube
    train, validation, test = split_items(len(images), validation_split, test_split, seed, source)
    splits = {split: _patches(images, masks, indices, patch)
              for split, indices in (("train", train), ("validation", validation), ("test", test))}
    frequencies = _frequencies(splits["train"][1], len(class_names))
    arrays = {}
    for split, (xs, ys) in splits.items():
        shape = (0, *splits["train"][0][0].shape)
        arrays[f"x_{split}"] = np.stack(xs) if xs else np.zeros(shape, "float32")
        arrays[f"y_{split}"] = np.stack(ys).astype("int32") if ys else np.zeros(shape[:-1], "int32")
    everything = np.concatenate([i.reshape(-1) for i in images])
    sampled = None
    if patch is not None:
        patches_per_epoch = patches_per_epoch or len(splits["train"][0])
        sampled = _sampled([images[k] for k in train], [masks[k] for k in train], patch, patches_per_epoch, seed)
    return DatasetBundle(
        train=_batches(*splits["train"], batch_size, shuffle=True, seed=seed, augment=augment, sampled=sampled),
        validation=_batches(*splits["validation"], batch_size, shuffle=False, seed=seed),
        test=_batches(*splits["test"], batch_size, shuffle=False, seed=seed),
        input_shape=tuple(int(d) for d in arrays["x_train"].shape[1:]), num_classes=len(class_names),
        class_names=list(class_names), task=task, name=name, num_train=patches_per_epoch or len(arrays["x_train"]),
        num_validation=len(arrays["x_validation"]), num_test=len(arrays["x_test"]),
        value_range=(float(everything.min()), float(everything.max())), arrays=arrays,
        items={split: [names[k] for k in indices] for split, indices in
               (("train", train), ("validation", validation), ("test", test))},
        class_frequencies=frequencies, normalize=normalize_name(normalize), cache_note=note,
    )


def _frequencies(masks, num_classes: int) -> list[float]:
    counts = np.zeros(num_classes, "float64")
    for mask in masks:
        counts += np.bincount(mask.reshape(-1), minlength=num_classes)[:num_classes]
    return [float(c) for c in counts / max(counts.sum(), 1.0)]


def _mask_values(listed, headers, source: str):
    """(class names, whether masks of 0 and 255 are read as 0 and 1), from the masks read one at a
    time (their values only are kept), with `folder_masks`' checks."""
    root, image_files, mask_files = listed
    values = []
    for image, path, header in zip(image_files, mask_files, headers):
        mask = read_mask(path)
        if mask.shape != header.shape[:2]:
            raise InputError(f"Mask {str(path)!r} is {_size(mask.shape)}; its image "
                             f"{image.name!r} is {_size(header.shape[:2])}.")
        values.append(np.unique(mask))
    given = _class_names(root)
    seen = set().union(*(set(v.tolist()) for v in values))
    binary = seen <= {0, 255} and 255 in seen and (given is None or len(given) == 2)
    return check_masks(values, given, [str(m) for m in mask_files], f"`source` {source!r}"), binary


def _streamed(source, task, listed, headers, streamed, patch_size, patches_per_epoch, split, batch_size, seed,
              augmentation, normalize=None) -> DatasetBundle:
    """A segmentation folder, streamed (`dlimaging.data.item_stream`): the in-memory loader's
    split, patches, tiles and bundle, without holding the images."""
    root, image_files, mask_files = listed
    (mode, note, disk), names = streamed, [str(i) for i in range(len(image_files))]
    class_names, binary = _mask_values(listed, headers, source)
    channels = 3 if len({h.shape[-1] for h in headers}) > 1 else headers[0].shape[-1]
    shapes = [(*h.shape[:2], channels) for h in headers]
    augment = joint_augmentation(augmentation, image=True)
    patch = None
    if patch_size is not None or patches_per_epoch is not None or len(set(shapes)) > 1:
        side = patch_size or min(64, *(min(s[:2]) for s in shapes))
        small = [k for k, s in enumerate(shapes) if min(s[:2]) < side]
        if small:
            raise InputError(f"`patch_size` {side} is larger than image {small[0]} of `source` {source!r} "
                             f"({shapes[small[0]][:-1]}). Received: patch_size={patch_size!r}")
        patch = (side, side)
    train, validation, test = split_items(len(image_files), *split, seed, source)
    read = reader(channels, {"files": {str(i): str(m) for i, m in zip(image_files, mask_files)}, "white_is_1": binary},
                  normalize)
    pair = lambda t: (t[..., :-1], tf.cast(tf.round(t[..., -1]), tf.int32))  # noqa: E731  the mask rides last
    counts = {s: sum(tile_count(shapes[k], patch) for k in ks) if patch else len(ks)
              for s, ks in (("train", train), ("validation", validation), ("test", test))}
    if patch is not None:
        patches_per_epoch = patches_per_epoch or counts["train"]
        ds = train_patches([image_files[k] for k in train], [shapes[k] for k in train], patch, patches_per_epoch,
                           seed, read, channels + 1, lambda clean, fold: pair(clean))
    else:
        ds = eval_tiles([image_files[k] for k in train], read, channels + 1, None, tiles)
        ds = ds.map(lambda i, t: pair(tf.ensure_shape(t, (*shapes[0][:2], channels + 1))))
        ds = cached(ds, mode, disk, "train").shuffle(min(len(train), PATCH_BUFFER), seed=seed,
                                                      reshuffle_each_iteration=True)
    ds = augment(ds, seed) if augment is not None else ds
    evaluated = {}
    for name, indices in (("validation", validation), ("test", test)):
        tiled = eval_tiles([image_files[k] for k in indices], read, channels + 1, patch, tiles)
        evaluated[name] = batched(tiled.map(lambda i, t: pair(tf.ensure_shape(
            t, (*(patch or shapes[0][:2]), channels + 1)))), batch_size, mode, disk, name) if counts[name] else None
    return attach_cache(DatasetBundle(
        train=ds.batch(batch_size).prefetch(tf.data.AUTOTUNE), validation=evaluated["validation"],
        test=evaluated["test"], input_shape=(*(patch or shapes[0][:2]), channels), num_classes=len(class_names),
        class_names=list(class_names), task=task, name=root.name, num_train=patches_per_epoch or counts["train"],
        num_validation=counts["validation"], num_test=counts["test"], value_range=value_range_of(image_files, headers),
        items={s: [names[k] for k in ks] for s, ks in (("train", train), ("validation", validation), ("test", test))},
        class_frequencies=_streamed_frequencies([mask_files[k] for k in train], binary, patch, len(class_names)),
        cache=mode, cache_note=note), disk)


def _streamed_frequencies(mask_files, binary: bool, patch, num_classes: int) -> list[float]:
    """`_frequencies` over the training masks (their tiles, when the images are cut), read one at a time."""
    counts = np.zeros(num_classes, "float64")
    for path in mask_files:
        mask = read_mask(path)
        mask = (mask == 255).astype(mask.dtype) if binary else mask
        for part in ([mask] if patch is None else [t[..., 0] for t in tiles(mask[..., None], patch)]):
            counts += np.bincount(part.reshape(-1), minlength=num_classes)[:num_classes]
    return [float(c) for c in counts / max(counts.sum(), 1.0)]
