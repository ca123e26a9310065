"""`dlimaging train --task segmentation`, `export` and `predict` writing a class map, through the CLI."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from dlimaging.cli import main
from dlimaging.data.cells import generate_cells


def test_train_export_and_predict_a_segmentation(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--task", "segmentation", "--model", "unet", "--data", "cells:count=6,size=24,seed=2",
                 "--epochs", "1", "--set", "filters=4", "--set", "depth=1", "--set", "class_weight=balanced",
                 "--set", "loss=crossentropy+dice", "--set", "augmentation.flip=horizontal",
                 "--set", "augmentation.rotation=0.1", "--patch-size", "16", "--patches-per-epoch", "6",
                 "--output", "run"])
    assert code == 0
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert model.input_shape[1:3] == (16, 16)  # trained on random 16x16 patches of the 24x24 images
    assert metadata["task"] == "segmentation" and metadata["class_names"] == ["background", "cell"]
    metrics = metadata["metrics"]
    assert {"test_mean_iou", "test_dice", "test_dice_background", "test_dice_cell"} <= set(metrics)
    # the Dice of each class, counted batch by batch, averages to the compiled mean Dice
    assert np.mean([metrics["test_dice_background"], metrics["test_dice_cell"]]) == pytest.approx(
        metrics["test_dice"], abs=1e-4)
    assert (tmp_path / "run" / "segmentation.png").is_file()  # image | true mask | predicted mask
    assert main(["export", "run/model.keras", "--name", "cells", "--export-dir", "saved"]) == 0
    Image.fromarray(np.full((20, 24), 40, "uint8")).save(tmp_path / "im.png")
    capsys.readouterr()
    assert main(["predict", "saved/cells", "im.png", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["class_maps"][0]["output"] == "im_mask.png"
    assert np.asarray(Image.open(tmp_path / "im_mask.png")).shape == (20, 24)
    assert main(["predict", "saved/cells", "im.png", "--overlay"]) == 0
    assert "im_mask-2.png, im_overlay.png" in capsys.readouterr().out
    overlay = np.asarray(Image.open(tmp_path / "im_overlay.png"))
    class_map = np.asarray(Image.open(tmp_path / "im_mask-2.png"))
    assert overlay.shape == (20, 24, 3)
    grey = overlay[..., 0] == overlay[..., 2]
    np.testing.assert_array_equal(grey[class_map == 0], True)    # the background is the image, untinted
    assert not grey[class_map > 0].any()                          # each class is tinted with its colour
    assert main(["predict", "saved/cells", "im.png", "--overlay", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["class_maps"][0]["overlay"] == "im_overlay-2.png"
    assert main(["request", "saved/cells", "im.png"]) == 0  # TF Serving's REST body, at the image's own size
    body = json.loads(capsys.readouterr().out)
    assert np.asarray(next(iter(body["instances"][0].values()))).shape == (20, 24, 1)
    assert main(["serving-config", "saved"]) == 0
    assert 'name: "cells"' in (tmp_path / "saved" / "models.config").read_text()


def test_explain_a_segmentation_model_and_overlay_refusals(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--task", "segmentation", "--model", "unet", "--data", "cells:count=4,size=16,seed=1",
                 "--epochs", "1", "--set", "filters=4", "--set", "depth=1", "--output", "run"]) == 0
    x, _ = generate_cells(count=1, size=16, seed=5)
    np.save(tmp_path / "im.npy", x[0])
    capsys.readouterr()
    assert main(["explain", "run/model.keras", "im.npy", "--out", "cam.png"]) == 0
    out = capsys.readouterr().out
    assert "of bottom_act2 for class cell over its" in out and (tmp_path / "cam.png").is_file()
    assert main(["explain", "run/model.keras", "im.npy", "--out", "cam0.png", "--class", "0",
                 "--layer", "up1_act2"]) == 0
    assert "of up1_act2 for class background" in capsys.readouterr().out
    for argv, message in (
        (["explain", "run/model.keras", "im.npy", "--out", "c.png", "--class", "2"],
         "`class_index` must be an int in [0, 1] (the model has 2 classes). Received: class_index=2"),
        (["explain", "run/model.keras", "im.npy", "--out", "c.png", "--method", "saliency"],
         "A segmentation model is explained by grad-cam"),
        (["explain", "run/model.keras", "im.npy", "--out", "c.png", "--layer", "nope"],
         "`layer` must be one of the model's feature-map layers"),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("dlimaging: error:") and message in err and "\n" not in err
    assert not (tmp_path / "c.png").exists()
    assert main(["export", "run/model.keras", "--name", "cells", "--export-dir", "saved"]) == 0
    np.save(tmp_path / "two.npy", np.zeros((2, 16, 16, 1), "float32"))
    capsys.readouterr()
    assert main(["predict", "saved/cells", "two.npy", "--out", "two_mask.npy", "--overlay"]) == 2
    assert "--overlay draws one image; input 'two.npy' holds 2" in capsys.readouterr().err
    assert not (tmp_path / "two_mask.npy").exists()


def test_segmentation_mistakes_are_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for argv, message in (
        (["train", "--task", "segmentation", "--model", "unet", "--data", "digits"], "has no masks"),
        (["train", "--task", "segmentation", "--model", "unet", "--data", "cells:count=4,size=16",
          "--set", "loss=mse"], "`loss` must be one of 'crossentropy', 'dice', 'crossentropy+dice'"),
        (["train", "--model", "cnn", "--data", "cells:count=4,size=16"], "use it with task='segmentation'"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("dlimaging: error:") and message in err and "\n" not in err
