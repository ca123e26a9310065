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


@pytest.mark.parametrize("y, task, match", [
    # 1e20 read as int64 was -9223372036854775808, a third class
    (np.array([0.0, 1e20] * 10), None, r"`y` holds the label 1e\+20; class labels must be integers from 0 to 2\*\*53 "
                                       r"\(9\.007e\+15\).* pass task='regression'"),
    (np.array([0, 1] * 10) + 1j, None, r"`y` holds complex numbers; labels and targets must be real \(the imaginary "
                                       r"part would be lost\)\. Received dtype complex128"),
    (np.array([0.5, 1.5] * 10) + 0j, "regression", r"`y` holds complex numbers"),
    (np.array([0, 1] * 10) + 0j, "binary", r"`y` holds complex numbers"),
])
def test_labels_that_cannot_be_read_faithfully_are_refused(tmp_path, y, task, match):
    """Issue 21: no silently wrong labels: a huge class label is not wrapped, an imaginary part not dropped."""
    path = _npz(tmp_path, x=np.zeros((len(y), 3)), y=y)
    with pytest.raises(ValueError, match=r"d\.npz': " + match):
        dli.load_dataset(path, task=task)
    if task is None and y.dtype == np.float64:
        assert dli.load_dataset(path, task="regression").arrays["y_train"].max() == np.float32(1e20)


def test_a_warning_followed_by_an_error_is_just_the_error(tmp_path):
    """Issue 21, class 5: the warnings of loading (labels mapped, a text column left out) are given
    only when the data loads; when an error follows, the error alone is said."""
    import warnings

    csv_path = _csv(tmp_path, "sample,y,400,402\ns0,1,2,3\ns1,2,abc,4\n")
    npz_path = _npz(tmp_path, x=np.zeros((20, 3)), y=np.array([0, 10**6] * 10))
    for path, kwargs, match in ((csv_path, {"target": "y"}, r"row 3, column '400': 'abc' is not a number"),
                                (npz_path, {"validation_split": 0.01}, r"validation_split=0\.01 gives 0 samples")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ValueError, match=match):
                dli.load_dataset(path, **kwargs)
        assert [str(w.message) for w in caught] == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dli.load_dataset(npz_path)
    assert [w.filename for w in caught] == [__file__]  # once, from the caller's line
    assert "its 2 labels (0, 1000000) are not 0..1; they are mapped to 0..1" in str(caught[0].message)


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
    x, y = (np.concatenate(parts) for parts in zip(*data.train.as_numpy_iterator()))  # streamed: no arrays
    assert data.value_range == (0.0, 1.0) and data.input_shape == (16, 16, 1)
    assert len(np.unique(x)) >= 256  # not two 8-bit levels
    dark = x[y == 0][0, ..., 0]
    np.testing.assert_allclose(dark, gradient / 65535.0, atol=1e-6)


