import numpy as np
import pytest

import dlimaging as dli


def _all(ds):
    xs, ys = [], []
    for x, y in ds:
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def _rows(x):
    return {row.tobytes() for row in x.reshape(len(x), -1)}


# ---------------------------------------------------------------- built-ins


def test_digits():
    data = dli.load_dataset("digits", batch_size=64, seed=0)
    assert data.input_shape == (8, 8, 1)
    assert data.num_classes == 10 and data.class_names == [str(i) for i in range(10)]
    assert data.num_train + data.num_validation + data.num_test == 1797
    assert (data.num_validation, data.num_test) == (180, 180)
    x, y = _all(data.train)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.9
    assert len(x) == data.num_train
    assert next(iter(data.train))[0].shape == (64, 8, 8, 1)


def test_mnist1d_keeps_the_papers_test_set():
    data = dli.load_dataset("mnist1d", seed=0)
    assert data.input_shape == (40, 1)
    assert data.num_test == 1000
    assert data.num_train + data.num_validation == 4000
    assert data.num_validation == 400
    from mnist1d.data import get_dataset_args, make_dataset

    reference = make_dataset(get_dataset_args())
    x_test, y_test = _all(data.test)
    np.testing.assert_allclose(x_test[..., 0], reference["x_test"], rtol=1e-6)
    np.testing.assert_array_equal(y_test, reference["y_test"])
    assert np.all(np.isfinite(x_test))


def test_splits_are_disjoint_stratified_and_reproducible():
    a = dli.load_dataset("digits", seed=3)
    b = dli.load_dataset("digits", seed=3)
    c = dli.load_dataset("digits", seed=4)
    parts = [_all(getattr(a, split)) for split in ("train", "validation", "test")]
    rows = [_rows(x) for x, _ in parts]
    assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])
    # Stratified: each class holds the same share (±1 sample) of every split.
    _, y_val = parts[1]
    counts = np.bincount(y_val, minlength=10)
    assert counts.max() - counts.min() <= 2
    np.testing.assert_array_equal(_all(a.test)[0], _all(b.test)[0])
    assert _rows(_all(a.test)[0]) != _rows(_all(c.test)[0])


def test_train_is_reshuffled_each_epoch_and_others_are_not():
    data = dli.load_dataset("digits", batch_size=2000)
    first = next(iter(data.train))[1].numpy()
    second = next(iter(data.train))[1].numpy()
    assert sorted(first) == sorted(second) and not np.array_equal(first, second)
    v1 = next(iter(data.validation))[1].numpy()
    v2 = next(iter(data.validation))[1].numpy()
    np.testing.assert_array_equal(v1, v2)


def test_no_validation_split():
    data = dli.load_dataset("digits", validation_split=0.0)
    assert data.validation is None and data.num_validation == 0


def test_list_datasets():
    listing = dli.list_datasets()
    assert {"digits", "mnist1d"} <= set(listing)
    assert all(isinstance(v, str) and v for v in listing.values())


# ---------------------------------------------------------------- tfds (mocked, offline)


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_tfds_with_mock_data(name, shape):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=30):
        data = dli.load_dataset(f"tfds:{name}", validation_split=0.2, batch_size=8)
    assert data.input_shape == shape
    assert data.num_classes == 10
    assert data.num_test == 30  # the set's own test split
    assert data.num_train + data.num_validation == 30
    x, _ = _all(data.train)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0


def test_tfds_unknown_name():
    with pytest.raises(ValueError, match="TensorFlow Datasets has no dataset 'not_a_dataset_xyz'"):
        dli.load_dataset("tfds:not_a_dataset_xyz")


# ---------------------------------------------------------------- folders


def _write_folder(root, classes=("cat", "dog"), per_class=6, size=(10, 12), mode="L"):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            shape = size if mode == "L" else size + (3,)
            array = rng.integers(0, 255, shape, dtype=np.uint8)
            suffix = ["png", "jpg", "bmp", "gif"][i % 4]
            Image.fromarray(array, mode).save(root / c / f"{i}.{suffix}")
    return root


def test_image_folder(tmp_path):
    root = _write_folder(tmp_path / "shapes")
    data = dli.load_dataset(str(root), validation_split=0.25, test_split=0.25)
    assert data.input_shape == (10, 12, 1)
    assert data.class_names == ["cat", "dog"] and data.name == "shapes"
    assert data.num_train + data.num_validation + data.num_test == 12


