"""Image files in and out: the one place dlimaging reads and writes pixels.

Every reader of images goes through here: class folders, restoration folders, segmentation's
`images/` and `masks/`, `predict` and `explain`.

- PNG, JPEG, BMP and GIF are read with Pillow; `.tif`/`.tiff` with tifffile (8-, 16- and 32-bit
  integers, floats, several pages). A `.npy` file in a folder is an array of pixels.
- An image is (height, width, channels); a **volume** is (depth, height, width, channels): a TIFF
  with several pages (or a z axis), or a `.npy` file of 3 or 4 dimensions.
- Values: integer pixels of an image file are scaled to [0, 1] by their type's maximum (255,
  65535, 2**31 - 1, ...), floats are taken as they are. A `.npy` array follows the array rule of
  `load_dataset` and `predict`: uint8 and uint16 are scaled, other numbers are kept.
- Masks are integer class ids, never scaled; float masks are refused.

Example:
>>> import tempfile, pathlib, numpy as np, tifffile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "a.tif"
>>> tifffile.imwrite(path, np.full((4, 4), 65535, np.uint16))
>>> image = read_image(path)
>>> image.pixels.shape, float(image.pixels.max()), str(image.dtype)
((4, 4, 1), 1.0, 'uint16')
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Sequence

import numpy as np

from dlimaging.errors import InputError

TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif") + TIFF_SUFFIXES
ARRAY_SUFFIXES = (".npy",)
# What a folder source reads: image files and arrays of pixels (a 3D .npy is a volume).
FOLDER_SUFFIXES = IMAGE_SUFFIXES + ARRAY_SUFFIXES
# Pillow's modes for 16-bit grey images (16-bit PNGs open as "I;16"; older Pillows give "I").
WIDE_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
# Arrays (.npy, .npz): only these integer types are pixels, scaled by their white; other integer
# arrays are measurements, converted as they are.
IMAGE_INTEGER_SCALES = {np.dtype("uint8"): 255.0, np.dtype("uint16"): 65535.0}
# The pixel types an image file may hold: integers of 8, 16 and 32 bits, floats, booleans.
PIXEL_KINDS = "Pixels are 8-, 16- or 32-bit integers or floats"
_FLOAT32_MAX = float(np.finfo("float32").max)


class UnreadableImage(InputError):
    """A file that cannot be decoded at all (damaged, or not an image): a folder skips it with a warning."""


def _suffix(path: str) -> str:
    """A file's suffix, lower case, without building a `pathlib.Path` (which interns every part of
    every name it parses: a folder of 100,000 files would keep them all)."""
    return os.path.splitext(path)[1].lower()


def folder_files(folder, suffixes=FOLDER_SUFFIXES) -> list[str]:
    """The files of `folder` with one of `suffixes`, sorted by name, as strings (`os.scandir`: no
    `pathlib.Path` per file, see `_suffix`)."""
    with os.scandir(folder) as entries:
        return sorted(entry.path for entry in entries if _suffix(entry.name) in suffixes and entry.is_file())


def integer_scale(dtype) -> float | None:
    """The divisor that scales an ARRAY of this dtype to [0, 1], or None to keep the values."""
    return IMAGE_INTEGER_SCALES.get(np.dtype(dtype))


def pixel_scale(dtype) -> float | None:
    """The divisor that scales the pixels of an image FILE of this dtype to [0, 1]: its type's
    maximum for integers (1 for booleans), None (kept as they are) for floats."""
    dtype = np.dtype(dtype)
    if dtype == bool:
        return 1.0
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else None


@dataclasses.dataclass(frozen=True)
class Image:
    """An image (height, width, channels) or volume (depth, height, width, channels), float32,
    scaled; `dtype` is the type the file stores (what `write_image` writes back)."""

    pixels: np.ndarray
    dtype: np.dtype
    scaled: bool = True  # False: the values are the file's own (floats; integer arrays other than uint8/16)

    @property
    def volume(self) -> bool:
        return self.pixels.ndim == 4

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[-1])


def _axis_order(path: str, shape: tuple[int, ...], axes: str) -> list[int]:
    """The order that makes a TIFF series (depth, height, width, channels) from tifffile's axes: C and
    S are channels, Y and X the plane, and one other axis (Z, pages, time) the depth. Refuses any
    other layout (a 5D TIFF) in one line naming the file."""
    channel = [i for i, a in enumerate(axes) if a in "CS"]
    depth = [i for i, a in enumerate(axes) if a not in "YXCS"]
    if len(shape) > 4 or len(channel) > 1 or len(depth) > 1 or "Y" not in axes or "X" not in axes:
        raise InputError(f"Image {str(path)!r} has {len(shape)} dimensions (axes {axes!r}, shape {tuple(shape)}); "
                         "dlimaging reads images (height, width[, channels]) and volumes "
                         "(depth, height, width[, channels]). Save one image or one stack per file.")
    return depth + [axes.index("Y"), axes.index("X")] + channel


def _arrange(path: str, array: np.ndarray, axes: str) -> np.ndarray:
    """A TIFF series as (depth, height, width, channels) (`_axis_order`), a channel axis added if none."""
    array = np.transpose(array, _axis_order(path, array.shape, axes))
    return array if any(a in "CS" for a in axes) else array[..., None]


def _tiff_pixels(path: str) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            array, axes = series.asarray(), series.axes
    except Exception as error:  # noqa: BLE001  tifffile raises many kinds for a damaged file
        raise UnreadableImage(f"Image {str(path)!r} is unreadable ({type(error).__name__}: {error}).") from None
    return _arrange(path, np.asarray(array), axes)


def _grey_or_rgb(image) -> np.ndarray:
    rgb = np.asarray(image.convert("RGB"))
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        return rgb[..., :1].copy()
    return rgb


def _pil_pixels(path: str, *, mask: bool) -> np.ndarray:
    """Pillow's pixels: 8-bit grey or RGB (palette and grey-looking RGB images are grey), 16-bit
    grey as uint16; for a mask, a palette image's indices (its class ids)."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(path) as image:
            image.load()
            mode = image.mode
            if mode in WIDE_GREY_MODES:
                array = np.asarray(image)
                if mode == "I" and array.size and (array.min() < 0 or array.max() > 65535):
                    return array.astype("int32")[..., None]
                return array.astype("uint16")[..., None]
            if mode == "F":
                return np.asarray(image, "float32")[..., None]
            if mask and mode in ("P", "L"):
                return np.asarray(image)[..., None]
            if mode in ("L", "1", "LA"):
                return np.asarray(image.convert("L"))[..., None]
            return _grey_or_rgb(image)
    except Exception as error:  # noqa: BLE001  Pillow raises many kinds for a damaged file
        raise UnreadableImage(f"Image {str(path)!r} is unreadable ({type(error).__name__}: {error}).") from None