def test_16_bit_and_8_bit_images_in_one_folder_share_a_scale(tmp_path):
    from PIL import Image

    # mid-grey in both: 128 of 255 in 8 bits, 128·257 of 65535 in 16 bits
    for name, array in (("wide", np.full((4, 4), 128 * 257, np.uint16)), ("narrow", np.full((4, 4), 128, np.uint8))):
        (tmp_path / "m" / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(array).save(tmp_path / "m" / name / f"{i}.png")
    data = dli.load_dataset(str(tmp_path / "m"), validation_split=0.2, test_split=0.2)
    x = np.concatenate([batch for batch, _ in data.train.as_numpy_iterator()])  # streamed: no arrays
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


# ---------------------------------------------------------------- tasks: read from the labels, or declared and checked (issue 10)


def _labels_of(data):
    return np.concatenate([data.arrays[f"y_{s}"] for s in ("train", "validation", "test")])


@pytest.mark.parametrize(
    "y, task, shape, num_classes, num_outputs",
    [
        (np.arange(40) % 3, "classification", (40,), 3, 1),
        (np.arange(40) % 3 + 0.0, "classification", (40,), 3, 1),  # integral floats are class ids
        (np.linspace(0.5, 7.25, 40), "regression", (40, 1), None, 1),
        (np.linspace(0.5, 7.25, 80).reshape(40, 2), "regression", (40, 2), None, 2),
        (np.arange(120).reshape(40, 3) % 7, "regression", (40, 3), None, 3),  # integers, not 0/1: numbers
        ((np.arange(120).reshape(40, 3) % 5 == 0).astype(int), "multilabel", (40, 3), 3, 1),
    ],
)
def test_the_task_is_read_from_the_labels(tmp_path, y, task, shape, num_classes, num_outputs):
    from dlimaging import registry

    data = dli.load_dataset(_npz(tmp_path, x=np.arange(200.0).reshape(40, 5), y=y))
    assert data.task == task
    labels = _labels_of(data)
    entry = registry.TASKS[task]
    assert labels.dtype == np.dtype(entry.label_dtype) and labels.ndim == entry.label_rank
    assert labels.shape == shape
    assert (data.num_classes, data.num_outputs) == (num_classes, num_outputs)
    assert data.arrays["y_train"].dtype == np.dtype(entry.label_dtype)
    _, y_train = _all(data.train)
    assert y_train.dtype == np.dtype(entry.label_dtype) and y_train.shape[1:] == shape[1:]
    # every value survives, whatever the dtype
    np.testing.assert_allclose(np.sort(labels.reshape(-1)), np.sort(np.asarray(y, float).reshape(-1)), rtol=1e-6)


def test_regression_bundle_names_its_targets_and_has_no_classes(tmp_path):
    data = dli.load_dataset(_npz(tmp_path, x=np.zeros((40, 5)), y=np.linspace(0, 1, 80).reshape(40, 2)))
    assert data.class_names == [] and data.num_classes is None
    assert data.target_names == ["y1", "y2"] and data.num_outputs == 2
    assert "regression" in data.summary()


def test_binary_maps_two_classes_to_0_1_and_keeps_their_names(tmp_path):
    y = np.array([3, 8] * 20)
    with pytest.warns(UserWarning, match="mapped"):
        data = dli.load_dataset(_npz(tmp_path, x=y[:, None] * np.ones((40, 4)), y=y), task="binary")
    assert data.task == "binary" and data.class_names == ["3", "8"] and data.num_classes == 2
    labels, xs = data.arrays["y_train"], data.arrays["x_train"]
    assert labels.dtype == np.float32 and labels.shape == (data.num_train, 1)
    np.testing.assert_array_equal(labels[:, 0], (xs[:, 0] == 8).astype("float32"))  # 8 became 1
    # stratified like classification: both classes in the validation split
    assert set(data.arrays["y_validation"][:, 0]) == {0.0, 1.0}


def test_regression_declared_on_integer_labels_gives_float_targets(tmp_path):
    data = dli.load_dataset(_npz(tmp_path, x=np.zeros((40, 3)), y=np.arange(40)), task="regression")
    assert data.arrays["y_train"].dtype == np.float32 and data.arrays["y_train"].shape == (data.num_train, 1)
    assert data.target_names == ["y"]


@pytest.mark.parametrize(
    "y, task, match",
    [
        (np.linspace(0, 1, 40), "classification",
         r"task='classification' needs integer class labels, one per sample; `y` holds dtype float64, shape \(40,\), "
         r"e\.g\. \[0\.0, 0\.02564"),
        (np.arange(40) % 3, "binary", r"task='binary' needs two classes; the labels hold 3 \(0, 1, 2\)"),
        (np.zeros(40, int), "binary", r"single class"),
        (np.arange(40) % 2, "multilabel", r"task='multilabel' needs 0/1 targets of shape \(N, K\); `y` holds dtype int64, "
                                          r"shape \(40,\)"),
        (np.arange(80).reshape(40, 2) % 3, "multilabel", r"task='multilabel' needs 0/1 targets, one column per label; "
                                                         r"`y` holds dtype int64, shape \(40, 2\), e\.g\. \[0, 1, 2, 0\]"),
        (np.array(["a", "b"] * 20), "regression", r"task='regression' needs numeric targets.*dtype <U1"),
        (np.array(["a", "b"] * 20), None, r"`y` must hold numbers: integer class labels, 0/1 labels or numeric targets"),
        (np.r_[np.linspace(0, 1, 39), np.nan], "regression", r"`y` holds 1 NaN or inf value\(s\)"),
        (np.r_[np.linspace(0, 1, 39), np.inf], None, r"`y` holds 1 NaN or inf value\(s\)"),
        (np.zeros((40, 2, 2)), None, r"`y` must be one label per sample \(N,\) or one row of targets"),
    ],
)
def test_labels_that_do_not_fit_the_task_are_refused_naming_both(tmp_path, y, task, match):
    path = _npz(tmp_path, x=np.zeros((40, 3)), y=y)
    with pytest.raises(ValueError, match=r"d\.npz'.*" + match):
        dli.load_dataset(path, task=task)


def test_a_folder_is_not_regression(tmp_path):
    root = _write_folder(tmp_path / "f")
    with pytest.raises(ValueError, match=r"task='regression' needs numeric targets, but its labels are classes "
                                         r"or text \(cat, dog\)"):
        dli.load_dataset(str(root), task="regression")


def test_unknown_task_and_csv_options_elsewhere_are_refused():
    with pytest.raises(ValueError, match=r"`task` must be one of 'classification'.*Received: task='ranking'"):
        dli.load_dataset("digits", task="ranking")
    with pytest.raises(ValueError, match=r"`target` applies to PATH\.csv sources, not to `source` 'digits'. "
                                         r"Received: target='y'"):
        dli.load_dataset("digits", target="y")
    with pytest.raises(ValueError, match=r"`test` applies to PATH\.csv sources"):
        dli.load_dataset("digits", test="t.csv")


# ---------------------------------------------------------------- CSV files


def _csv(tmp_path, text, name="s.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _spectra_csv(tmp_path, rows=30, name="s.csv", target_values=None):
    rng = np.random.default_rng(1)
    lines = ["sample,glucose,ethanol,1000.5,1002,1004"]
    for i in range(rows):
        glucose = target_values[i] if target_values is not None else round(float(rng.uniform(0, 10)), 3)
        lines.append(f"s{i},{glucose},{i % 4 * 0.5},{i},{i + 0.25},{-i}")
    return _csv(tmp_path, "\n".join(lines) + "\n", name)


def test_csv_regression_signal_axis_and_targets(tmp_path):
    path = _spectra_csv(tmp_path)
    with pytest.warns(UserWarning, match=r"the column\(s\) \['sample'\] hold no numbers and are left out"):
        data = dli.load_dataset(path, target="glucose", validation_split=0.2, test_split=0.2)
    assert data.task == "regression" and data.name == "s"
    assert data.input_shape == (4, 1)  # ethanol, 1000.5, 1002, 1004: every other numeric column, in file order
    assert data.feature_names == ["ethanol", "1000.5", "1002", "1004"] and data.axis is None
    assert data.target_names == ["glucose"] and data.num_outputs == 1 and data.num_classes is None
    x, y = data.arrays["x_train"], data.arrays["y_train"]
    assert x.dtype == np.float32 and y.dtype == np.float32 and y.shape == (data.num_train, 1)
    # each row stays whole: column 1000.5 holds the row number i, 1002 holds i + 0.25, 1004 holds -i
    np.testing.assert_allclose(x[:, 2, 0], x[:, 1, 0] + 0.25)
    np.testing.assert_allclose(x[:, 3, 0], -x[:, 1, 0])
    assert data.num_train + data.num_validation + data.num_test == 30


def test_csv_numeric_header_becomes_the_axis_and_features_select(tmp_path):
    path = _spectra_csv(tmp_path)
    data = dli.load_dataset(path, target=["glucose", "ethanol"], features=["1004", "1000.5"])
    assert data.axis == [1004.0, 1000.5] and data.feature_names == ["1004", "1000.5"]
    assert data.input_shape == (2, 1)
    assert data.target_names == ["glucose", "ethanol"] and data.num_outputs == 2
    x = data.arrays["x_train"]
    np.testing.assert_allclose(x[:, 0, 0], -x[:, 1, 0])  # in the order asked for


def test_csv_integer_target_with_few_values_is_classification(tmp_path):
    data = dli.load_dataset(_spectra_csv(tmp_path, target_values=[i % 3 for i in range(30)]), target="glucose",
                            features=["1002", "1004"])
    assert data.task == "classification" and data.class_names == ["0", "1", "2"]
    assert data.arrays["y_train"].dtype == np.int64
    many = dli.load_dataset(_spectra_csv(tmp_path, name="m.csv", target_values=list(range(30))), target="glucose",
                            features=["1002"])
    assert many.task == "regression"  # 30 distinct integers: a quantity, not 30 classes


def test_csv_text_labels_are_classes(tmp_path):
    labels = ["low", "high", "mid"] * 10
    path = _spectra_csv(tmp_path, target_values=labels)
    data = dli.load_dataset(path, target="glucose", features=["1000.5", "1002"])
    assert data.task == "classification" and data.class_names == ["high", "low", "mid"]
    x, y = data.arrays["x_train"], data.arrays["y_train"]
    rows = x[:, 0, 0].astype(int)  # column 1000.5 holds the row number
    np.testing.assert_array_equal(np.array(data.class_names)[y], np.array(labels)[rows])
    with pytest.raises(ValueError, match=r"s\.csv': task='regression' needs numeric targets, but its labels are "
                                         r"classes or text \(high, low, mid\)"):
        dli.load_dataset(path, target="glucose", features=["1002"], task="regression")


def test_csv_multilabel_and_binary_targets(tmp_path):
    lines = ["a,b,x1,x2"] + [f"{i % 2},{i // 2 % 2},{i},{i * 2}" for i in range(24)]
    path = _csv(tmp_path, "\n".join(lines))
    data = dli.load_dataset(path, target=["a", "b"])
    assert data.task == "multilabel" and data.class_names == ["a", "b"] and data.num_classes == 2
    assert data.arrays["y_train"].shape == (data.num_train, 2) and data.arrays["y_train"].dtype == np.float32
    binary = dli.load_dataset(path, target="a", task="binary")
    assert binary.arrays["y_train"].shape == (binary.num_train, 1) and binary.class_names == ["0", "1"]
    with pytest.raises(ValueError, match=r"task='multilabel' needs 0/1 targets, one column per label; "
                                         r"`target`=\['a', 'x1'\] holds"):
        dli.load_dataset(path, target=["a", "x1"], task="multilabel")


def test_csv_with_a_separate_test_file(tmp_path):
    train = _spectra_csv(tmp_path, rows=30)
    test = _spectra_csv(tmp_path, rows=7, name="t.csv")
    data = dli.load_dataset(train, target="glucose", features=["1002", "1004"], test=test, validation_split=0.2)
    assert (data.num_train, data.num_validation, data.num_test) == (24, 6, 7)
    _csv(tmp_path, "glucose,1002\n1.5,3\n", "short.csv")
    with pytest.raises(ValueError, match=r"`test` '[^']*short\.csv' lacks the column\(s\) \['1004'\] of `source`"):
        dli.load_dataset(train, target="glucose", features=["1002", "1004"], test=str(tmp_path / "short.csv"))
    _csv(tmp_path, "glucose,1002,1004\n1.5,3,x\n", "bad.csv")
    with pytest.raises(ValueError, match=r"`test` '[^']*bad\.csv', row 2, column '1004': 'x' is not a number"):
        dli.load_dataset(train, target="glucose", features=["1002", "1004"], test=str(tmp_path / "bad.csv"))


def test_csv_numeric_column_names_are_matched_by_value(tmp_path):
    """Issue 21: `1002.0` names the column `1002`, in `features`, `target` and a test file's header."""
    train = _spectra_csv(tmp_path, rows=30)  # header: sample,glucose,ethanol,1000.5,1002,1004
    _csv(tmp_path, "1004.000,glucose,1.0005e3,1002.0\n-1,2.5,1,1.25\n-2,3.5,2,2.25\n", "t.csv")
    data = dli.load_dataset(train, target="glucose", features=["1002.0", "1.0005e3"], test=str(tmp_path / "t.csv"))
    assert data.feature_names == ["1002", "1000.5"] and data.axis == [1002.0, 1000.5]  # as the header spells them
    np.testing.assert_array_equal(data.arrays["x_test"][..., 0], [[1.25, 1], [2.25, 2]])
    np.testing.assert_array_equal(data.arrays["y_test"][:, 0], [2.5, 3.5])
    with pytest.raises(ValueError, match=r"`features` names \['1002'\] more than once"):
        dli.load_dataset(train, target="glucose", features=["1002", "1002.0"])


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        ("1.0,2.0,3.0\n4.0,5.0,6.0\n", {"target": "y"},
         r"s\.csv' needs a header row: its first row is all numbers \(1\.0, 2\.0, 3\.0\)"),
        ("y,400,402\n1,2,3\n", {"target": "glucose"},
         r"`target`='glucose' is not a column of '[^']*s\.csv'; its 3 columns are: y, 400, 402\."),
        ("y,400,402\n1,2,3\n", {"target": ["y", "ethanol"]}, r"`target`='ethanol' is not a column"),
        ("y,400,402\n1,2,3\n", {"target": "y", "features": ["400", "404"]}, r"`features`='404' is not a column"),
        ("y,400,402\n1,2,3\n", {"target": "y", "features": ["y", "400"]}, r"`features` and `target` both name \['y'\]"),
        ("y,400,402\n1,2,3\n", {}, r"s\.csv' is a CSV file: `target` must name its target column\(s\) "
                                   r"\(its columns: y, 400, 402\)\. Received: target=None"),
        ("y,400,402\n1,2,3\n", {"target": 3}, r"`target` must be a column name or a list of column names"),
        ("y,400,402\n1,2,3\n2,3,abc\n", {"target": "y"}, r"s\.csv', row 3, column '402': 'abc' is not a number\."),
        ("y,400,402\n1,2,3\n2,,4\n", {"target": "y"}, r"s\.csv', row 3, column '400': is empty\."),
        ("y,400,402\n1,2,3\n2,3\n", {"target": "y"}, r"s\.csv', row 3: 2 cells, but the header has 3 columns\."),
        ("y,400,402\n1,2,3\n2,3,4,5\n", {"target": "y"}, r"row 3: 4 cells"),
        ("y,400,402\n1,2,3\n2,nan,4\n", {"target": "y"},
         r"s\.csv', row 3, column '400': 'nan' is NaN or infinite; every value must be a finite number\."),
        ("y,400,402\n1,2,3\n-inf,3,4\n", {"target": "y"}, r"row 3, column 'y': '-inf' is NaN or infinite"),
        ("y,400,402\n1,2,3\nx,3,4\n", {"target": "y"}, r"row 3, column 'y': 'x' is not a number"),
        ("y,400,400\n1,2,3\n", {"target": "y"}, r"the header names column\(s\) \['400'\] more than once"),
        ("y,400,400.0\n1,2,3\n", {"target": "y"}, r"the header names column\(s\) \['400', '400\.0'\] more than once"),
        ("y,,402\n1,2,3\n", {"target": "y"}, r"column 2 of the header row has no name"),
        ("y,400,402\n", {"target": "y"}, r"has a header row but no data rows"),
        ("", {"target": "y"}, r"s\.csv' is empty"),
        ("y,name\n1,a\n2,b\n", {"target": "y"}, r"no numeric column besides the target \['y'\]"),
    ],
)
def test_bad_csv_is_refused_naming_file_argument_and_value(tmp_path, text, kwargs, match):
    path = _csv(tmp_path, text)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=match):
        dli.load_dataset(path, **kwargs)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_missing_csv_file(tmp_path):
    with pytest.raises(ValueError, match=r"`source` '[^']*nope\.csv': no such CSV file"):
        dli.load_dataset(str(tmp_path / "nope.csv"), target="y")


