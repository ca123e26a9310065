"""TIFF folders and volumes through the command line (issue 19, section 1): a class folder of
multi-page TIFFs trains a 3D CNN; predict writes a TIFF of the input's bit depth; a folder whose
files disagree is one line naming two of them."""

import keras
import numpy as np
import pytest
import tifffile

import dlimaging as dli
from dlimaging.cli import main


def _one_line(capsys, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert all(fragment in err[0] for fragment in fragments), err[0]
    return err[0]


def _volumes(root, shape=(4, 8, 8)):
    rng = np.random.default_rng(0)
    for label, name in enumerate(("dim", "bright")):
        (root / name).mkdir(parents=True)
        for i in range(3):
            stack = rng.integers(0, 20000, shape) + 30000 * label
            tifffile.imwrite(root / name / f"{i}.tif", stack.astype("uint16"), photometric="minisblack")
    return root


def test_train_a_3d_cnn_on_a_folder_of_tiff_volumes(tmp_path, capsys):
    root = _volumes(tmp_path / "stacks")
    out = tmp_path / "run"
    assert main(["train", "--data", str(root), "--model", "cnn", "--epochs", "1", "--batch-size", "2",
                 "--set", "filters=4", "--set", "dense_units=4", "--output", str(out)]) == 0
    model = keras.models.load_model(out / "model.keras")
    assert model.input_shape == (None, 4, 8, 8, 1)
    assert any(type(layer).__name__ == "Conv3D" for layer in model.layers)


def test_a_folder_of_volumes_that_disagree_is_one_line(tmp_path, capsys):
    root = _volumes(tmp_path / "stacks")
    tifffile.imwrite(root / "dim" / "odd.tif", np.zeros((5, 8, 8), "uint16"), photometric="minisblack")
    assert main(["train", "--data", str(root), "--model", "cnn", "--epochs", "1"]) == 2
    _one_line(capsys, "dlimaging: error:", "0.tif' is 4x8x8 with 1 channel(s)", "odd.tif' is 5x8x8")
    (root / "dim" / "odd.tif").unlink()
    tifffile.imwrite(root / "dim" / "five.tif", np.zeros((2, 2, 2, 8, 8), "uint8"), imagej=True,
                     metadata={"axes": "TZCYX"})
    assert main(["train", "--data", str(root), "--model", "cnn", "--epochs", "1"]) == 2
    _one_line(capsys, "five.tif' has 5 dimensions")


def test_predict_writes_tiff_in_the_inputs_bit_depth(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = dli.build_unet((16, 16, 1), depth=1, filters=4, compile=False)
    dli.export_saved_model(model, tmp_path / "saved" / "den", task="restoration")
    for dtype in ("uint8", "uint16", "float32"):
        pixels = np.linspace(0, 1, 256).reshape(16, 16)
        pixels = (pixels * np.iinfo(dtype).max).astype(dtype) if dtype != "float32" else pixels.astype(dtype)
        tifffile.imwrite(tmp_path / f"{dtype}.tif", pixels)
    tifffile.imwrite(tmp_path / "u16.tiff", np.full((16, 16), 60000, "uint16"))
    assert main(["predict", "saved/den", "uint8.tif", "uint16.tif", "float32.tif", "u16.tiff"]) == 0
    assert "uint16.tif (16, 16, 1) → uint16_restored.tif" in capsys.readouterr().out
    for dtype in ("uint8", "uint16", "float32"):
        restored = tifffile.imread(tmp_path / f"{dtype}_restored.tif")
        assert restored.dtype == dtype and restored.shape == (16, 16)
    wide = tifffile.imread(tmp_path / "u16_restored.tiff")
    assert wide.dtype == np.uint16 and wide.min() >= 0  # rescaled to 0..65535 and clipped
    # the same model on the same values, whatever the bit depth: the 16-bit answer is the 8-bit one, finer
    x8 = tifffile.imread(tmp_path / "uint8_restored.tif") / 255.0
    x16 = tifffile.imread(tmp_path / "uint16_restored.tif") / 65535.0
    assert np.abs(x8 - x16).max() < 3 / 255


def test_predict_writes_a_segmentation_class_map_as_tiff(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = dli.build_unet((16, 16, 1), 3, task="segmentation", depth=1, filters=4)
    dli.export_saved_model(model, tmp_path / "saved" / "seg", class_names=["bg", "cell", "edge"])
    tifffile.imwrite(tmp_path / "cells.tif", np.arange(256, dtype="uint16").reshape(16, 16) * 200)
    assert main(["predict", "saved/seg", "cells.tif"]) == 0
    ids = tifffile.imread(tmp_path / "cells_mask.tif")
    assert ids.dtype == np.uint8 and ids.shape == (16, 16) and ids.max() <= 2


def test_predict_and_explain_read_a_tiff_for_a_classifier(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dli.build_cnn((8, 8, 1), 3, filters=(4,), batch_norm=False, dropout=0.0).save(tmp_path / "model.keras")
    tifffile.imwrite(tmp_path / "cell.tif", np.arange(100, dtype="int32").reshape(10, 10) * 10**7)
    assert main(["explain", "model.keras", "cell.tif", "--out", "cam.png"]) == 0
    assert (tmp_path / "cam.png").is_file()
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 8, 8), "uint8"), photometric="minisblack")
    assert main(["explain", "model.keras", "stack.tif", "--out", "cam2.png"]) == 2
    _one_line(capsys, "stack.tif' is a volume of shape (3, 8, 8, 1); the model takes (8, 8, 1)")


def test_a_tiff_volume_is_read_and_written_back_for_a_3d_restoration_model(tmp_path):
    from dlimaging.serving.restoration import (
        read_restoration_input,
        restored_path,
        write_restored,
    )

    stack = np.arange(4 * 8 * 8, dtype="uint16").reshape(4, 8, 8) * 200
    tifffile.imwrite(tmp_path / "z.tif", stack, photometric="minisblack")
    x, info = read_restoration_input(tmp_path / "z.tif", (None, None, None, 1))
    assert x.shape == (1, 4, 8, 8, 1) and info["dtype"] == np.uint16
    target = restored_path(tmp_path / "z.tif", None, 1, images=True)
    assert target.name == "z_restored.tif"
    written = write_restored(target, x * 2.0, info)  # beyond 1: clipped to 65535
    back = tifffile.imread(written)
    assert back.dtype == np.uint16 and back.shape == (4, 8, 8)
    np.testing.assert_array_equal(back, np.minimum(stack.astype("int64") * 2, 65535))
    tifffile.imwrite(tmp_path / "flat.tif", stack[0])
    with pytest.raises(ValueError, match=r"flat\.tif' is an image of shape \(8, 8, 1\); the model restores"):
        read_restoration_input(tmp_path / "flat.tif", (None, None, None, 1))
