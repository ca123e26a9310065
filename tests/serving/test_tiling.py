"""Tiled prediction equals the whole-image prediction where the whole image fits, in 1D, 2D and 3D,
for Keras models and exports; bad tile sizes, overlaps and budgets are refused in one line."""

import warnings

import numpy as np
import pytest

from dlimaging.errors import InputError
from dlimaging.models import build_unet
from dlimaging.models.field import tiling_info
from dlimaging.serving import predict_tiled
from dlimaging.serving.export import export_saved_model
from dlimaging.serving.exports import read_metadata
from dlimaging.serving.tiling import auto_tile, parse_tiles, plan_tiles, tile_windows


def _unet(shape, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_unet(shape, depth=2, filters=4, compile=False, **kwargs)


def _randomize_batch_norm(model):
    """Non-trivial moving statistics, so a border effect would show in the comparison."""
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            mean, var = layer.moving_mean, layer.moving_variance
            mean.assign(rng.normal(0, 0.2, mean.shape).astype("float32"))
            var.assign(rng.uniform(0.5, 1.5, var.shape).astype("float32"))
    return model


@pytest.fixture(scope="module")
def restoration():
    return _randomize_batch_norm(_unet((16, 16, 1)))


def _whole(model, x):
    return np.asarray(predict_tiled(model, x, tile="none"))


def test_tiles_that_do_not_divide_the_image_give_the_whole_image_result(restoration):
    x = np.random.default_rng(0).random((2, 83, 61, 1), dtype="float32")
    whole = _whole(restoration, x)
    assert whole.shape == x.shape
    for tile in (8, (12, 20), 36):
        np.testing.assert_allclose(predict_tiled(restoration, x, tile=tile), whole, atol=1e-4)
    single = predict_tiled(restoration, x[0], tile=8)  # one sample, without the batch axis
    np.testing.assert_allclose(single, whole[0], atol=1e-4)


def test_a_margin_below_the_receptive_field_would_differ(restoration):
    """The check can fail: stitching tiles without their margins gives another image."""
    x = np.random.default_rng(1).random((1, 40, 40, 1), dtype="float32")
    whole = _whole(restoration, x)
    from dlimaging.serving.tiling import _keras_predictor, tiled  # noqa: PLC2701  the test looks inside

    seams = tiled(_keras_predictor(restoration), x, (8, 8), margin=0)
    assert np.max(np.abs(seams - whole)) > 1e-3


def test_segmentation_probabilities_tile_like_the_whole_image():
    model = _randomize_batch_norm(_unet((16, 16, 1), task="segmentation", num_classes=3))
    x = np.random.default_rng(2).random((1, 45, 50, 1), dtype="float32")
    whole = _whole(model, x)
    tiled_result = predict_tiled(model, x, tile=12)
    np.testing.assert_allclose(tiled_result, whole, atol=1e-4)
    np.testing.assert_allclose(tiled_result.sum(-1), 1.0, atol=1e-5)


def test_signals_tile_in_1d():
    model = _randomize_batch_norm(_unet((32, 1)))
    x = np.random.default_rng(4).random((3, 301, 1), dtype="float32")
    np.testing.assert_allclose(predict_tiled(model, x, tile=40), _whole(model, x), atol=1e-4)


def test_volumes_tile_in_3d_with_a_hand_built_conv3d_model():
    import keras

    inputs = keras.Input((None, None, None, 1))
    x = keras.layers.Conv3D(3, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling3D(2)(x)
    x = keras.layers.Conv3D(3, 3, padding="same", activation="relu")(x)
    x = keras.layers.UpSampling3D(2)(x)
    model = keras.Model(inputs, keras.layers.Conv3D(1, 1)(x))
    info = tiling_info(model)
    assert info["multiple"] == 2 and info["margin"] >= 4
    volume = np.random.default_rng(5).random((1, 20, 18, 22, 1), dtype="float32")
    np.testing.assert_allclose(predict_tiled(model, volume, tile=(6, 8, 10)), _whole(model, volume), atol=1e-4)


def test_an_export_tiles_every_output_and_records_its_field(tmp_path):
    model = _randomize_batch_norm(_unet((16, 16, 1), task="segmentation", num_classes=3))
    path = export_saved_model(model, tmp_path / "seg")
    assert read_metadata(path)["tiling"] == tiling_info(model)
    x = np.random.default_rng(6).random((37, 29, 1), dtype="float32")
    whole, parts = predict_tiled(path, x, tile="none"), predict_tiled(str(path), x, tile=(8, 12))
    assert set(parts) == {"probabilities", "class_map"} and parts["class_map"].shape == (37, 29)
    np.testing.assert_allclose(parts["probabilities"], whole["probabilities"], atol=1e-4)


def test_windows_cover_the_image_once_and_start_on_the_factor():
    seen = np.zeros((23, 17), int)
    for window, kept in tile_windows((23, 17), (8, 4), margin=4):
        seen[kept] += 1
        assert all(w.start % 4 == 0 and w.start <= k.start and k.stop <= w.stop for w, k in zip(window, kept))
    assert (seen == 1).all()


def test_auto_takes_the_whole_image_when_it_fits_and_tiles_otherwise():
    info = {"multiple": 4, "margin": 8, "bytes_per_pixel": 100.0}
    assert auto_tile((100, 100), info, memory=100 * 100 * 100) is None
    tile = auto_tile((1000, 1000), info, memory=40 * 40 * 100)
    assert tile == (24, 24) and (tile[0] + 16) ** 2 * 100 <= 40 * 40 * 100
    with pytest.raises(InputError, match=r"`memory` is too small"):
        auto_tile((1000, 1000), info, memory=10 * 10 * 100)


def test_tile_sizes_are_rounded_up_to_the_factor_and_say_so():
    info = {"multiple": 4, "margin": 8, "bytes_per_pixel": 100.0}
    with pytest.warns(UserWarning, match=r"`tiles` 7 is rounded up to 8, a multiple of .* factor 4"):
        assert plan_tiles("7", (50, 50), info) == (8, 8)
    assert plan_tiles("8x12", (50, 50), info) == (8, 12)
    assert plan_tiles("none", (50, 50), info) is None
    assert plan_tiles("auto", (50, 50), None) is None  # an export from before tiling: the whole image


@pytest.mark.parametrize("bad", ["0", "-3", "7x", "3x3x3", "big", 0, True, 2.5])
def test_bad_tile_sizes_are_refused(bad):
    with pytest.raises(InputError, match=r"`tiles` must be auto, none or a tile size"):
        parse_tiles(bad, 2)


@pytest.mark.parametrize("bad", [-1, 0, "x", float("nan"), True])
def test_bad_memory_budgets_are_refused(bad):
    with pytest.raises(InputError, match=r"`memory` must be a positive number of GB"):
        plan_tiles("auto", (50, 50), {"multiple": 4, "margin": 8, "bytes_per_pixel": 1.0}, memory=bad)


def test_bad_overlaps_and_inputs_are_refused(restoration):
    x = np.zeros((20, 20, 1), "float32")
    with pytest.raises(InputError, match=r"`overlap` must be an int of at least"):
        predict_tiled(restoration, x, tile=8, overlap=2)
    with pytest.raises(InputError, match=r"`x` must be one sample of rank 3"):
        predict_tiled(restoration, np.zeros((20,), "float32"))
    with pytest.raises(InputError, match=r"`model_or_export` must be a keras.Model"):
        predict_tiled(object(), x)
    with pytest.raises(InputError, match=r"export the model again to tile"):
        plan_tiles("8", (20, 20), None)
