"""The synthetic volumes (`blobs3d` for restoration, `cells:ndim=3` for segmentation): shapes,
values, determinism, their option checks, and the 3D patches, split and augmentation of
`load_dataset`."""

import numpy as np
import pytest
import tensorflow as tf

from dlimaging.data.dataset import load_dataset
from dlimaging.data.joint import joint_augmentation
from dlimaging.data.restoration import tiles
from dlimaging.data.volumes import generate_volumes
from dlimaging.errors import InputError

NOISE = {"kind": "gaussian", "sigma": 0.1}


def test_volumes_are_smooth_blobs_in_0_1_and_depend_on_the_seed_and_index_only():
    x, masks = generate_volumes(count=3, size=12, seed=1)
    assert x.shape == (3, 12, 12, 12, 1) and masks.shape == (3, 12, 12, 12) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and set(np.unique(masks)) == {0, 1}
    assert x[masks == 1].mean() > x[masks == 0].mean() + 0.1  # the blobs are brighter than the background
    assert np.abs(np.diff(x, axis=1)).mean() < 0.1  # smooth along depth too: no noise without `noise`
    more, _ = generate_volumes(count=4, size=12, seed=1)
    np.testing.assert_array_equal(more[:3], x)
    assert not np.array_equal(generate_volumes(count=1, size=12, seed=2)[0][0], x[0])


def test_tiles_cut_a_volume_into_centred_cubes():
    volume = np.arange(5 * 9 * 8).reshape(5, 9, 8, 1)
    cubes = tiles(volume, (4, 4, 4))
    assert len(cubes) == 1 * 2 * 2 and all(c.shape == (4, 4, 4, 1) for c in cubes)
    np.testing.assert_array_equal(cubes[0], volume[0:4, 0:4, 0:4])  # margins 1//2, 1//2, 0
    np.testing.assert_array_equal(cubes[3], volume[0:4, 4:8, 4:8])


def test_blobs3d_restoration_draws_corrupted_cubes_split_by_volume():
    bundle = load_dataset("blobs3d:count=6,size=16", task="restoration", corruption=NOISE, patch_size=8,
                          patches_per_epoch=10, validation_split=0.2, test_split=0.2, batch_size=5,
                          augmentation={"flip": True, "rotate90": True})
    assert bundle.input_shape == (8, 8, 8, 1) and bundle.max_val == 1.0
    assert {len(bundle.items[s]) for s in ("validation", "test")} == {1} and len(bundle.items["train"]) == 4
    assert not set(bundle.items["train"]) & set(bundle.items["validation"] + bundle.items["test"])
    assert bundle.num_validation == 8  # one 16³ volume gives 8 cubes of 8³
    noisy, clean = next(iter(bundle.train))
    assert noisy.shape == clean.shape == (5, 8, 8, 8, 1)
    assert 0.07 < float(tf.math.reduce_std(noisy - clean)) < 0.13
    assert "patches (8, 8, 8, 1)" in bundle.summary()


def test_blobs3d_default_patch_is_a_cube_of_16_or_the_volume():
    bundle = load_dataset("blobs3d:count=3,size=8", task="restoration", corruption=NOISE, validation_split=0.0,
                          test_split=0.0, batch_size=2)
    assert bundle.input_shape == (8, 8, 8, 1)


