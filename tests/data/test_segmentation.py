"""Segmentation data: folders of images and masks, .npz files, cells; split by image."""

import numpy as np
import pytest
from PIL import Image

from dlimaging.data.dataset import load_dataset
from dlimaging.errors import InputError


def _folder(root, masks, *, classes=None, image_sizes=None, mask_mode="L"):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, mask in enumerate(masks):
        size = image_sizes[i] if image_sizes else mask.shape
        Image.fromarray(np.full(size, 100 + i, "uint8")).save(root / "images" / f"im{i}.png")
        Image.fromarray(mask.astype("uint8"), mask_mode).save(root / "masks" / f"im{i}.png")
    if classes:
        (root / "classes.txt").write_text("\n".join(classes))
    return str(root)


def test_a_folder_of_images_and_masks_splits_by_image(tmp_path):
    masks = [np.zeros((16, 16), "uint8") for _ in range(5)]
    for mask in masks:
        mask[4:10, 4:10] = 255
    data = load_dataset(_folder(tmp_path / "f", masks), task="segmentation", validation_split=0.2,
                        test_split=0.2, batch_size=2)
    assert data.num_classes == 2 and data.class_names == ["0", "1"]  # 0/255 read as 2 classes
    assert (data.num_train, data.num_validation, data.num_test) == (3, 1, 1)
    assert set(data.items["train"]).isdisjoint(data.items["test"] + data.items["validation"])
    assert data.arrays["y_train"].max() == 1 and data.arrays["y_train"].dtype == np.int32
    assert data.class_frequencies == pytest.approx([1 - 36 / 256, 36 / 256])
    x, y = next(iter(data.train))
    assert x.shape[1:] == (16, 16, 1) and y.shape[1:] == (16, 16)


def test_classes_txt_names_the_classes_and_bounds_the_ids(tmp_path):
    masks = [np.arange(256).reshape(16, 16) % 3 for _ in range(3)]
    data = load_dataset(_folder(tmp_path / "a", masks, classes=["bg", "cell", "edge"]), task="segmentation",
                        validation_split=0, test_split=0)
    assert data.class_names == ["bg", "cell", "edge"]
    with pytest.raises(InputError, match=r"Mask '.*im0.png' of .* holds class id 2, beyond the 2 classes"):
        load_dataset(_folder(tmp_path / "b", masks, classes=["bg", "cell"]), task="segmentation",
                     validation_split=0, test_split=0)


def test_bad_masks_are_one_line_errors_naming_the_file(tmp_path):
    masks = [np.zeros((16, 16), "uint8"), np.ones((16, 16), "uint8")]
    with pytest.raises(InputError, match=r"Mask '.*im1.png' is 16x16; its image 'im1.png' is 20x16"):
        load_dataset(_folder(tmp_path / "a", masks, image_sizes=[(16, 16), (16, 20)]), task="segmentation",
                     validation_split=0, test_split=0)
    folder = _folder(tmp_path / "b", masks)
    Image.fromarray(np.zeros((16, 16), "float32"), "F").save(tmp_path / "b" / "masks" / "im1.tif")
    (tmp_path / "b" / "masks" / "im1.png").unlink()
    with pytest.raises(InputError, match=r"Mask '.*im1.tif' holds float32 values"):
        load_dataset(folder, task="segmentation", validation_split=0, test_split=0)
    (tmp_path / "b" / "masks" / "im1.tif").unlink()
    with pytest.raises(InputError, match=r"'.*im1.png' has no file of the same name in masks/"):
        load_dataset(folder, task="segmentation", validation_split=0, test_split=0)


def test_npz_with_masks_and_sources_without(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.random((6, 16, 16)), masks=rng.integers(0, 3, (6, 16, 16)))
    data = load_dataset(str(path), task="segmentation", validation_split=0.2, test_split=0.2)
    assert data.num_classes == 3 and data.input_shape == (16, 16, 1)
    np.savez(tmp_path / "f.npz", x=rng.random((6, 16, 16)), masks=rng.random((6, 16, 16)))
    with pytest.raises(InputError, match=r"`masks` holds float64 values"):
        load_dataset(str(tmp_path / "f.npz"), task="segmentation")
    np.savez(tmp_path / "s.npz", x=rng.random((6, 16, 16)), masks=rng.integers(0, 2, (6, 8, 8)))
    with pytest.raises(InputError, match=r"`masks` has shape \(6, 8, 8\)"):
        load_dataset(str(tmp_path / "s.npz"), task="segmentation")
    with pytest.raises(InputError, match=r"`source` 'digits' has no masks: task='segmentation' needs one of"):
        load_dataset("digits", task="segmentation")
    with pytest.raises(InputError, match=r"holds images and masks: use it with task='segmentation'"):
        load_dataset("cells:count=4,size=16")