def _npy_pixels(path: str, mmap_mode: str | None = None) -> np.ndarray:
    """A `.npy` image (height, width[, 1]) or volume (depth, height, width[, channels]), with a
    channel axis; `mmap_mode="r"` maps it without reading (for its header)."""
    try:
        array = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except Exception as error:  # noqa: BLE001
        raise UnreadableImage(f"Array {str(path)!r} is unreadable ({type(error).__name__}: {error}).") from None
    if array.ndim not in (2, 3, 4):
        raise InputError(f"Array {str(path)!r} has shape {array.shape}: a .npy image is (height, width) and a "
                         ".npy volume (depth, height, width[, channels]).")
    return array if array.ndim == 4 else array[..., None]


def read_pixels(path: str | pathlib.Path, *, mask: bool = False) -> np.ndarray:
    """A file's pixels as stored, in its own dtype: (height, width, channels) for an image,
    (depth, height, width, channels) for a volume.

    Raises:
        UnreadableImage: the file cannot be decoded (one line naming it).
        InputError: it decodes to something that is neither an image nor a volume (a 5D TIFF).
    """
    path = os.fspath(path)
    suffix = _suffix(path)
    if suffix in TIFF_SUFFIXES:
        return _tiff_pixels(path)
    if suffix in ARRAY_SUFFIXES:
        return _npy_pixels(path)
    return _pil_pixels(path, mask=mask)