# ---------------------------------------------------------------- spectra: coffee (real, offline) and the generator


def test_coffee_loads_offline_through_chemotools():
    data = dli.load_dataset("coffee", seed=0)
    assert data.input_shape == (1841, 1) and data.task == "classification"
    assert data.num_classes == 3 and data.class_names == ["Brasil", "Ethiopia", "Vietnam"]
    assert (data.num_train, data.num_validation, data.num_test) == (48, 6, 6)
    for split in ("validation", "test"):  # stratified: two of each origin
        np.testing.assert_array_equal(np.bincount(data.arrays[f"y_{split}"]), [2, 2, 2])
    from chemotools.datasets import load_coffee

    spectra, labels = load_coffee()
    everything = np.concatenate([data.arrays[f"x_{s}"] for s in ("train", "validation", "test")])[..., 0]
    assert _rows(everything) == _rows(spectra.to_numpy("float32"))


def test_spectra_defaults_regression_on_the_concentrations():
    data = dli.load_dataset("spectra")
    assert data.task == "regression" and data.input_shape == (256, 1)
    assert (data.num_train + data.num_validation, data.num_test) == (2000, 500)
    assert data.target_names == ["c1", "c2", "c3"] and data.num_outputs == 3 and data.class_names == []
    assert len(data.axis) == 256 and data.axis[0] == 4000.0 and data.axis[-1] == 400.0
    assert data.axis_name.startswith("wavenumber")
    y = data.arrays["y_test"]
    assert y.dtype == np.float32 and y.shape == (500, 3)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    assert not _rows(data.arrays["x_test"]) & _rows(data.arrays["x_train"])


