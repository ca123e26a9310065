"""Streaming from disk: class folders split on their list of files and decoded inside `tf.data`.

A class folder is never held in memory: `list_class_folder` reads each image's header (its size
and mode), the split is made on the files (stratified by class, by seed; `split_samples`), and
`file_dataset` decodes them in parallel inside the pipeline (`decode_image`, the one function
that turns a file into pixels), then batches and prefetches. A folder of plain PNGs (8-bit grey
or RGB, or 16-bit grey, all of the folder's size) is decoded by TensorFlow's own PNG decoder
instead, outside Python's lock, to the same float32 pixels (`native_png`). `cache` says what is kept once
decoded: `"memory"`, `"disk"` (a temporary folder removed with the bundle), `"none"`, or `"auto"`
(memory when the decoded training split is under `AUTO_MEMORY_SHARE` of the available memory).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import pathlib
import re
import shutil
import tempfile
import warnings
import weakref

import numpy as np
import tensorflow as tf

from dlimaging import registry
from dlimaging.data.images import (
    FOLDER_SUFFIXES,
    UnreadableImage,
    fit_image,
    folder_files,
    folder_shape,
    read_header,
    read_image,
)
from dlimaging.errors import InputError
from dlimaging.validation import available_memory

# "auto" caches in memory when the decoded training split (count x shape x 4 bytes) is under this
# share of the memory available when the data is loaded; otherwise it streams from disk.
AUTO_MEMORY_SHARE = 0.25
# Samples a disk-cached training split is shuffled within (its file order is shuffled once, by seed).
DISK_SHUFFLE_BUFFER = 1024
# Plain PNG folders are decoded by TensorFlow (`native_png`); False sends every file through `decode_image`.
NATIVE_PNG = True
# (bit depth, colour type) of the PNG header that TensorFlow decodes to `read_image`'s own pixels:
# 8-bit grey, 16-bit grey, 8-bit RGB. Palette, alpha and low-bit images go through Pillow.
_PNG_LAYOUTS = {(8, 0): "uint8", (16, 0): "uint16", (8, 2): "uint8"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_cache(cache) -> str:
    """`cache` as one of `registry.CACHE_MODES`; True and False (the old flag) mean memory and none."""
    if cache is True or cache is False:
        return "memory" if cache else "none"
    if cache not in registry.CACHE_MODES:
        raise InputError(f"`cache` must be one of {', '.join(map(repr, registry.CACHE_MODES))}. "
                         f"Received: cache={cache!r}")
    return cache


def split_samples(x, y, count, seed, what, stratified):
    """(x_a, y_a, x_b, y_b): `count` samples split off by seed, stratified by class where asked and
    possible. `x` may be the samples or their file names: the split is the same."""
    from sklearn.model_selection import train_test_split

    if count == 0:
        return x, y, x[:0], y[:0]
    if count >= len(x):
        raise InputError(f"{what} takes all {len(x)} samples and leaves no training data.")
    stratify = None
    if stratified:  # class labels: (N,) ids or (N, 1) of 0/1
        classes = y.reshape(len(y), -1)[:, 0]
        _, counts = np.unique(classes, return_counts=True)
        if counts.min() >= 2 and count >= len(counts) and len(x) - count >= len(counts):
            stratify = classes
    x_a, x_b, y_a, y_b = train_test_split(x, y, test_size=count, random_state=seed, stratify=stratify)
    return x_a, y_a, x_b, y_b


def check_split_sizes(source, total, validation_split, validation_count, test_split, test_count):
    """A split asked for must get at least one sample: an empty validation split would train every
    trial of a search and then fail each one on the missing `val_` metrics."""
    for name, fraction, count in (("validation_split", validation_split, validation_count),
                                  ("test_split", test_split, test_count)):
        if fraction > 0 and count == 0:
            raise InputError(
                f"`source` {source!r} has {total} samples: {name}={fraction} gives 0 samples "
                f"(train/validation/test = {total - validation_count - test_count}/{validation_count}/{test_count}). "
                f"Use {name} >= {1 / total:.3g}, more data, or {name}=0."
            )


@dataclasses.dataclass(eq=False)  # hashed by identity: `_NATIVE_LISTINGS` holds it weakly
class FolderListing:
    """A class folder's files (paths), their class ids, the class names, the one shape every
    file is brought to (`dlimaging.data.images.folder_shape`), and the range of its values."""

    files: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    name: str
    sample_shape: tuple[int, ...]
    value_range: tuple[float, float]
    native: str | None = None  # "uint8" or "uint16": plain PNGs TensorFlow decodes (`native_png`)


def value_range_of(files, headers) -> tuple[float, float]:
    """[0, 1] for integer pixels; files holding floats are read one at a time (bounded memory) for
    their own range, and checked (NaN, infinity) before any training."""
    low, high = (0.0, 1.0) if any(h.scaled for h in headers) else (math.inf, -math.inf)
    for path, header in zip(files, headers):
        if not header.scaled:
            pixels = read_image(path).pixels
            if pixels.size:
                low, high = min(low, float(pixels.min())), max(high, float(pixels.max()))
    return (low, high) if low <= high else (0.0, 1.0)


def list_class_folder(source: str, image_size=None) -> FolderListing:
    """The files of a folder with one sub-folder of images (or volumes) per class, from their
    headers: the pixels are decoded later, inside the pipeline (`decode_image`)."""
    root = pathlib.Path(source)
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputError(f"`source` {str(root)!r} is a folder without class sub-folders; "
                         "expected one sub-folder of images per class.")
    files, labels, headers, seen = [], [], [], {}
    for label, folder in enumerate(classes):
        found = 0
        for path in folder_files(folder):
            try:
                header = read_header(path)
                headers.append(seen.setdefault(header, header))  # one object per kind of file, not per file
            except UnreadableImage as error:
                warnings.warn(f"Skipping unreadable image {path}: {error}", stacklevel=4)
                continue
            files.append(path)
            labels.append(label)
            found += 1
        if not found:
            raise InputError(f"`source` {str(root)!r}: class folder {folder.name!r} holds no readable "
                             f"image ({', '.join(FOLDER_SUFFIXES)}).")
    shape = folder_shape([(f, h.shape) for f, h in zip(files, headers)], image_size=image_size,
                         what=f"`source` {str(root)!r}")
    return FolderListing(np.asarray(files), np.asarray(labels, "int64"), [c.name for c in classes], root.name,
                         tuple(shape), value_range_of(files, headers), native_png(files, headers, shape))


def _png_layout(path: str) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG file's header, or None for another format."""
    with open(path, "rb") as file:
        head = file.read(26)
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def native_png(files, headers, sample_shape) -> str | None:
    """"uint8" or "uint16" when every file is a PNG that TensorFlow's decoder turns into the very
    pixels `decode_image` gives (one bit depth; grey, or RGB that is not grey in fact; already of the
    folder's height and width), else None: the files then go through `decode_image`."""
    if not NATIVE_PNG or not files or len(sample_shape) != 3:
        return None
    kinds = set()
    for path, header in zip(files, headers):
        layout = _png_layout(path) if path.lower().endswith(".png") else None
        if layout not in _PNG_LAYOUTS or header.shape[:2] != tuple(sample_shape[:2]):
            return None
        if layout[1] == 2 and header.shape[-1] != 3:  # RGB that read_image makes grey
            return None
        kinds.add(_PNG_LAYOUTS[layout])
    return kinds.pop() if len(kinds) == 1 else None