def _check_dtype(path: str, dtype: np.dtype) -> None:
    fine = dtype == bool or (np.issubdtype(dtype, np.integer) and dtype.itemsize <= 4) or \
        np.issubdtype(dtype, np.floating)
    if not fine:
        raise InputError(f"Image {str(path)!r} holds {dtype} pixels. {PIXEL_KINDS}.")


def read_image(path: str | pathlib.Path) -> Image:
    """An image or a volume, float32: integer pixels of an image file scaled by their type's
    maximum, floats as they are (a `.npy` array: uint8 and uint16 scaled, other numbers kept).
    Refuses in one line naming the file what cannot be read, pixel types other than 8-, 16- and
    32-bit integers and floats, and NaN or infinite values."""
    path = os.fspath(path)
    array = read_pixels(path)
    _check_dtype(path, array.dtype)
    if np.issubdtype(array.dtype, np.floating) and array.size:
        if not np.all(np.isfinite(array)):
            raise InputError(f"Image {str(path)!r} holds NaN or infinite values.")
        if float(np.max(np.abs(array))) > _FLOAT32_MAX:
            raise InputError(f"Image {str(path)!r} holds values beyond float32's range.")
    is_array = _suffix(path) in ARRAY_SUFFIXES
    scale = integer_scale(array.dtype) if is_array else pixel_scale(array.dtype)
    pixels = array.astype("float32")
    if scale:
        pixels /= np.float32(scale)
    return Image(pixels, np.dtype(array.dtype), scaled=bool(scale))


def read_volume(path: str | pathlib.Path) -> Image:
    """`read_image`, for a file that must be a volume (depth, height, width, channels)."""
    image = read_image(path)
    if not image.volume:
        raise InputError(f"{str(path)!r} is a 2D image of shape {image.pixels.shape[:-1]}; a volume is a TIFF of "
                         "several pages or a .npy array (depth, height, width[, channels]).")
    return image


def read_mask(path: str | pathlib.Path) -> np.ndarray:
    """A mask file's class ids (height, width), or (depth, height, width) for a volume's (a
    multi-page TIFF or a 3D .npy), int64, never scaled (8-, 16- or 32-bit integers; a grey-looking
    RGB mask is read as grey); float, colour and negative masks are refused."""
    path = pathlib.Path(path)
    array = read_pixels(path, mask=True)
    if array.ndim in (3, 4) and array.shape[-1] in (3, 4) and all(
            np.array_equal(array[..., 0], array[..., c]) for c in range(1, 3)):
        array = array[..., :1]
    if array.ndim not in (3, 4) or array.shape[-1] != 1:
        raise InputError(f"Mask {str(path)!r} has shape {array.shape}: a mask is one grey channel of class ids.")
    array = array[..., 0]
    if array.dtype == bool:
        array = array.astype("uint8")
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"Mask {str(path)!r} holds {array.dtype} values: a mask holds integer class ids "
                         "(0, 1, 2, ...; or 0 and 255 for two classes).")
    if array.size and array.min() < 0:
        raise InputError(f"Mask {str(path)!r} holds negative values ({int(array.min())}): class ids are >= 0.")
    return array.astype("int64")


def to_dtype(array: np.ndarray, like) -> np.ndarray:
    """Scaled values back in the units of `like`: integers multiplied by the type's maximum,
    rounded and clipped to its range; floats kept (bool: 8-bit)."""
    like = np.dtype("uint8") if np.dtype(like) == bool else np.dtype(like)
    if not np.issubdtype(like, np.integer):
        return np.asarray(array, like if like.itemsize >= 4 else "float32")
    info = np.iinfo(like)
    levels = np.round(np.asarray(array, "float64") * float(info.max))
    return np.clip(levels, info.min, info.max).astype(like)


