"""The one image reader (`dlimaging.data.images`): TIFF of 8, 16, 32 bits and float, volumes, masks,
writing back in the input's units, and folders whose files disagree (issue 19, section 1)."""

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

import dlimaging as dli
from dlimaging.data.images import (
    UnreadableImage,
    read_image,
    read_mask,
    read_volume,
    stack_images,
    write_image,
)
from dlimaging.errors import InputError


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "uint32", "int16"])
def test_integer_tiffs_are_scaled_by_their_types_maximum(tmp_path, dtype):
    top = np.iinfo(dtype).max
    pixels = np.array([[0, top // 4], [top // 2, top]], dtype)
    tifffile.imwrite(tmp_path / "a.tif", pixels)
    image = read_image(tmp_path / "a.tif")
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (2, 2, 1) and image.dtype == dtype
    np.testing.assert_allclose(image.pixels[..., 0], pixels / float(top), rtol=1e-6)
    assert image.scaled


def test_float_tiffs_are_taken_as_they_are(tmp_path):
    pixels = np.array([[-3.5, 0.25], [1.0, 1200.0]], "float32")
    tifffile.imwrite(tmp_path / "f.tiff", pixels)
    image = read_image(tmp_path / "f.tiff")
    np.testing.assert_array_equal(image.pixels[..., 0], pixels)
    assert image.dtype == np.float32 and not image.scaled
    tifffile.imwrite(tmp_path / "nan.tif", np.full((2, 2), np.nan, "float32"))
    with pytest.raises(InputError, match=r"'.*nan\.tif' holds NaN"):
        read_image(tmp_path / "nan.tif")
    tifffile.imwrite(tmp_path / "i64.tif", np.zeros((2, 2), "int64"))
    with pytest.raises(InputError, match=r"'.*i64\.tif' holds int64 pixels\. Pixels are 8-, 16- or 32-bit"):
        read_image(tmp_path / "i64.tif")


def test_16_bit_png_and_tiff_read_alike(tmp_path):
    gradient = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    PILImage.fromarray(gradient).save(tmp_path / "g.png")
    tifffile.imwrite(tmp_path / "g.tif", gradient)
    png, tiff = read_image(tmp_path / "g.png"), read_image(tmp_path / "g.tif")
    np.testing.assert_array_equal(png.pixels, tiff.pixels)
    assert png.dtype == tiff.dtype == np.uint16


def test_pages_and_z_stacks_are_volumes_and_rgb_stays_an_image(tmp_path):
    stack = np.arange(4 * 8 * 8, dtype="uint16").reshape(4, 8, 8)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    volume = read_volume(tmp_path / "stack.tif")
    assert volume.volume and volume.pixels.shape == (4, 8, 8, 1)
    np.testing.assert_allclose(volume.pixels[2, ..., 0], stack[2] / 65535.0, rtol=1e-6)
    hyper = np.zeros((3, 2, 8, 8), "uint8")  # ImageJ z-stack of 2 channels
    hyper[:, 1] = 255
    tifffile.imwrite(tmp_path / "zc.tif", hyper, imagej=True, metadata={"axes": "ZCYX"})
    assert read_image(tmp_path / "zc.tif").pixels.shape == (3, 8, 8, 2)
    assert read_image(tmp_path / "zc.tif").pixels[..., 1].min() == 1.0
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((8, 8, 3), "uint8"), photometric="rgb")
    assert read_image(tmp_path / "rgb.tif").pixels.shape == (8, 8, 3)
    with pytest.raises(InputError, match=r"'.*rgb\.tif' is a 2D image"):
        read_volume(tmp_path / "rgb.tif")
    np.save(tmp_path / "v.npy", np.zeros((5, 8, 8), "float32"))
    assert read_volume(tmp_path / "v.npy").pixels.shape == (5, 8, 8, 1)


def test_a_5d_or_damaged_tiff_is_one_line_naming_it(tmp_path):
    tifffile.imwrite(tmp_path / "five.tif", np.zeros((2, 3, 2, 8, 8), "uint8"), imagej=True,
                     metadata={"axes": "TZCYX"})
    with pytest.raises(InputError, match=r"Image '.*five\.tif' has 5 dimensions \(axes 'TZCYX'") as error:
        read_image(tmp_path / "five.tif")
    assert "\n" not in str(error.value)
    (tmp_path / "bad.tif").write_bytes(b"II*\x00 not really a tiff")
    with pytest.raises(UnreadableImage, match=r"Image '.*bad\.tif' is unreadable"):
        read_image(tmp_path / "bad.tif")


def test_masks_are_class_ids_never_scaled(tmp_path):
    ids = np.array([[0, 1], [300, 2]], "uint16")
    tifffile.imwrite(tmp_path / "m16.tif", ids)
    np.testing.assert_array_equal(read_mask(tmp_path / "m16.tif"), ids)
    tifffile.imwrite(tmp_path / "m32.tif", ids.astype("int32"))
    assert read_mask(tmp_path / "m32.tif").dtype == np.int64
    tifffile.imwrite(tmp_path / "f.tif", ids.astype("float32"))
    with pytest.raises(InputError, match=r"Mask '.*f\.tif' holds float32 values: a mask holds integer class ids"):
        read_mask(tmp_path / "f.tif")


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "float32"])
def test_write_image_keeps_the_bit_depth_rescales_and_clips(tmp_path, dtype):
    values = np.array([[-0.5, 0.0], [0.5, 1.5]], "float32")[..., None]
    write_image(tmp_path / "out.tif", values, dtype)
    back = tifffile.imread(tmp_path / "out.tif")
    assert back.dtype == dtype
    if dtype == "float32":
        np.testing.assert_array_equal(back, values[..., 0])  # floats: as they are
    else:
        info = np.iinfo(dtype)
        assert back[1, 1] == info.max and back[0, 0] == max(info.min, round(-0.5 * info.max))  # clipped to the type
        assert back[1, 0] == round(0.5 * info.max)
    volume = np.zeros((3, 4, 4, 2), "float32")
    write_image(tmp_path / "v.tif", volume, "uint16")
    assert read_image(tmp_path / "v.tif").pixels.shape == (3, 4, 4, 2)


