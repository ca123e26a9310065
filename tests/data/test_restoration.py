"""Restoration data: clean items split by item, patches corrupted afresh each epoch, fixed validation."""

import numpy as np
import pytest
from PIL import Image

import dlimaging as dli
from dlimaging.errors import InputError

TASK = "restoration"
NOISE = {"kind": "gaussian", "sigma": 0.1}


def _all(ds):
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in ds))
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture
def flat_images(tmp_path):
    """Ten grey images, each of one grey level of its own (10, 30, ..., 190), of various sizes."""
    for i in range(10):
        level = 10 + 20 * i
        folder = tmp_path / ("a" if i % 2 else "b")  # sub-folders are read too
        folder.mkdir(exist_ok=True)
        Image.fromarray(np.full((20 + 3 * i, 24 + i, 3) if i == 4 else (20 + 3 * i, 24 + i), level, "uint8")).convert(
            "L").save(folder / f"img{i}.png")
    return tmp_path


def _levels(y):
    return {int(round(v * 255)) for v in np.unique(y.reshape(len(y), -1)[:, 0])}


def test_no_image_gives_patches_to_two_splits(flat_images):
    data = dli.load_dataset(str(flat_images), task=TASK, corruption=NOISE, patch_size=8, patches_per_epoch=200,
                            validation_split=0.2, test_split=0.2, batch_size=32, seed=3)
    assert data.task == TASK and data.num_classes is None and data.class_names == []
    assert data.input_shape == (8, 8, 1) and data.max_val == 1.0 and data.num_train == 200
    assert [len(data.items[s]) for s in ("train", "validation", "test")] == [6, 2, 2]
    assert sorted(sum(data.items.values(), [])) == sorted(f"{f}/img{i}.png" for i in range(10) for f in "ab" if (i % 2) == (f == "a"))
    train = set()
    for _ in range(3):  # training patches come from anywhere in the training images
        x, y = _all(data.train)
        assert len(x) == 200
        assert np.all(y == y[:, :1, :1, :])  # each patch inside one image
        train |= _levels(y)
    validation, test = _levels(data.arrays["y_validation"]), _levels(data.arrays["y_test"])
    assert len(train) == 6 and len(validation) == 2 and len(test) == 2
    assert not (train & validation or train & test or validation & test)
    # The patches tile the held-out images: img0 (20x24) gives 2x3 patches of 8x8.
    expected = sum((20 + 3 * i) // 8 * ((24 + i) // 8) for i in range(10) if 10 + 20 * i in validation)
    assert data.num_validation == expected == len(data.arrays["x_validation"])


def test_training_draws_are_fresh_each_epoch_and_validation_draws_fixed(flat_images):
    data = dli.load_dataset(str(flat_images), task=TASK, corruption=NOISE, patch_size=8, patches_per_epoch=64, seed=0)
    x1, y1 = _all(data.train)
    x2, y2 = _all(data.train)
    assert not np.allclose(x1, x2) and not np.allclose(x1 - y1, x2 - y2)
    assert abs(np.std(x1 - y1) - 0.1) < 0.01 and abs(np.std(x2 - y2) - 0.1) < 0.01
    v1, v2 = _all(data.validation), _all(data.validation)
    assert np.array_equal(v1[0], v2[0]) and np.array_equal(v1[0], data.arrays["x_validation"])
    assert abs(np.std(v1[0] - v1[1]) - 0.1) < 0.02
    # The same seed gives the same splits and the same validation draws.
    again = dli.load_dataset(str(flat_images), task=TASK, corruption=NOISE, patch_size=8, patches_per_epoch=64, seed=0)
    assert again.items == data.items and np.array_equal(again.arrays["x_validation"], data.arrays["x_validation"])
    other = dli.load_dataset(str(flat_images), task=TASK, corruption=NOISE, patch_size=8, patches_per_epoch=64, seed=1)
    assert other.items != data.items


def test_scikit_image_samples_are_grey_patches():
    data = dli.load_dataset("skimage:camera,moon,coins,text", task=TASK, corruption=NOISE, patch_size=32,
                            validation_split=0.25, test_split=0.25, batch_size=8)
    assert data.input_shape == (32, 32, 1) and data.max_val == 1.0
    assert sorted(sum(data.items.values(), [])) == ["camera", "coins", "moon", "text"]
    # Patches tile the whole images by default (camera 512x512 gives 256 patches of 32x32).
    sizes = {"camera": 16 * 16, "moon": 16 * 16, "coins": 9 * 12, "text": 5 * 14}
    assert data.num_train == sum(sizes[n] for n in data.items["train"])
    assert data.num_test == sizes[data.items["test"][0]]
    x, y = next(iter(data.train))
    assert x.shape == (8, 32, 32, 1) and 0.0 <= float(np.min(y)) and float(np.max(y)) <= 1.0


def test_renamed_samples_are_the_coffee_cup_and_one_motorcycle_view():
    import skimage.color
    import skimage.data

    from dlimaging.data.restoration import SAMPLE_IMAGES, clean_items

    items, max_val = clean_items("skimage:coffee_cup,motorcycle")
    assert max_val == 1.0 and "coffee" not in SAMPLE_IMAGES  # "coffee" is the coffee spectra's source
    left, right = skimage.data.stereo_motorcycle()[:2]
    for name, rgb in (("coffee_cup", skimage.data.coffee()), ("motorcycle", left)):
        grey = (skimage.color.rgb2gray(rgb) * 255).round() / 255
        assert items[name].shape == grey.shape + (1,) and np.allclose(items[name][..., 0], grey, atol=1e-6)
    right_grey = (skimage.color.rgb2gray(right) * 255).round() / 255
    assert not np.allclose(items["motorcycle"][..., 0], right_grey)  # the left view only, never both
    with pytest.raises(InputError, match=r"'coffee' is not one of scikit-image's sample images"):
        dli.load_dataset("skimage:camera,coffee", task=TASK, corruption=NOISE)


def test_signals_restore_whole_or_in_windows():
    data = dli.load_dataset("spectra:samples=60,length=64", task=TASK, corruption=[
        {"kind": "baseline", "amplitude": 0.2}, {"kind": "gaussian", "sigma": 0.02}], batch_size=16)
    assert data.input_shape == (64, 1) and data.num_train == len(data.items["train"])
    assert data.max_val > 0.5
    windows = dli.load_dataset("mnist1d", task=TASK, corruption=NOISE, patch_size=20, batch_size=64)
    assert windows.input_shape == (20, 1) and windows.num_validation == 2 * len(windows.items["validation"])
    x, y = next(iter(windows.train))
    assert x.shape == (64, 20, 1) and abs(float(np.std(x - y)) - 0.1) < 0.02


@pytest.mark.parametrize("source, options, match", [
    ("digits", {}, r"`source` 'digits' is a labelled dataset, not clean images or signals: task='restoration' needs "
                   r"one of .*skimage.*Received: source='digits'"),
    ("skimage:camera,moon,coins", {"corruption": None}, r"needs a `corruption`.*Received: corruption=None"),
    ("skimage:camera,moon,coins", {"corruption": {"kind": "gaussian", "sigma": -0.1}}, r"`corruption.sigma` must be >= 0"),
    ("skimage:camera,moon,coins", {"corruption": {"kind": "jpeg"}}, r"`corruption.kind` must be one of"),
    ("skimage:camera,moon,coins", {"corruption": {"kind": "baseline", "amplitude": 0.1}}, r"applies to signals"),
    ("skimage:camera,moon,coins", {"patch_size": 400}, r"`patch_size` 400 is larger than .*'coins'"),
    ("skimage:camera,moon,coins", {"patch_size": 0}, r"`patch_size` must be a positive integer"),
    ("skimage:camera,moon,coins", {"corruption": {"kind": "blur", "width": 20}},
     r"blur of width=20 reaches 60 pixels to each side, wider than the patch \(patch_size=32\)"),
    ("skimage:camera,moon,coins", {"validation_split": 0.5, "test_split": 0.4}, r"3 image\(s\).*leave none for training"),
    ("skimage:camera,lena", {}, r"'lena' is not one of scikit-image's sample images"),
    ("skimage:camera,moon,coins", {"corruption": {"kind": "gaussian", "sigma": 1e30}},
     r"`corruption.sigma` must be at most 10 times the data's range \(max_val=1 "),
])
def test_bad_restoration_data_is_refused(source, options, match):
    options = {"corruption": NOISE, "patch_size": 32, **options}
    with pytest.raises(InputError, match=match):
        dli.load_dataset(source, task=TASK, **options)


def test_restoration_settings_elsewhere_and_clean_sources_without_the_task_are_refused():
    with pytest.raises(InputError, match=r"`corruption` applies to task 'restoration', not to task='classification'"):
        dli.load_dataset("digits", task="classification", corruption=NOISE)
    with pytest.raises(InputError, match=r"`patch_size` applies to task 'restoration'"):
        dli.load_dataset("digits", patch_size=8)
    with pytest.raises(InputError, match=r"'skimage' holds clean images without labels: use it with task='restoration'"):
        dli.load_dataset("skimage")