def decode_image(path: str, sample_shape: tuple[int, ...]) -> np.ndarray:
    """One file as float32 pixels of `sample_shape` (`dlimaging.data.images.read_image`, then
    `fit_image`): the one place a streamed file is decoded."""
    return fit_image(read_image(path).pixels, sample_shape).astype("float32", copy=False)


# A file that fails inside `tf.data` (damaged, moved or deleted after it was listed) reaches the
# caller as a TensorFlow error; its message travels between these marks (`reading_files`).
FILE_ERROR_MARK = "⟦dlimaging-file⟧"


def guarded(decode, path: str):
    """`decode(path)`, with any failure raised as a marked one-line message naming the file, which
    `reading_files` turns back into an `InputError` once TensorFlow has passed it on."""
    try:
        return decode(path)
    except InputError as error:
        message = " ".join(str(error).split())
    except Exception as error:  # noqa: BLE001  the OS or a decoder: a file gone or changed
        message = (f"File {path!r} could not be read while streaming ({type(error).__name__}: "
                   f"{' '.join(str(error).split())}); was it moved, deleted or changed after it was listed?")
    raise InputError(f"{FILE_ERROR_MARK}{message}{FILE_ERROR_MARK}")


def file_error(error: BaseException, kind=InputError) -> Exception | None:
    """The marked message in a TensorFlow error (see `guarded`) as `kind`, or None."""
    found = re.search(f"{FILE_ERROR_MARK}(.*?){FILE_ERROR_MARK}", str(error), re.S)
    return kind(found.group(1)) if found else None


