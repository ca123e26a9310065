import re
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


# ---------------------------------------------------------------- impossible data, refused up front (issue 9, class 3)


def _npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("labels", [np.full(20, 5), np.zeros(20, int), np.full(20, 3.0)])
def test_one_class_is_refused(tmp_path, labels):
    path = _npz(tmp_path, x=np.zeros((20, 3)), y=labels)
    with pytest.raises(ValueError, match=r"d\.npz' holds a single class \(every label is \d\)"):
        dli.load_dataset(path)


@pytest.mark.parametrize(
    "y, y_test, names",
    [
        (np.array([0, 10**6] * 10), None, ["0", "1000000"]),  # not 1,000,001 classes
        (np.array([5, 7, 9] * 7), None, ["5", "7", "9"]),  # not 10 classes, 0-4 empty
        (np.array([2, 4] * 10), np.array([4, 8, 2]), ["2", "4", "8"]),  # a label only in the test set
    ],
)
def test_labels_that_are_not_0_to_c_minus_1_are_mapped_with_a_warning(tmp_path, y, y_test, names):
    extra = {} if y_test is None else {"x_test": np.ones((len(y_test), 3)) * y_test[:, None], "y_test": y_test}
    path = _npz(tmp_path, x=np.ones((len(y), 3)) * y[:, None], y=y, **extra)
    with pytest.warns(UserWarning, match=r"d\.npz'.*not 0\.\.\d; they are mapped .* sorted order"):
        data = dli.load_dataset(path, validation_split=0.2, test_split=0.0 if extra else 0.2)
    assert data.num_classes == len(names) and data.class_names == names
    for split in ("train", "validation", "test"):
        x, labels = data.arrays[f"x_{split}"], data.arrays[f"y_{split}"]
        assert set(labels) <= set(range(len(names)))
        # each sample keeps its own class: the value written into x is the original label
        np.testing.assert_array_equal(np.array(names, float)[labels], x[:, 0])


