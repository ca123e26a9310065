"""Joint augmentation: one draw moves the image and its mask; intensity changes touch the image only."""

import numpy as np
import pytest
import tensorflow as tf

from dlimaging.data.cells import generate_cells
from dlimaging.data.dataset import load_dataset
from dlimaging.data.joint import joint_augmentation
from dlimaging.errors import InputError

THRESHOLD = 0.3


def _pairs(options, count=8, seed=0):
    x, _ = generate_cells(count=count, size=32, noise=0.0, seed=3)
    masks = (x[..., 0] > THRESHOLD).astype("int32")  # a mask derived from the image by a threshold
    pairs = tf.data.Dataset.from_tensor_slices((x, masks))
    out = list(joint_augmentation(options)(pairs, seed).as_numpy_iterator())
    return x, masks, np.stack([a for a, _ in out]), np.stack([b for _, b in out])


def test_flips_and_quarter_turns_move_the_mask_with_the_image():
    x, masks, images, moved = _pairs({"flip": True, "rotate90": True})
    np.testing.assert_array_equal(moved, (images[..., 0] > THRESHOLD).astype("int32"))
    assert not np.array_equal(images, x)  # something moved
    assert moved.dtype == np.int32


def test_rotation_zoom_and_translation_keep_the_pair_aligned_and_the_ids_integer():
    x, masks, images, moved = _pairs({"rotation": 0.1, "zoom": 0.2, "translation": 0.1})
    agreement = np.mean(moved == (images[..., 0] > THRESHOLD))
    assert agreement > 0.97  # the image is interpolated, the mask taken by nearest neighbour
    assert set(np.unique(moved)) <= {0, 1}
    assert not np.array_equal(images, x)


def test_intensity_options_touch_the_image_only():
    x, masks, images, moved = _pairs({"contrast": 0.5, "brightness": 0.2, "noise": 0.1})
    np.testing.assert_array_equal(moved, masks)
    assert not np.allclose(images, x)


def test_segmentation_data_take_the_augmentation_and_other_tasks_refuse_it():
    data = load_dataset("cells:count=4,size=16", task="segmentation", augmentation={"flip": "horizontal"},
                        validation_split=0.25, test_split=0.25, batch_size=2)
    x, y = next(iter(data.train))
    assert x.shape[1:] == (16, 16, 1) and y.shape[1:] == (16, 16)
    with pytest.raises(InputError, match=r"`augmentation` option 'shear' is not one of"):
        load_dataset("cells:count=4,size=16", task="segmentation", augmentation={"shear": 0.1})
    with pytest.raises(InputError, match=r"`flip` must be True or one of"):
        load_dataset("cells:count=4,size=16", task="segmentation", augmentation={"flip": "diagonal"})
    with pytest.raises(InputError, match=r"`augmentation` applies to task 'restoration' or 'segmentation', "
                                         r"not to task=None"):
        load_dataset("digits", augmentation={"flip": True})


def test_restoration_moves_the_clean_patch_before_the_noise_so_the_pair_stays_aligned():
    data = load_dataset("skimage:camera,moon,coins", task="restoration", corruption={"kind": "gaussian", "sigma": 0.05},
                        patch_size=16, patches_per_epoch=8, validation_split=0, test_split=0,
                        augmentation={"rotation": 0.2, "zoom": 0.2})
    noisy, clean = next(iter(data.train))
    assert float(np.std(noisy - clean)) == pytest.approx(0.05, rel=0.3)  # only the noise between them
    with pytest.raises(InputError, match=r"`augmentation` option 'contrast' is not one of flip, rotate90"):
        load_dataset("skimage:camera,moon,coins", task="restoration", corruption={"kind": "gaussian", "sigma": 0.05},
                     patch_size=16, augmentation={"contrast": 0.2})


def test_train_sends_the_moving_options_to_the_data():
    from dlimaging.training import data_augmentation

    overrides, data = data_augmentation("restoration", {"augmentation": {"rotation": 0.1, "noise": 0.1}}, None)
    assert overrides["augmentation"] == {"noise": 0.1} and data["augmentation"] == {"rotation": 0.1}
    overrides, data = data_augmentation("segmentation", {"augmentation": {"flip": True, "contrast": 0.1}}, {})
    assert "augmentation" not in overrides and data["augmentation"] == {"flip": True, "contrast": 0.1}
    overrides, data = data_augmentation("classification", {"augmentation": {"flip": True}}, None)
    assert overrides == {"augmentation": {"flip": True}} and data == {}
