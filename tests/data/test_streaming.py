"""Issue 19, section 2: class folders stream from disk. The split is made on the list of files
(stratified, by seed), decoding runs inside `tf.data`, and `cache` says what is kept."""

import pathlib

import numpy as np
import pytest
from PIL import Image

from dlimaging.data import streaming
from dlimaging.data.dataset import load_dataset
from dlimaging.errors import InputError


def make_folder(root: pathlib.Path, per_class: int = 10, size: int = 8) -> pathlib.Path:
    """30 tiny grey PNGs in 3 classes (a, b, c) of different brightness."""
    rng = np.random.default_rng(0)
    for offset, name in zip((0, 80, 160), "abc"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = (rng.integers(0, 64, (size, size)) + offset).astype("uint8")
            Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
    return root


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "cells")


@pytest.fixture
def decodes(monkeypatch):
    """Counts the files decoded, through the one decode function of the pipeline (PNGs too: the
    TensorFlow decoder of plain PNGs is turned off)."""
    monkeypatch.setattr(streaming, "NATIVE_PNG", False)
    calls = []
    original = streaming.decode_image

    def counting(path, *args):
        calls.append(path)
        return original(path, *args)

    monkeypatch.setattr(streaming, "decode_image", counting)
    return calls


def _count(dataset):
    return sum(int(x.shape[0]) for x, _ in dataset)


def test_split_is_on_the_files_stratified_and_reproducible_by_seed(folder):
    data = load_dataset(str(folder), validation_split=0.2, test_split=0.2, batch_size=4, seed=3, cache="none")
    assert (data.num_train, data.num_validation, data.num_test) == (18, 6, 6)
    every = data.items["train"] + data.items["validation"] + data.items["test"]
    assert sorted(every) == sorted(f"{c}/{i:02d}.png" for c in "abc" for i in range(10))  # each file once
    for split in ("validation", "test"):  # stratified: two of each class
        assert sorted(name[0] for name in data.items[split]) == ["a", "a", "b", "b", "c", "c"]
    again = load_dataset(str(folder), validation_split=0.2, test_split=0.2, batch_size=4, seed=3, cache="none")
    other = load_dataset(str(folder), validation_split=0.2, test_split=0.2, batch_size=4, seed=4, cache="none")
    assert again.items == data.items
    assert other.items["test"] != data.items["test"]
    labels = np.concatenate([y.numpy() for _, y in data.test])
    assert [data.class_names[i] for i in labels] == [name[0] for name in data.items["test"]]


def test_nothing_is_decoded_until_the_pipeline_runs(folder, decodes):
    data = load_dataset(str(folder), batch_size=4, cache="none")
    assert decodes == [] and data.arrays == {}  # no whole arrays, no from_tensor_slices of images
    (folder / data.items["train"][0]).unlink()  # a file removed after loading is missed when read
    with pytest.raises(Exception, match="No such file|cannot find|FileNotFound"):
        _count(data.train)


@pytest.mark.parametrize("cache, decoded_twice", [("none", True), ("memory", False), ("disk", False)])
def test_each_cache_mode_trains_and_decodes_as_it_says(folder, decodes, cache, decoded_twice):
    data = load_dataset(str(folder), batch_size=4, cache=cache)
    assert data.cache == cache and f"Cache: {cache}" in data.cache_note
    assert _count(data.train) == data.num_train == 24
    first = len(decodes)
    assert first == 24
    assert _count(data.train) == 24
    assert len(decodes) == (2 * first if decoded_twice else first)
    x, _ = next(iter(data.test))
    assert x.dtype == "float32" and 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0


def test_disk_cache_lives_in_a_temporary_folder_removed_with_the_bundle(folder):
    data = load_dataset(str(folder), batch_size=4, cache="disk")
    _count(data.train)
    cached = list(pathlib.Path(streaming.tempfile.gettempdir()).glob("dlimaging-cache-*/train*"))
    assert cached, "the disk cache was not written in a temporary folder"
    assert not [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".png"]  # nothing beside the data
    parents = {p.parent for p in cached}
    del data
    import gc

    gc.collect()
    assert not any(parent.exists() for parent in parents)


def test_auto_caches_in_memory_under_a_quarter_of_the_memory_else_streams(folder, monkeypatch):
    data = load_dataset(str(folder), batch_size=4)
    assert data.cache == "memory" and "under a quarter" in data.cache_note
    monkeypatch.setattr(streaming, "available_memory", lambda: 4 * streaming.decoded_bytes(24, (8, 8, 1)))
    data = load_dataset(str(folder), batch_size=4)
    assert data.cache == "none" and "streaming from disk" in data.cache_note
    assert _count(data.train) == 24


@pytest.mark.parametrize("bad", ["ram", "", None, 1])
def test_bad_cache_values_are_refused_in_one_line(folder, bad):
    with pytest.raises(InputError, match=r"`cache` must be one of 'auto', 'memory', 'disk', 'none'. Received: cache="):
        load_dataset(str(folder), cache=bad)


def test_old_boolean_cache_still_works_and_in_memory_sources_keep_their_arrays():
    data = load_dataset("digits", cache=False)
    assert data.cache == "none" and len(data.arrays["x_train"]) == data.num_train
    assert load_dataset("digits", cache=True).cache == "memory"