def test_image_folder_rgb_resized(tmp_path):
    root = _write_folder(tmp_path / "rgb", mode="RGB", size=(20, 20))
    data = dli.load_dataset(str(root), image_size=(8, 6))
    assert data.input_shape == (8, 6, 3)
    x, _ = _all(data.train)
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_corrupt_image_is_skipped_with_a_warning(tmp_path):
    root = _write_folder(tmp_path / "d")
    (root / "cat" / "broken.png").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match=r"broken\.png"):
        data = dli.load_dataset(str(root))
    assert data.num_train + data.num_validation + data.num_test == 12


def test_folder_errors(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match="without class sub-folders"):
        dli.load_dataset(str(tmp_path / "flat"))
    root = _write_folder(tmp_path / "e")
    (root / "empty").mkdir()
    with pytest.raises(ValueError, match="class folder 'empty' holds no readable image"):
        dli.load_dataset(str(root))


# ---------------------------------------------------------------- npz


def test_npz_with_own_test_set(tmp_path, rng):
    path = tmp_path / "spectra.npz"
    np.savez(path, x=rng.normal(size=(50, 30, 1)).astype("float32"), y=np.arange(50) % 3,
             x_test=rng.normal(size=(9, 30, 1)), y_test=np.arange(9) % 3)
    data = dli.load_dataset(str(path), validation_split=0.2)
    assert data.input_shape == (30, 1) and data.num_classes == 3
    assert (data.num_train, data.num_validation, data.num_test) == (40, 10, 9)


def test_npz_uint8_images_are_scaled(tmp_path, rng):
    path = tmp_path / "imgs.npz"
    np.savez(path, x=rng.integers(0, 256, (40, 6, 6), dtype=np.uint8), y=np.arange(40) % 2)
    data = dli.load_dataset(str(path))
    assert data.input_shape == (6, 6, 1)
    x, _ = _all(data.train)
    assert x.dtype == np.float32 and x.max() <= 1.0 and x.max() > 0.9


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"x": np.zeros((5, 4)), "y": np.zeros(4, int)}, "`x` and `y` have different lengths \\(5 and 4\\)"),
        ({"x": np.array([[np.nan, 1.0]] * 10), "y": np.arange(10) % 2}, "NaN or inf"),
        ({"x": np.array([[np.inf, 1.0]] * 10), "y": np.arange(10) % 2}, "NaN or inf"),
        ({"x": np.zeros((10, 2)), "y": np.linspace(0, 1, 10)}, "integer class labels"),
        ({"x": np.zeros((10, 2)), "y": np.array(["a"] * 10)}, "integer class labels"),
        ({"y": np.zeros(4, int)}, r"lacks the array\(s\) \['x'\]"),
        ({"x": np.zeros((10, 2)), "y": np.zeros(10, int), "x_test": np.zeros((2, 2))}, "only one of"),
    ],
)
def test_npz_errors(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=match):
        dli.load_dataset(str(path))


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "source, kwargs, match",
    [
        ("mnist2d", {}, "'mnist2d' is not a known dataset. Built-ins: digits, mnist1d"),
        ("/no/such/folder", {}, "no such file or folder"),
        ("missing.npz", {}, "no such .npz file"),
        ("digits", {"validation_split": 0.5, "test_split": 0.5}, "leave training data"),
        ("digits", {"validation_split": 1.2}, "Received: validation_split=1.2"),
        ("digits", {"test_split": -0.1}, "Received: test_split=-0.1"),
        ("digits", {"batch_size": 0}, "Received: batch_size=0"),
        ("digits", {"image_size": (8,)}, "Received: image_size=\\(8,\\)"),
        (42, {}, "Received: source=42"),
    ],
)
def test_bad_arguments(source, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dli.load_dataset(source, **kwargs)


def test_tfds_can_prepare_datasets():
    # tensorflow-datasets imports this backport when it downloads and prepares a set; without it
    # every `tfds:` source fails on first use with "No module named 'importlib_resources'".
    import importlib.util

    assert importlib.util.find_spec("importlib_resources") is not None
    from tensorflow_datasets.core import dataset_builder

    assert dataset_builder.importlib_resources.files("tensorflow_datasets").is_dir()
