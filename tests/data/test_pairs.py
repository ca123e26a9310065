"""Paired restoration data: matched by name, patches at one place in both, split by pair."""

import numpy as np
import pytest
import tifffile

import dlimaging as dli
from dlimaging.errors import InputError

TASK = "restoration"


def _pairs(root, count=4, shape=(16, 16), subfolder=""):
    """`count` pairs: high is a ramp of its own level, low = high / 2 (so low and high line up)."""
    rng = np.random.default_rng(0)
    for i in range(count):
        high = (rng.random(shape) * 30000 + 1000 * i).astype("uint16")
        for kind, image in (("low", high // 2), ("high", high)):
            folder = root / kind / subfolder
            folder.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(folder / f"img{i}.tif", image, photometric="minisblack")
    return root


def test_pairs_folder_patches_line_up_and_split_by_pair(tmp_path):
    root = _pairs(tmp_path / "data", count=5)
    data = dli.load_dataset(str(root), task=TASK, patch_size=8, patches_per_epoch=16, validation_split=0.2,
                            test_split=0.2, batch_size=8, augmentation={"rotation": 0.1, "flip": True})
    assert data.input_shape == (8, 8, 1) and data.corruption == () and data.num_train == 16
    assert sorted(sum(data.items.values(), [])) == [f"img{i}" for i in range(5)]
    assert not set(data.items["train"]) & set(data.items["validation"] + data.items["test"])
    low, high = next(iter(data.train))
    # cut at one place, turned and moved alike: low is high / 2 everywhere (up to the integer halving)
    np.testing.assert_allclose(low.numpy() * 2, high.numpy(), atol=2 / 65535 + 1e-4)
    np.testing.assert_allclose(data.arrays["x_validation"] * 2, data.arrays["y_validation"], atol=2 / 65535)
    assert "noisy as read" in data.summary()


def test_prefix_source_matches_by_relative_name_and_reads_volumes(tmp_path):
    _pairs(tmp_path, count=3, shape=(4, 8, 8), subfolder="a")  # 3D TIFF stacks: volumes
    data = dli.load_dataset(f"pairs:{tmp_path / 'low'},{tmp_path / 'high'}", task=TASK, patch_size=4,
                            validation_split=0.34, test_split=0, batch_size=4)
    assert data.input_shape == (4, 4, 4, 1)
    assert data.items["validation"] and data.items["validation"][0].startswith("a/img")
    low, high = next(iter(data.train))
    np.testing.assert_allclose(low.numpy() * 2, high.numpy(), atol=2 / 65535 + 1e-4)


def test_refusals_name_the_file(tmp_path):
    root = _pairs(tmp_path / "d", count=3)
    (root / "high" / "img2.tif").unlink()
    with pytest.raises(InputError, match=r"img2\.tif.* has no partner"):
        dli.load_dataset(str(root), task=TASK)
    tifffile.imwrite(root / "high" / "img2.tif", np.zeros((16, 12), "uint16"))
    with pytest.raises(InputError, match=r"pair 'img2' differs in shape"):
        dli.load_dataset(str(root), task=TASK)
    with pytest.raises(InputError, match="`corruption` does not apply to a pairs source"):
        dli.load_dataset(str(root), task=TASK, corruption={"kind": "gaussian", "sigma": 0.1})
    with pytest.raises(InputError, match="names two folders"):
        dli.load_dataset("pairs:onlyone", task=TASK)
    with pytest.raises(InputError, match="use it with task='restoration'"):
        dli.load_dataset(f"pairs:{root / 'low'},{root / 'high'}", task="classification")


def _batches(dataset):
    xs, ys = zip(*dataset.as_numpy_iterator())
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize("normalize", ["dtype", "percentile"])
def test_pairs_stream_from_disk_with_the_in_memory_split_tiles_and_range(tmp_path, normalize):
    root = _pairs(tmp_path / "data", count=6)
    kwargs = dict(task=TASK, patch_size=8, validation_split=0.2, test_split=0.2, batch_size=4, normalize=normalize,
                  augmentation={"flip": True})
    memory, streamed = (dli.load_dataset(str(root), cache=c, **kwargs) for c in ("memory", "none"))
    assert streamed.cache == "none" and streamed.arrays == {} and "Cache: none" in streamed.cache_note
    assert streamed.items == memory.items and streamed.num_train == memory.num_train
    assert streamed.max_val == pytest.approx(memory.max_val, rel=1e-6)
    for split in ("validation", "test"):  # the same tiles of the same held-out pairs
        for a, b in zip(_batches(getattr(memory, split)), _batches(getattr(streamed, split))):
            np.testing.assert_allclose(a, b, atol=1e-6)
    low, high = _batches(streamed.train)
    assert low.shape == high.shape == (streamed.num_train, 8, 8, 1)
    if normalize == "dtype":  # cut at one place and turned alike
        np.testing.assert_allclose(low * 2, high, atol=2 / 65535 + 1e-4)
    assert not np.array_equal(low, _batches(streamed.train)[0])  # new patches each epoch
    assert dli.load_dataset(str(root), cache="disk", **kwargs).cache == "disk"


def test_a_partner_gone_while_streaming_is_one_line_naming_it(tmp_path):
    from dlimaging.data.streaming import reading_files

    root = _pairs(tmp_path / "data", count=4)
    data = dli.load_dataset(str(root), task=TASK, patch_size=8, validation_split=0, test_split=0, cache="none")
    gone = root / "high" / f"{data.items['train'][0]}.tif"
    gone.unlink()
    with pytest.raises(InputError, match=f"'{gone}' is unreadable"):
        with reading_files():
            _batches(data.train)
