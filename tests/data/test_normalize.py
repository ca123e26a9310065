"""Percentile normalisation: each image by its own percentiles; a restoration's target by its input's."""

import numpy as np
import pytest
import tifffile

import dlimaging as dli
from dlimaging.data.normalize import (
    check_normalize,
    denormalize,
    normalize_array,
    normalize_tensor,
    predict_normalized,
)
from dlimaging.errors import InputError


def test_check_normalize_accepts_modes_and_bounds_and_refuses_the_rest():
    assert check_normalize("dtype") is None and check_normalize(None) is None
    assert check_normalize("percentile") == (1.0, 99.8)
    assert check_normalize("percentile:0.5,99") == (0.5, 99.0)
    for bad in ("minmax", "percentile:99,1", "percentile:1", "percentile:a,b", "percentile:-1,50",
                "percentile:1,101", "dtype:1,2", 3):
        with pytest.raises(InputError, match=r"normalize.*Received: normalize="):
            check_normalize(bad)


def test_each_image_maps_its_own_percentiles_and_back():
    rng = np.random.default_rng(0)
    x = np.stack([rng.random((16, 16, 1)) * 100 + 5, rng.random((16, 16, 1)) * 2]).astype("float32")
    y, (low, high) = normalize_array(x, (1.0, 99.8))
    for sample, image in zip(y, x):
        lo, hi = np.percentile(image, [1.0, 99.8])
        np.testing.assert_allclose(sample, (image - lo) / (hi - lo), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(denormalize(y, low, high), x, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(normalize_tensor(x, (1.0, 99.8)).numpy(), y, atol=1e-5)  # as inside tf.data
    # predict: the model sees normalised values, its output comes back in the input's units
    back = predict_normalized(lambda batch: {"restored": batch}, x, "percentile:1,99.8", "restored", back=True)
    np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-4)
    assert np.array_equal(predict_normalized(lambda b: {"k": b * 2}, x, "dtype", "k", back=True), x * 2)


def test_pairs_target_takes_the_inputs_percentiles(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(3):
        high = (rng.random((16, 16)) * 20000 + 1000).astype("uint16")
        for kind, image in (("low", high // 4), ("high", high)):
            (tmp_path / kind).mkdir(exist_ok=True)
            tifffile.imwrite(tmp_path / kind / f"{i}.tif", image, photometric="minisblack")
    data = dli.load_dataset(str(tmp_path), task="restoration", normalize="percentile", patch_size=16,
                            validation_split=0.34, test_split=0)
    assert data.normalize == "percentile:1,99.8"
    x, y = data.arrays["x_validation"][0], data.arrays["y_validation"][0]
    assert np.percentile(x, 1) == pytest.approx(0, abs=1e-5) and np.percentile(x, 99.8) == pytest.approx(1, abs=1e-5)
    name = data.items["validation"][0]
    low, high = (tifffile.imread(tmp_path / kind / f"{name}.tif") / 65535 for kind in ("low", "high"))
    p1, p998 = np.percentile(low, [1, 99.8])
    np.testing.assert_allclose(y[..., 0], (high - p1) / (p998 - p1), rtol=1e-4)  # the low image's percentiles
    assert y.max() > 3  # the high image is 4 times brighter: it stays so
    assert data.max_val == pytest.approx(float(max(y.max(), data.arrays["y_train"].max())), rel=0.1)


def test_class_folders_and_restoration_sources_are_normalised_signals_refused(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(4):
            tifffile.imwrite(tmp_path / c / f"{i}.tif", np.arange(64, dtype="uint16").reshape(8, 8) * (i + 1))
    data = dli.load_dataset(str(tmp_path), normalize="percentile:0,100", validation_split=0.25, test_split=0.25)
    x, _ = next(iter(data.train))
    assert data.normalize == "percentile:0,100"
    np.testing.assert_allclose(x.numpy().min(axis=(1, 2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(x.numpy().max(axis=(1, 2, 3)), 1, atol=1e-6)
    noisy = dli.load_dataset("blobs3d:count=3,size=8", task="restoration", normalize="percentile", patch_size=8,
                             corruption={"kind": "gaussian", "sigma": 0.1}, validation_split=0.34, test_split=0)
    clean = noisy.arrays["y_validation"][0]
    assert noisy.max_val == 1.0 and np.percentile(clean, 99.8) == pytest.approx(1, abs=1e-5)
    np.savez(tmp_path / "signals.npz", x=np.random.default_rng(0).random((10, 32, 1)), y=np.arange(10) % 2)
    with pytest.raises(InputError, match=r"applies to images and volumes; `source` '.*signals\.npz' holds samples "
                                         r"of shape \(32, 1\)"):
        dli.load_dataset(str(tmp_path / "signals.npz"), normalize="percentile")
    with pytest.raises(InputError, match="Received: normalize='percentile:5'"):
        dli.load_dataset("digits", normalize="percentile:5")