@contextlib.contextmanager
def reading_files(kind=InputError):
    """Turns a streamed file's failure (a `tf.errors.OpError` carrying `guarded`'s mark, or a read or
    PNG error of a folder TensorFlow decodes, whose broken file is then looked for) into one `kind`
    (an `InputError`) naming the file; other errors pass unchanged."""
    try:
        yield
    except (tf.errors.OpError, InputError) as error:
        found = file_error(error, kind)
        if found is None and isinstance(error, tf.errors.OpError):
            found = _broken_native_file(error, kind)
        if found is None:
            raise
        raise found from None


def _decoder(listing: FolderListing):
    """A `tf.data` map function: a file name to its float32 pixels."""
    shape = listing.sample_shape
    if listing.native:
        return _native_decoder(listing)

    def decode(path):
        return guarded(lambda name: decode_image(name, shape), path.decode())

    def load(path, label):
        pixels = tf.numpy_function(decode, [path], tf.float32, stateful=False)
        return tf.ensure_shape(pixels, shape), label

    return load


# The files of the folders decoded by TensorFlow: `reading_files` looks there for the one that broke.
_NATIVE_LISTINGS: "weakref.WeakSet[FolderListing]" = weakref.WeakSet()


def _native_decoder(listing: FolderListing):
    """`_decoder` for plain PNGs: TensorFlow reads and decodes them (grey is repeated as RGB for an
    RGB folder) to their integer pixels, which `_scale_batches` scales batch by batch (a memory
    cache holds them as integers: a quarter of float32's size for 8 bits)."""
    shape, dtype = listing.sample_shape, tf.as_dtype(listing.native)
    _NATIVE_LISTINGS.add(listing)

    def load(path, label):
        pixels = tf.io.decode_png(tf.io.read_file(path), channels=shape[-1], dtype=dtype)
        return tf.ensure_shape(pixels, shape), label

    return load


def _scale_batches(ds: tf.data.Dataset, native: str) -> tf.data.Dataset:
    """Batches of integer pixels as float32 scaled by their type's maximum: the very division of `read_image`."""
    scale = tf.constant(float(np.iinfo(native).max), tf.float32)
    return ds.map(lambda x, y: (tf.cast(x, tf.float32) / scale, y), num_parallel_calls=tf.data.AUTOTUNE)


def _broken_native_file(error: BaseException, kind) -> Exception | None:
    """For a TensorFlow read or PNG decoding failure in a natively decoded folder, the first of its
    files that no longer reads, as `kind` (one line naming it); None for any other error."""
    text = str(error)
    if not isinstance(error, tf.errors.NotFoundError) and "PNG" not in text and "png" not in text:
        return None
    for listing in list(_NATIVE_LISTINGS):
        for path in listing.files:
            if not os.path.isfile(path):
                return kind(f"File {str(path)!r} could not be read while streaming (it is gone); was it moved, "
                            "deleted or changed after it was listed?")
            try:
                read_image(path)
            except InputError as problem:
                return kind(f"{' '.join(str(problem).split())} (while streaming; was it changed after it was listed?)")
    return None


def decoded_bytes(count: int, sample_shape) -> int:
    """Bytes of `count` decoded float32 samples of `sample_shape`."""
    return int(count) * int(math.prod(sample_shape)) * 4


def _size(nbytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    return ""  # not reached


def choose_cache(cache: str, num_train: int, sample_shape) -> tuple[str, str, "DiskCache | None"]:
    """The cache mode to use ("auto" becomes "memory" or "none"), one line saying why, and the
    temporary folder of a disk cache (None for the other modes)."""
    mode, note = _cache_choice(cache, num_train, sample_shape)
    return mode, note, DiskCache() if mode == "disk" else None


def _cache_choice(cache: str, num_train: int, sample_shape) -> tuple[str, str]:
    needed = decoded_bytes(num_train, sample_shape)
    what = f"the decoded training split ({num_train} x {tuple(sample_shape)} float32) is {_size(needed)}"
    if cache != "auto":
        return cache, f"Cache: {cache} (cache={cache!r}; {what})."
    available = available_memory()
    if available is not None and needed < AUTO_MEMORY_SHARE * available:
        return "memory", (f"Cache: memory (cache='auto': {what}, under a quarter of the {_size(available)} "
                          "of memory available).")
    room = "unknown" if available is None else _size(available)
    return "none", (f"Cache: none, streaming from disk (cache='auto': {what}, not under a quarter of the "
                    f"{room} of memory available); --cache disk keeps decoded images in a temporary folder.")


class DiskCache:
    """A temporary folder for `cache="disk"`, removed when its owner (the bundle) goes, or at exit."""

    def __init__(self):
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="dlimaging-cache-"))

    def attach(self, owner) -> None:
        weakref.finalize(owner, shutil.rmtree, str(self.folder), True)

    def file(self, split: str) -> str:
        return str(self.folder / split)