def write_image(path: str | pathlib.Path, array: np.ndarray, like="uint8") -> None:
    """Writes an image (height, width, channels) or volume (depth, ...) of scaled values as `path`'s
    format (TIFF or PNG), in `like`'s units (`to_dtype`): a TIFF keeps 8, 16 or 32 bits or float,
    a PNG is 8- or 16-bit (other types become 16-bit). `array` may already hold integers of `like`'s type."""
    path = pathlib.Path(path)
    array = np.asarray(array)
    values = array if array.dtype == np.dtype(like) else to_dtype(array, like)
    channels = values.shape[-1]
    if path.suffix.lower() in TIFF_SUFFIXES:
        import tifffile

        axes = ("ZYXS" if values.ndim == 4 else "YXS") if channels > 1 else ("ZYX" if values.ndim == 4 else "YX")
        data = values if channels > 1 else values[..., 0]
        options = dict(photometric="rgb") if channels == 3 else dict(photometric="minisblack")
        if channels > 1 and channels != 3:
            options["planarconfig"] = "contig"
        tifffile.imwrite(path, data, metadata={"axes": axes}, **options)
        return
    if values.ndim != 3:
        raise InputError(f"{str(path)!r}: a volume is written as TIFF (.tif) or .npy, not {path.suffix}.")
    from PIL import Image as PILImage

    if values.dtype not in (np.uint8, np.uint16):
        values = to_dtype(array, "uint16")
    if values.dtype == np.uint16 or channels == 1:
        values = values[..., 0] if channels == 1 else values
    PILImage.fromarray(values).save(path, format="PNG")


def _shape_text(shape) -> str:
    shape = tuple(getattr(shape, "shape", shape))
    return "x".join(str(d) for d in shape[:-1]) + f" with {shape[-1]} channel(s)"


def resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An image (height, width, channels) resized to `size` (height, width), bilinear, as Keras' folders do."""
    from PIL import Image as PILImage

    height, width = size
    if pixels.shape[:2] == (height, width):
        return pixels
    planes = [np.asarray(PILImage.fromarray(pixels[..., c], "F").resize((width, height), PILImage.BILINEAR))
              for c in range(pixels.shape[-1])]
    return np.stack(planes, axis=-1).astype("float32")