def test_labels_0_to_c_minus_1_give_no_warning(tmp_path):
    import warnings

    path = _npz(tmp_path, x=np.zeros((20, 3)), y=np.arange(20) % 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dli.load_dataset(path).class_names == ["0", "1", "2", "3"]


@pytest.mark.parametrize(
    "x, expected_range, expected_max",
    [
        (np.full((20, 3), 65535, np.uint16), (0.0, 1.0), 1.0),  # uint16: by 65535, not 255
        (np.full((20, 3), 257, np.uint16), (0.0, 1.0), 257 / 65535),
        (np.arange(60).reshape(20, 3).astype(np.int64) * 100, (0.0, 5900.0), 5900.0),  # kept as it is
        (np.arange(-30, 30).reshape(20, 3).astype(np.int8), (-30.0, 29.0), 29.0),
        (np.arange(60).reshape(20, 3).astype(np.uint32), (0.0, 59.0), 59.0),
    ],
)
def test_integer_inputs_follow_the_documented_rule(tmp_path, x, expected_range, expected_max):
    data = dli.load_dataset(_npz(tmp_path, x=x, y=np.arange(20) % 2))
    assert data.value_range == expected_range
    everything = np.concatenate([data.arrays[f"x_{s}"] for s in ("train", "validation", "test")])
    assert everything.dtype == np.float32
    assert everything.max() == pytest.approx(expected_max, rel=1e-6)
    assert data.value_range[0] <= everything.min() and everything.max() <= data.value_range[1]


def test_float64_beyond_float32_is_refused_naming_the_array_and_value(tmp_path):
    x = np.ones((20, 3))
    x[4, 1] = -1e300
    with pytest.raises(ValueError, match=r"d\.npz': `x` holds values up to 1e\+300 .* float32's range"):
        dli.load_dataset(_npz(tmp_path, x=x, y=np.arange(20) % 2))
    path = _npz(tmp_path, "t.npz", x=np.ones((20, 3)), y=np.arange(20) % 2,
                x_test=np.full((4, 3), 1e39), y_test=np.arange(4) % 2)
    with pytest.raises(ValueError, match=r"`x_test` holds values up to 1e\+39"):
        dli.load_dataset(path)
    dli.load_dataset(_npz(tmp_path, "ok.npz", x=np.full((20, 3), 3e38), y=np.arange(20) % 2))  # within range


def test_x_and_x_test_scaled_differently_are_refused(tmp_path):
    path = _npz(tmp_path, x=np.zeros((20, 3), np.uint8), y=np.arange(20) % 2,
                x_test=np.zeros((4, 3), np.int64), y_test=np.arange(4) % 2)
    with pytest.raises(ValueError, match=r"`x` \(uint8\) and `x_test` \(int64\) would be scaled differently"):
        dli.load_dataset(path)


def test_16_bit_png_folder_keeps_every_grey_level(tmp_path):
    from PIL import Image

    gradient = (np.arange(16 * 16).reshape(16, 16) * 256).astype(np.uint16)  # 256 levels, 0..65280
    for name in ("dark", "light"):
        (tmp_path / "g" / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(gradient if name == "dark" else 65535 - gradient).save(tmp_path / "g" / name / f"{i}.png")
    assert Image.open(tmp_path / "g" / "dark" / "0.png").mode == "I;16"
    data = dli.load_dataset(str(tmp_path / "g"), validation_split=0.2, test_split=0.2)
    x = data.arrays["x_train"]
    assert data.value_range == (0.0, 1.0) and data.input_shape == (16, 16, 1)
    assert len(np.unique(x)) >= 256  # not two 8-bit levels
    dark = x[data.arrays["y_train"] == 0][0, ..., 0]
    np.testing.assert_allclose(dark, gradient / 65535.0, atol=1e-6)


def test_16_bit_and_8_bit_images_in_one_folder_share_a_scale(tmp_path):
    from PIL import Image

    # mid-grey in both: 128 of 255 in 8 bits, 128·257 of 65535 in 16 bits
    for name, array in (("wide", np.full((4, 4), 128 * 257, np.uint16)), ("narrow", np.full((4, 4), 128, np.uint8))):
        (tmp_path / "m" / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(array).save(tmp_path / "m" / name / f"{i}.png")
    data = dli.load_dataset(str(tmp_path / "m"), validation_split=0.2, test_split=0.2)
    x = data.arrays["x_train"]
    np.testing.assert_allclose(x, 128 / 255, rtol=1e-6)  # the same grey from both, not clipped to white


@pytest.mark.parametrize(
    "samples, kwargs, match",
    [
        (4, {}, r"'[^']*d\.npz' has 4 samples: validation_split=0\.1 gives 0 samples \(train/validation/test = 4/0/0\)"
                r"\. Use validation_split >= 0\.25"),
        (9, {"validation_split": 0.2, "test_split": 0.05}, r"9 samples: test_split=0\.05 gives 0 samples"),
    ],
)
def test_data_too_small_to_split_is_refused(tmp_path, samples, kwargs, match):
    path = _npz(tmp_path, x=np.zeros((samples, 3)), y=np.arange(samples) % 2)
    with pytest.raises(ValueError, match=match):
        dli.load_dataset(path, **kwargs)
    assert dli.load_dataset(path, validation_split=0.0, test_split=0.0).num_train == samples  # what the message offers


# ---------------------------------------------------------------- messages that name the user's argument or file (class 5)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0"])
def test_bad_seed_is_named_as_seed_not_random_state(seed):
    with pytest.raises(ValueError, match=r"`seed` must be an integer.*Received: seed=") as info:
        dli.load_dataset("digits", seed=seed)
    assert "random_state" not in str(info.value)


def test_seed_at_the_top_of_the_range_works():
    assert dli.load_dataset("digits", seed=2**32 - 1).num_train == 1437


def test_train_names_a_bad_seed_before_writing(tmp_path):
    from dlimaging.training import train

    with pytest.raises(ValueError, match=r"`seed` must be an integer in \[0, 4294967295\]. Received: seed=-1"):
        train("digits", seed=-1, output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_npy_and_capitals_and_other_files(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((10, 3)))
    with pytest.raises(ValueError, match=r"x\.npy': a \.npy file holds one array; save `x` and `y` together with "
                                         r"numpy\.savez as a \.npz"):
        dli.load_dataset(str(tmp_path / "x.npy"))
    (tmp_path / "x.txt").write_text("1,2\n")
    with pytest.raises(ValueError, match=r"x\.txt' is a file dlimaging cannot read; expected one of: .*PATH\.npz"):
        dli.load_dataset(str(tmp_path / "x.txt"))
    with open(tmp_path / "UPPER.NPZ", "wb") as handle:
        np.savez(handle, x=np.zeros((10, 3)), y=np.arange(10) % 2)
    assert dli.load_dataset(str(tmp_path / "UPPER.NPZ"), test_split=0.2, validation_split=0.2).num_train == 6


@pytest.mark.parametrize("x, what", [(np.zeros((10, 0)), "empty"), (np.zeros((10, 4, 0)), "empty"),
                                     (np.zeros(10), "a single number")])
def test_samples_without_values_are_refused_naming_x(tmp_path, x, what):
    with pytest.raises(ValueError, match=rf"d\.npz': `x` has shape {re.escape(str(x.shape))}, so each sample is {what}"):
        dli.load_dataset(_npz(tmp_path, x=x, y=np.arange(10) % 2))