def test_cells_through_load_dataset_with_patches():
    data = load_dataset("cells:count=5,size=32,classes=3", task="segmentation", patch_size=16,
                        validation_split=0.2, test_split=0.2, batch_size=4)
    assert data.input_shape == (16, 16, 1) and data.num_classes == 3
    assert data.class_names == ["background", "cell", "boundary"]
    assert (data.num_train, data.num_validation, data.num_test) == (12, 4, 4)  # 4 tiles per image


def _offset_npz(tmp_path, count=6, size=24):
    """Image k holds values in [k, k + 1); its mask is where the fraction exceeds 0.5."""
    rng = np.random.default_rng(0)
    fraction = rng.random((count, size, size)).astype("float32")
    x = fraction + np.arange(count, dtype="float32")[:, None, None]
    path = tmp_path / "offsets.npz"
    np.savez(path, x=x, masks=(fraction > 0.5).astype("uint8"))
    return str(path)


def test_segmentation_patches_use_the_sampler_image_and_mask_cut_together(tmp_path):
    data = load_dataset(_offset_npz(tmp_path), task="segmentation", patch_size=8, patches_per_epoch=40,
                        validation_split=0.2, test_split=0.2, batch_size=8, seed=3)
    assert data.num_train == 40 and data.input_shape == (8, 8, 1)
    train_items = {int(k) for k in data.items["train"]}
    held_out = {int(k) for k in data.items["validation"] + data.items["test"]}
    assert train_items and held_out and not train_items & held_out       # split by image
    epochs = []
    for _ in range(2):
        x, y = (np.concatenate(a) for a in zip(*data.train.as_numpy_iterator()))
        assert x.shape == (40, 8, 8, 1) and y.shape == (40, 8, 8) and y.dtype == np.int32
        np.testing.assert_array_equal(y, (x[..., 0] % 1.0 > 0.5))          # the mask stays on its image
        items = np.floor(x[..., 0]).reshape(40, -1)
        assert (items == items[:, :1]).all()                               # a patch lies in one image
        assert set(items[:, 0].astype(int)) <= train_items                 # ... a training image
        epochs.append(x)
    assert not np.array_equal(*epochs)                                     # a fresh draw every epoch
    x_val = data.arrays["x_validation"]
    assert len(x_val) == 9 * len(data.items["validation"])                 # held-out images are tiled
    assert set(np.floor(x_val[..., 0]).reshape(-1).astype(int)) <= held_out


def test_segmentation_patches_per_epoch_alone_and_refusals(tmp_path):
    source = _offset_npz(tmp_path, count=4, size=16)
    data = load_dataset(source, task="segmentation", patches_per_epoch=5, validation_split=0.25, test_split=0)
    assert data.num_train == 5 and data.input_shape == (16, 16, 1)        # patches of the smallest side
    assert sum(len(x) for x, _ in data.train) == 5
    with pytest.raises(InputError, match=r"`patches_per_epoch` must be .*Received: patches_per_epoch=0"):
        load_dataset(source, task="segmentation", patches_per_epoch=0)
    with pytest.raises(InputError, match=r"`patch_size` 32 is larger than image"):
        load_dataset(source, task="segmentation", patch_size=32)
    with pytest.raises(InputError, match=r"`corruption` applies to restoration, not to task='segmentation'"):
        load_dataset(source, task="segmentation", corruption={"kind": "gaussian", "sigma": 0.1})
    signals = tmp_path / "signals.npz"
    np.savez(signals, x=np.zeros((4, 32, 1), "float32"), masks=np.zeros((4, 32), "uint8"))
    with pytest.raises(InputError, match=r"`patches_per_epoch` applies to images; .*Received: patches_per_epoch=3"):
        load_dataset(str(signals), task="segmentation", patches_per_epoch=3)
    with pytest.raises(InputError, match=r"`patches_per_epoch` applies to task 'restoration' or 'segmentation'"):
        load_dataset("digits", patches_per_epoch=3)