def test_spectra_options_task_and_reproducibility():
    source = "spectra:components=4,difficulty=hard,samples=300,test_samples=40,length=64"
    a = dli.load_dataset(source, task="classification")
    b = dli.load_dataset(source, task="classification")
    assert a.input_shape == (64, 1) and a.num_test == 40 and a.num_train + a.num_validation == 300
    assert a.task == "classification" and a.class_names == ["c1", "c2", "c3", "c4"]
    assert a.arrays["y_train"].dtype == np.int64
    np.testing.assert_array_equal(a.arrays["x_train"], b.arrays["x_train"])
    c = dli.load_dataset(source + ",seed=1", task="classification")
    assert not np.array_equal(a.arrays["x_test"], c.arrays["x_test"])


@pytest.mark.parametrize(
    "source, match",
    [
        ("spectra:peaks=3", r"`source` 'spectra:peaks=3': unknown option 'peaks'; the options are samples=2000"),
        ("spectra:components=many", r"option components must be an integer. Received: components='many'"),
        ("spectra:components=1", r"`source` 'spectra:components=1': `components` must be an integer in \[2, 16\]"),
        ("spectra:difficulty=extreme", r"`difficulty` must be one of 'easy', 'medium', 'hard'. Received: "
                                       r"difficulty='extreme'"),
        ("spectra:samples", r"option 'samples' needs a value"),
    ],
)
def test_bad_spectra_options_name_the_option(source, match):
    with pytest.raises(ValueError, match=match):
        dli.load_dataset(source)


def test_list_datasets_holds_the_spectra_sources():
    listing = dli.list_datasets()
    assert {"coffee", "spectra", "spectra:OPTIONS", "PATH.csv"} <= set(listing)
