"""Noise2Void's masking (`dlimaging.data.n2v`) and `load_dataset(target="self")`: no clean image in any split."""

import numpy as np
import pytest
import tensorflow as tf

import dlimaging as dli
from dlimaging.data.n2v import mask_once, mask_patch
from dlimaging.errors import InputError

NOISE = {"kind": "gaussian", "sigma": 0.1}


@pytest.mark.parametrize("shape", [(16, 16, 2), (40, 1)])
def test_a_few_pixels_take_a_neighbours_value_and_the_target_keeps_the_noisy_one(shape):
    noisy = np.random.default_rng(0).random(shape).astype("float32")  # all values distinct
    masked, target = (t.numpy() for t in mask_patch(noisy, 0.02, tf.constant([3, 4], tf.int64)))
    assert masked.shape == noisy.shape and target.shape == shape[:-1] + (shape[-1] + 1,)
    np.testing.assert_array_equal(target[..., :-1], noisy)
    mask = target[..., -1]
    assert set(np.unique(mask)) <= {0.0, 1.0} and 1 <= mask.sum() <= round(0.02 * np.prod(shape[:-1]))
    changed = np.any(masked != noisy, axis=-1)
    np.testing.assert_array_equal(changed, mask.astype(bool))  # a pixel never keeps its own value
    np.testing.assert_array_equal(masked[~changed], noisy[~changed])
    for point in np.argwhere(changed):  # its new value is a neighbour's, within the 5×5 (5-point) window
        window = tuple(slice(max(0, p - 2), p + 3) for p in point)
        assert any(np.array_equal(masked[tuple(point)], v) for v in noisy[window].reshape(-1, shape[-1]))


def test_fixed_patches_are_masked_the_same_way_every_time():
    noisy = np.random.default_rng(1).random((3, 8, 8, 1)).astype("float32")
    first, again = mask_once(noisy, 0.05, 7), mask_once(noisy, 0.05, 7)
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[1][..., 1], mask_once(noisy, 0.05, 8)[1][..., 1])


def test_a_noise2void_bundle_holds_noisy_targets_and_a_mask_in_every_split():
    data = dli.load_dataset("skimage:camera,moon,coins", task="restoration", target="self", corruption=NOISE,
                            patch_size=16, patches_per_epoch=8, validation_split=0.34, test_split=0.3,
                            n2v_fraction=0.01, batch_size=4)
    assert data.self_supervised and data.input_shape == (16, 16, 1)
    assert "Noise2Void" in data.summary()
    for split in (data.train, data.validation, data.test):
        x, y = next(iter(split))
        assert x.shape[1:] == (16, 16, 1) and y.shape[1:] == (16, 16, 2)
        assert np.all(y[..., 1].numpy().sum(axis=(1, 2)) >= 1)
        # The target is the noisy input (no clean image): they differ at the masked pixels only.
        unmasked = y[..., 1].numpy() == 0
        np.testing.assert_array_equal(x.numpy()[..., 0][unmasked], y.numpy()[..., 0][unmasked])
    assert data.arrays["y_validation"].shape[-1] == 2  # the arrays too: noisy and mask, no clean image


def test_a_folder_of_noisy_images_needs_no_corruption_and_signals_work_too(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.random((16, 16)) * 255).astype("uint8")).save(tmp_path / f"noisy{i}.png")
    data = dli.load_dataset(str(tmp_path), task="restoration", target="self", patch_size=8, patches_per_epoch=4,
                            validation_split=0.34, test_split=0.0)
    assert data.corruption == () and "noisy as read" in data.summary()
    signals = dli.load_dataset("spectra:samples=20", task="restoration", target="self", corruption=NOISE,
                               n2v_fraction=0.05, batch_size=4)
    x, y = next(iter(signals.train))
    assert x.shape[1:] == (256, 1) and y.shape[1:] == (256, 2)


@pytest.mark.parametrize("source, kwargs, match", [
    ("skimage", {"n2v_fraction": 0.0}, r"`n2v_fraction` must be a number in \(0.0, 0.1\]"),
    ("skimage", {"n2v_fraction": 0.2}, r"Received: n2v_fraction=0.2"),
    ("skimage", {"n2v_fraction": True}, r"`n2v_fraction` must be a number"),
    ("skimage", {"target": None, "n2v_fraction": 0.01}, "applies to Noise2Void training"),
    ("skimage", {"corruption": None}, "holds clean images or signals, on which Noise2Void"),
    ("cells:count=4,size=16", {"corruption": None}, "dataset of pairs or labels"),
    ("digits", {"task": "classification", "corruption": None}, "applies to task 'restoration'"),
    ("cells:count=4,size=16", {"task": "segmentation", "corruption": None}, "applies to task 'restoration'"),
])
def test_noise2void_mistakes_are_refused_before_any_training(source, kwargs, match):
    arguments = {"task": "restoration", "target": "self", "corruption": NOISE, "patch_size": 8, **kwargs}
    with pytest.raises(InputError, match=match):
        dli.load_dataset(source, **arguments)