@pytest.mark.parametrize("source, kwargs, match", [
    ("blobs3d:size=4", {}, r"`source` 'blobs3d:size=4': `size` must be an integer in \[8, 256\]. Received: size=4"),
    ("blobs3d:count=2,depth=3", {}, r"'depth=3' is not an option of blobs3d; .*count, size, seed"),
    ("blobs3d:seed=x", {}, r"seed must be an integer. Received: seed='x'"),
    ("blobs3d:count=3,size=8", {"augmentation": {"rotation": 0.1}},
     r"`augmentation` option 'rotation' is not one of flip, rotate90 \(volumes\)"),
    ("blobs3d:count=3,size=8", {"corruption": {"kind": "baseline", "amplitude": 0.1}},
     r"'baseline' corruption applies to signals .* holds volumes \(depth, height, width, channels\)"),
    ("blobs3d:count=3,size=8", {"patch_size": 16}, r"`patch_size` 16 is larger than 3 item\(s\)"),
    ("blobs3d", {"corruption": None}, r"needs a `corruption`"),
])
def test_blobs3d_refusals(source, kwargs, match):
    settings = {"task": "restoration", "corruption": NOISE, "validation_split": 0.0, "test_split": 0.0, **kwargs}
    with pytest.raises(InputError, match=match):
        load_dataset(source, **settings)


def test_blobs3d_is_for_restoration_only():
    with pytest.raises(InputError, match=r"holds clean images without labels: use it with task='restoration'"):
        load_dataset("blobs3d:count=2,size=8")


def test_cells_ndim3_gives_volumes_and_masks_for_segmentation():
    bundle = load_dataset("cells:ndim=3,count=5,size=12,classes=3", task="segmentation", batch_size=2,
                          validation_split=0.2, test_split=0.2, augmentation={"flip": True, "rotate90": True,
                                                                              "contrast": 0.1})
    assert bundle.input_shape == (12, 12, 12, 1) and bundle.num_classes == 3
    assert bundle.class_names == ["background", "cell", "boundary"] and bundle.num_train == 3
    x, y = next(iter(bundle.train))
    assert x.shape == (2, 12, 12, 12, 1) and y.shape == (2, 12, 12, 12) and y.dtype == tf.int32
    assert set(np.unique(bundle.arrays["y_train"])) == {0, 1, 2}
    patched = load_dataset("cells:ndim=3,count=4,size=16", task="segmentation", patch_size=8, batch_size=2,
                           validation_split=0.25, test_split=0.25)
    assert patched.input_shape == (8, 8, 8, 1) and patched.num_validation == 8  # split by volume, then cut


@pytest.mark.parametrize("source, kwargs, match", [
    ("cells:ndim=4", {}, r"ndim must be 2 \(images\) or 3 \(volumes\). Received: ndim=4"),
    ("cells:ndim=3,size=4", {}, r"`size` must be an integer in \[8, 256\]"),
    ("cells:ndim=3,count=3,size=8", {"augmentation": {"zoom": 0.1}},
     r"`augmentation` option 'zoom' is not one of flip, rotate90, contrast, brightness, noise \(volumes\)"),
])
def test_cells_ndim3_refusals(source, kwargs, match):
    with pytest.raises(InputError, match=match):
        load_dataset(source, task="segmentation", **kwargs)


def test_volume_and_mask_flip_and_turn_together_in_the_height_width_plane():
    rng = np.random.default_rng(0)
    volume = rng.random((4, 3, 6, 6, 1)).astype("float32")
    masks = (volume[..., 0] > 0.5).astype("int32")  # a mask derived from the volume by a threshold
    augment = joint_augmentation({"flip": True, "rotate90": True}, volume=True)
    pairs = tf.data.Dataset.from_tensor_slices((volume, masks))
    seen = set()
    for (x, y), original in zip(augment(pairs, 0), volume):
        x, y = x.numpy(), y.numpy()
        np.testing.assert_array_equal(y, (x[..., 0] > 0.5).astype("int32"))  # still the threshold of the volume
        # Each slice moved alike, and only within its plane: slice k of x is a flip/turn of slice k.
        moves = [np.rot90(np.flip(original, flips), k, axes=(1, 2)) if flips else np.rot90(original, k, axes=(1, 2))
                 for k in range(4) for flips in ((), (1,), (2,), (1, 2))]
        match = [i for i, moved in enumerate(moves) if np.array_equal(moved, x)]
        assert match
        seen.add(match[0])
    assert len(seen) > 1  # not always the same draw
