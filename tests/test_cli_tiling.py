"""`dlimaging predict --tiles/--memory`: tiled restoration and segmentation equal the whole image, and
bad values are one-line errors."""

import warnings

import numpy as np
import pytest
from PIL import Image

from dlimaging.cli import main
from dlimaging.models import build_cnn, build_unet
from dlimaging.serving.export import export_saved_model


def _export(folder, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_unet((16, 16, 1), depth=2, filters=4, compile=False, **kwargs)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # moving statistics that make border effects visible
        if layer.__class__.__name__ == "BatchNormalization":
            layer.moving_mean.assign(rng.normal(0, 0.2, layer.moving_mean.shape).astype("float32"))
    return export_saved_model(model, folder)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiling")
    return {"restoration": _export(root / "denoise"),
            "segmentation": _export(root / "cells", task="segmentation", num_classes=3),
            "classification": export_saved_model(build_cnn((8, 8, 1), 2, filters=2, dense_units=()), root / "digits")}


def test_tiled_restoration_equals_the_whole_image(exports, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("big.npy", np.random.default_rng(1).random((100, 90), dtype="float32"))
    model = str(exports["restoration"])
    assert main(["predict", model, "big.npy", "--tiles", "none", "--out", "whole.npy"]) == 0
    assert main(["predict", model, "big.npy", "--memory", "0.003", "--out", "auto.npy"]) == 0  # tiles of 24
    capsys.readouterr()
    assert main(["predict", model, "big.npy", "--tiles", "7", "--out", "seven.npy"]) == 0
    assert "--tiles 7 is rounded up to 8, a multiple of the network's downsampling factor 4" in capsys.readouterr().err
    whole = np.load("whole.npy")
    assert whole.shape == (100, 90)
    for name in ("auto.npy", "seven.npy"):
        np.testing.assert_allclose(np.load(name), whole, atol=1e-4)


def test_tiled_segmentation_writes_the_whole_image_class_map(exports, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    levels = (np.random.default_rng(2).random((53, 47)) * 65535).astype("uint16")
    Image.fromarray(levels).save("cells.png")  # 16-bit
    model = str(exports["segmentation"])
    assert main(["predict", model, "cells.png", "--tiles", "none", "--out", "whole.png"]) == 0
    assert main(["predict", model, "cells.png", "--tiles", "12x20", "--out", "tiled.png"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open("tiled.png")), np.asarray(Image.open("whole.png")))


def test_bad_tiles_and_memory_are_one_line_errors(exports, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save("x.npy", np.zeros((40, 40), "float32"))
    np.save("one.npy", np.zeros((1, 8, 8, 1), "float32"))
    model = str(exports["restoration"])
    for argv, message in (
        ([model, "x.npy", "--tiles", "0"], "--tiles must be auto, none or a tile size of N or NxN pixels"),
        ([model, "x.npy", "--tiles", "8x8x8"], "Received: --tiles 8x8x8"),
        ([model, "x.npy", "--memory", "-1"], "--memory must be a positive number of GB, e.g. 2 or 0.5. Received: --memory -1"),
        ([model, "x.npy", "--memory", "lots"], "--memory must be a positive number of GB"),
        ([model, "x.npy", "--memory", "0.000001"], "--memory is too small to tile this model"),
        ([str(exports["classification"]), "one.npy", "--tiles", "8"], "--tiles is for restoration and segmentation"),
    ):
        assert main(["predict", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("dlimaging: error:") and message in err and "\n" not in err
    assert not (tmp_path / "x_restored.npy").exists()