@dataclasses.dataclass(frozen=True)
class Header:
    """What a file holds, read without decoding its pixels where the format allows: `shape`
    (height, width, channels) or (depth, height, width, channels), the stored `dtype`, and whether
    its values are `scaled` to [0, 1] by `read_image` (integers) or kept (floats)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    scaled: bool

    @property
    def volume(self) -> bool:
        return len(self.shape) == 4


def read_header(path: str | pathlib.Path) -> Header:
    """The `Header` of an image or volume file. TIFF and `.npy` files are not decoded; colour
    PNG/JPEG files are (to see whether they are grey in fact, as `read_image` does).

    Raises:
        UnreadableImage: the file cannot be opened (one line naming it).
        InputError: it is neither an image nor a volume, or holds pixels of another type.
    """
    path = os.fspath(path)
    suffix = _suffix(path)
    if suffix in TIFF_SUFFIXES:
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                shape, axes, dtype = tuple(series.shape), series.axes, np.dtype(series.dtype)
        except Exception as error:  # noqa: BLE001  tifffile raises many kinds for a damaged file
            raise UnreadableImage(f"Image {str(path)!r} is unreadable ({type(error).__name__}: {error}).") from None
        shape = tuple(shape[i] for i in _axis_order(path, shape, axes))
        shape = shape if any(a in "CS" for a in axes) else (*shape, 1)
    elif suffix in ARRAY_SUFFIXES:
        array = _npy_pixels(path, mmap_mode="r")
        shape, dtype = array.shape, np.dtype(array.dtype)
    else:
        pixels = read_pixels(path)
        shape, dtype = pixels.shape, pixels.dtype
    _check_dtype(path, dtype)
    scale = integer_scale(dtype) if suffix in ARRAY_SUFFIXES else pixel_scale(dtype)
    return Header(tuple(int(d) for d in shape), dtype, bool(scale))


def folder_shape(named: Sequence[tuple[str, tuple[int, ...]]], *, image_size=None, what: str) -> tuple[int, ...]:
    """The one sample shape of a folder's images or volumes, from each file's (name, shape).

    Grey images join RGB ones as RGB. Images resize to `image_size` when it is given; otherwise
    sizes that differ, any other difference of channels, images mixed with volumes, and volumes
    of another size than `image_size` (volumes are never resized) are each one error naming two
    files that disagree. `what` says where they come from (e.g. "`source` 'cells/'")."""
    volumes = [(n, s) for n, s in named if len(s) == 4]
    flat = [(n, s) for n, s in named if len(s) != 4]
    if volumes and flat:
        (a, va), (b, ib) = volumes[0], flat[0]
        raise InputError(f"{what}: {a!r} is a volume ({_shape_text(va)}) and {b!r} an image "
                         f"({_shape_text(ib)}); a folder holds images or volumes, not both.")
    names = [n for n, _ in named]
    shapes = [tuple(s) for _, s in named]
    if {s[-1] for s in shapes} == {1, 3} and not volumes:
        shapes = [(*s[:-1], 3) for s in shapes]
    if image_size is not None and not volumes:
        shapes = [(*tuple(image_size), s[-1]) for s in shapes]
    elif image_size is not None:
        other = next((k for k, s in enumerate(shapes) if s[1:3] != tuple(image_size)), None)
        if other is not None:
            raise InputError(f"{what}: volume {names[other]!r} is {_shape_text(shapes[other])}; volumes are never "
                             f"resized, and image_size={tuple(image_size)} asks for another height and width.")
    for k, shape in enumerate(shapes):
        if shape != shapes[0]:
            hint = "" if volumes or shape[-1] != shapes[0][-1] else \
                "; give `image_size` to resize every image to one size"
            raise InputError(f"{what}: {names[0]!r} is {_shape_text(shapes[0])} and {names[k]!r} is "
                             f"{_shape_text(shape)}{hint}.")
    return shapes[0] if shapes else ()


def fit_image(pixels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """An image or volume brought to a folder's sample `shape` (`folder_shape`): grey repeated as
    RGB, an image resized to the height and width (volumes are never resized)."""
    if pixels.shape[-1] == 1 and shape[-1] == 3:
        pixels = np.repeat(pixels, 3, axis=-1)
    if pixels.ndim == 3 and pixels.shape[:2] != tuple(shape[:2]):
        pixels = resize(pixels, tuple(shape[:2]))
    return pixels


def stack_images(named: Sequence[tuple[str, Image]], *, image_size=None, what: str) -> np.ndarray:
    """The images or volumes of one folder as one float32 array (N, ...), each brought to the
    folder's one shape (`folder_shape`, which refuses files that disagree)."""
    shape = folder_shape([(n, i.pixels.shape) for n, i in named], image_size=image_size, what=what)
    arrays = [fit_image(i.pixels, shape) for _, i in named]
    return np.stack(arrays) if arrays else np.zeros((0,), "float32")


def value_range(images: Sequence[Image]) -> tuple[float, float]:
    """The range of a set of images: [0, 1] for scaled ones, widened by the others' own values."""
    ranges = [(0.0, 1.0)] if any(i.scaled for i in images) else []
    ranges += [(float(i.pixels.min()), float(i.pixels.max())) for i in images if not i.scaled and i.pixels.size]
    return (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else (0.0, 1.0)