def attach_cache(bundle, disk: DiskCache | None):
    """`bundle`, owning `disk`'s folder (removed when the bundle goes), if there is one."""
    if disk is not None:
        disk.attach(bundle)
    return bundle


def cached(ds: tf.data.Dataset, mode: str, disk: DiskCache | None, split: str) -> tf.data.Dataset:
    """`ds` cached as `mode` says ("memory", "disk" into `disk`'s folder, or "none")."""
    if mode == "memory":
        return ds.cache()
    if mode == "disk":
        return ds.cache(disk.file(split))
    return ds


def file_dataset(listing: FolderListing, files, labels, batch_size: int, *, shuffle: bool, seed: int,
                 mode: str, disk: DiskCache | None, split: str) -> tf.data.Dataset:
    """Batches of (pixels, label) decoded from `files` in parallel, cached as `mode` says, prefetched.

    Uncached and cached on disk, the training files are reshuffled each epoch (`epoch_order`):
    on disk each sample is decoded once and then read back from the cache file (`SampleFile`);
    cached in memory, the decoded samples are shuffled. Memory stays bounded but for "memory"."""
    files, labels = np.asarray(files), np.asarray(labels)
    indices = epoch_order(len(files), seed) if shuffle and mode != "memory" else tf.data.Dataset.range(len(files))
    if mode == "disk":
        ds = indices.map(_cached_decoder(listing, files, labels, disk.file(split)), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        names, ids = tf.constant(files), tf.constant(labels)
        ds = indices.map(lambda i: (tf.gather(names, i), tf.gather(ids, i)))
        ds = ds.map(_decoder(listing), num_parallel_calls=tf.data.AUTOTUNE)
        ds = cached(ds, mode, disk, split)
        if shuffle and mode == "memory":
            ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    ds = _scale_batches(ds, listing.native) if listing.native and mode != "disk" else ds
    ds = ds.prefetch(tf.data.AUTOTUNE)
    ds.dlimaging_listing = listing  # keeps it in `_NATIVE_LISTINGS` while the dataset lives
    return ds


def epoch_order(count: int, seed: int) -> tf.data.Dataset:
    """The indices 0..count-1 in a new order each epoch, drawn from `seed`: one permutation per
    epoch (8 bytes a sample), where `Dataset.shuffle` over every file name would buffer each
    element (about 500 bytes: 7 MB more at 16,000 files)."""

    def epoch(draw):
        key = tf.stack([draw, tf.constant(seed, tf.int64)])
        return tf.data.Dataset.from_tensor_slices(
            tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=key))

    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    return draws.flat_map(epoch).apply(tf.data.experimental.assert_cardinality(count))


class SampleFile:
    """The disk cache of one split: sample i, float32 of one shape, lies at i x its size in one file,
    written (`os.pwrite`) the first time it is decoded and read back (`os.pread`) after. Any order,
    a partial epoch and parallel calls are fine, memory holds one flag per sample, and nothing is
    mapped (TensorFlow's own file cache grew the peak by some 14 MB per 200 MB written, and reads
    back in one order only)."""

    def __init__(self, path: str, count: int, shape):
        self.shape, self.size = tuple(shape), decoded_bytes(1, shape)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.done = np.zeros(count, bool)
        weakref.finalize(self, os.close, self.fd)

    def get(self, index: int, decode) -> np.ndarray:
        if self.done[index]:
            data = os.pread(self.fd, self.size, index * self.size)
            return np.frombuffer(data, "float32").reshape(self.shape)
        pixels = np.ascontiguousarray(decode(), "float32")
        os.pwrite(self.fd, pixels.tobytes(), index * self.size)
        self.done[index] = True
        return pixels


def _cached_decoder(listing: FolderListing, files, labels, path: str):
    """A `tf.data` map function for `cache="disk"`: a sample's index to its pixels (decoded once,
    then read from its `SampleFile`) and label."""
    shape, store, ids = listing.sample_shape, SampleFile(path, len(files), listing.sample_shape), tf.constant(labels)

    def load(index):
        name = files[int(index)]
        return store.get(int(index), lambda: guarded(lambda n: decode_image(n, shape), name))

    def sample(index):
        pixels = tf.numpy_function(load, [index], tf.float32, stateful=True)  # it writes the cache
        return tf.ensure_shape(pixels, shape), tf.gather(ids, index)

    return sample


def relative_names(files, root: str) -> list[str]:
    """The files as paths relative to the source folder, for `splits.json`."""
    return [os.path.relpath(f, root).replace(os.sep, "/") for f in files]