def _pngs(root, arrays, mode=None):
    root.mkdir(parents=True)
    for i, pixels in enumerate(arrays):
        Image.fromarray(pixels, mode).save(root / f"{i:02d}.png") if mode else Image.fromarray(pixels).save(root / f"{i:02d}.png")


@pytest.mark.parametrize("kind", ["grey8", "grey16", "rgb", "grey_and_rgb"])
def test_plain_pngs_decoded_by_tensorflow_give_the_readers_very_pixels(tmp_path, monkeypatch, kind):
    rng = np.random.default_rng(1)
    grey8 = [rng.integers(0, 256, (9, 7), dtype=np.uint8) for _ in range(4)]
    rgb = [rng.integers(0, 256, (9, 7, 3), dtype=np.uint8) for _ in range(4)]
    wide = [rng.integers(0, 65536, (9, 7)).astype(np.uint16) for _ in range(4)]
    for name, arrays in (("a", {"grey8": grey8, "grey16": wide, "rgb": rgb, "grey_and_rgb": grey8}[kind]),
                         ("b", {"grey8": grey8, "grey16": wide, "rgb": rgb, "grey_and_rgb": rgb}[kind])):
        _pngs(tmp_path / "f" / name, arrays)
    listing = streaming.list_class_folder(str(tmp_path / "f"))
    assert listing.native == ("uint16" if kind == "grey16" else "uint8")
    settings = dict(batch_size=8, cache="none", validation_split=0, test_split=0.5)  # the test split: in order
    native = load_dataset(str(tmp_path / "f"), **settings)
    monkeypatch.setattr(streaming, "NATIVE_PNG", False)
    python = load_dataset(str(tmp_path / "f"), **settings)
    (a, _), (b, _) = next(iter(native.test)), next(iter(python.test))
    assert a.shape == b.shape == (4, 9, 7, 3 if "rgb" in kind else 1)
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # bit for bit, as read_image scales them


def test_pngs_tensorflow_would_read_otherwise_go_through_the_reader(tmp_path):
    rng = np.random.default_rng(2)
    grey_rgb = [np.repeat(rng.integers(0, 256, (6, 6, 1), dtype=np.uint8), 3, -1) for _ in range(2)]
    _pngs(tmp_path / "looks_grey" / "a", grey_rgb)  # RGB with equal channels: the reader makes it grey
    _pngs(tmp_path / "looks_grey" / "b", grey_rgb)
    _pngs(tmp_path / "resized" / "a", [rng.integers(0, 256, (6, 6), dtype=np.uint8)])
    _pngs(tmp_path / "resized" / "b", [rng.integers(0, 256, (8, 8), dtype=np.uint8)])
    _pngs(tmp_path / "alpha" / "a", [rng.integers(0, 256, (6, 6, 4), dtype=np.uint8)] * 2)
    _pngs(tmp_path / "alpha" / "b", [rng.integers(0, 256, (6, 6, 4), dtype=np.uint8)] * 2)
    assert streaming.list_class_folder(str(tmp_path / "looks_grey")).native is None
    assert streaming.list_class_folder(str(tmp_path / "resized"), image_size=(6, 6)).native is None
    assert streaming.list_class_folder(str(tmp_path / "alpha")).native is None


def test_a_png_broken_or_gone_mid_training_is_one_input_error_naming_it(folder):
    data = load_dataset(str(folder), batch_size=4, cache="none")
    assert streaming.list_class_folder(str(folder)).native == "uint8"
    broken = folder / data.items["train"][3]
    broken.write_bytes(broken.read_bytes()[:40])  # a PNG cut short after it was listed
    with pytest.raises(InputError, match=f"Image '{broken}' is unreadable .*while streaming"):
        with streaming.reading_files():
            _count(data.train)
    broken.unlink()
    with pytest.raises(InputError, match=f"File '{broken}' could not be read while streaming"):
        with streaming.reading_files():
            _count(data.train)


def test_streamed_training_files_are_reshuffled_each_epoch_and_reproducibly_by_seed():
    ds = streaming.epoch_order(50, seed=3)
    first, second = ([int(i) for i in ds] for _ in range(2))
    assert int(ds.cardinality()) == 50 and sorted(first) == sorted(second) == list(range(50))
    assert first != second and first != sorted(first)  # a new order each epoch
    assert [int(i) for i in streaming.epoch_order(50, seed=3)] == first
    assert [int(i) for i in streaming.epoch_order(50, seed=4)] != first


@pytest.mark.parametrize("cache", ["none", "disk"])
def test_each_file_keeps_its_label_in_every_epoch(folder, cache):
    data = load_dataset(str(folder), batch_size=5, cache=cache, validation_split=0, test_split=0)
    for _ in range(2):  # disk: decoded and written, then read back from the cache file
        for x, y in data.train:  # the classes differ in brightness: a (0-63), b (80-143), c (160-223)
            means = x.numpy().reshape(len(x), -1).mean(axis=1) * 255
            np.testing.assert_array_equal(np.digitize(means, [72, 152]), y.numpy())