def _named(*arrays):
    from dlimaging.data.images import Image

    return [(f"f{i}.tif", Image(a.astype("float32"), np.dtype("uint8"))) for i, a in enumerate(arrays)]


def test_stack_refuses_files_that_disagree_naming_two_unless_images_are_resized():
    small, large = np.zeros((8, 8, 1)), np.zeros((8, 12, 1))
    with pytest.raises(InputError, match=r"'f0\.tif' is 8x8 with 1 channel\(s\) and 'f1\.tif' is 8x12 .* give "
                                         r"`image_size`"):
        stack_images(_named(small, large), what="here")
    assert stack_images(_named(small, large), image_size=(4, 4), what="here").shape == (2, 4, 4, 1)
    assert stack_images(_named(small, np.zeros((8, 8, 3))), what="here").shape == (2, 8, 8, 3)  # grey joins RGB
    with pytest.raises(InputError, match=r"'f1\.tif' is 8x8 with 2 channel"):
        stack_images(_named(small, np.zeros((8, 8, 2))), what="here")
    volume = np.zeros((4, 8, 8, 1))
    with pytest.raises(InputError, match=r"'f0\.tif' is a volume .* and 'f1\.tif' an image"):
        stack_images(_named(volume, small), what="here")
    with pytest.raises(InputError, match=r"volumes are never resized"):
        stack_images(_named(volume, volume), image_size=(4, 4), what="here")
    with pytest.raises(InputError, match=r"'f0\.tif' is 4x8x8 with 1 channel\(s\) and 'f1\.tif' is 4x8x6"):
        stack_images(_named(volume, np.zeros((4, 8, 6, 1))), image_size=None, what="here")


def _folder(root, write, classes=("a", "b"), per_class=3):
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            write(root / name / f"{i}.tif", label, i)
    return root


def _streamed(dataset):
    """A class folder streams (no `arrays`): its samples and labels, read through the pipeline."""
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in dataset))
    return np.concatenate(xs), np.concatenate(ys)


def test_a_folder_of_volumes_loads_as_volumes(tmp_path):
    def write(path, label, i):
        tifffile.imwrite(path, np.full((4, 8, 8), 1000 * (label + 1) + i, "uint16"), photometric="minisblack")

    data = dli.load_dataset(str(_folder(tmp_path / "v", write)), validation_split=0, test_split=0)
    assert data.input_shape == (4, 8, 8, 1) and data.class_names == ["a", "b"]
    assert data.value_range == (0.0, 1.0)
    x, y = _streamed(data.train)
    assert x.max() == pytest.approx(2002 / 65535.0) and x[y == 0].max() == pytest.approx(1002 / 65535.0)
    with pytest.raises(InputError, match="volumes are never resized"):
        dli.load_dataset(str(tmp_path / "v"), image_size=(4, 4))


def test_a_float_tiff_folder_keeps_its_values_and_range(tmp_path):
    def write(path, label, i):
        tifffile.imwrite(path, np.full((6, 6), 10.0 * label - 5.0, "float32"))

    data = dli.load_dataset(str(_folder(tmp_path / "f", write)), validation_split=0, test_split=0)
    assert data.value_range == (-5.0, 5.0) and set(np.unique(_streamed(data.train)[0])) == {-5.0, 5.0}


def test_a_folder_of_mixed_sizes_is_refused_unless_resized(tmp_path):
    def write(path, label, i):
        tifffile.imwrite(path, np.zeros((8, 8 + 2 * (i == 2)), "uint8"))

    root = _folder(tmp_path / "m", write)
    with pytest.raises(InputError, match=r"'[^']*0\.tif' is 8x8 with 1 channel\(s\) and '[^']*2\.tif' is 8x10"):
        dli.load_dataset(str(root))
    assert dli.load_dataset(str(root), image_size=(6, 6)).input_shape == (6, 6, 1)
