"""Issue 19, section 2: restoration and segmentation folders stream (listed with headers, split
by file, decoded inside `tf.data`) and give what the in-memory loaders give."""

import numpy as np
import pytest
import tifffile

from dlimaging.data.dataset import load_dataset
from dlimaging.data.streaming import reading_files
from dlimaging.errors import InputError

NOISE = {"kind": "gaussian", "sigma": 0.1}


def clean_folder(root, count=6):
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        tifffile.imwrite(root / f"{i}.tif", rng.integers(0, 65535, (20 + i, 24), dtype="uint16"))
    return root


def masks_folder(root, sizes=(16,) * 5):
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i, size in enumerate(sizes):
        tifffile.imwrite(root / "images" / f"{i}.tif", rng.integers(0, 255, (size, size), dtype="uint8"))
        tifffile.imwrite(root / "masks" / f"{i}.tif", (rng.random((size, size)) < 0.3).astype("uint8") * 255)
    return root


def _arrays(dataset):
    xs, ys = zip(*dataset.as_numpy_iterator())
    return np.concatenate(xs), np.concatenate(ys)


def test_restoration_folder_streams_with_the_in_memory_split_and_tiles(tmp_path):
    folder = clean_folder(tmp_path / "clean")
    kwargs = dict(task="restoration", corruption=NOISE, patch_size=8, batch_size=4, validation_split=0.2,
                  test_split=0.2)
    memory, streamed = (load_dataset(str(folder), cache=c, **kwargs) for c in ("memory", "none"))
    assert streamed.cache == "none" and streamed.arrays == {} and memory.cache is None
    assert streamed.items == memory.items and streamed.max_val == memory.max_val == 1.0
    for split in ("validation", "test"):  # the same tiles, corrupted with the same draws
        for a, b in zip(_arrays(getattr(memory, split)), _arrays(getattr(streamed, split))):
            np.testing.assert_array_equal(a, b)
    noisy, clean = _arrays(streamed.train)
    assert noisy.shape == clean.shape == (streamed.num_train, 8, 8, 1) == (memory.num_train, 8, 8, 1)
    assert not np.array_equal(noisy, _arrays(streamed.train)[0])  # a fresh draw each epoch
    assert load_dataset(str(folder), cache="disk", **kwargs).cache == "disk"


def test_segmentation_folder_streams_whole_images_and_patches(tmp_path):
    folder = masks_folder(tmp_path / "cells")
    memory, streamed = (load_dataset(str(folder), task="segmentation", batch_size=2, cache=c) for c in ("memory", "none"))
    assert streamed.cache == "none" and streamed.items == memory.items
    assert streamed.class_names == memory.class_names == ["0", "1"]
    np.testing.assert_allclose(streamed.class_frequencies, memory.class_frequencies)
    for a, b in zip(_arrays(memory.test), _arrays(streamed.test)):
        np.testing.assert_array_equal(a, b)
    x, y = _arrays(streamed.train)
    assert x.shape == (3, 16, 16, 1) and y.dtype == np.int32 and set(np.unique(y)) <= {0, 1}
    mixed = masks_folder(tmp_path / "mixed", sizes=(16, 12, 20, 16, 24))
    data = load_dataset(str(mixed), task="segmentation", batch_size=2, cache="none", patches_per_epoch=5)
    x, y = _arrays(data.train)
    assert data.input_shape == (12, 12, 1) and x.shape == (5, 12, 12, 1) and y.shape == (5, 12, 12)
    with pytest.raises(InputError, match="`patch_size` 64 is larger than image"):
        load_dataset(str(mixed), task="segmentation", cache="none", patch_size=64)


def test_a_file_gone_mid_training_is_one_input_error_naming_it(tmp_path):
    folder = clean_folder(tmp_path / "clean")
    data = load_dataset(str(folder), task="restoration", corruption=NOISE, patch_size=8, cache="none")
    for name in data.items["train"]:
        (folder / name).unlink()
    with pytest.raises(InputError, match=r"Image '.*\.tif' is unreadable \(FileNotFoundError"):
        with reading_files():
            _arrays(data.train)
