"""`dlimaging train --task segmentation`, `export` and `predict` writing a class map, through the CLI."""

import json

import numpy as np
from PIL import Image

from dlimaging.cli import main


def test_train_export_and_predict_a_segmentation(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--task", "segmentation", "--model", "unet", "--data", "cells:count=6,size=16,seed=2",
                 "--epochs", "1", "--set", "filters=4", "--set", "depth=1", "--set", "class_weight=balanced",
                 "--set", "loss=crossentropy+dice", "--set", "augmentation.flip=horizontal",
                 "--set", "augmentation.rotation=0.1", "--output", "run"])
    assert code == 0
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert metadata["task"] == "segmentation" and metadata["class_names"] == ["background", "cell"]
    assert {"test_mean_iou", "test_dice"} <= set(metadata["metrics"])
    assert (tmp_path / "run" / "segmentation.png").is_file()  # image | true mask | predicted mask
    assert main(["export", "run/model.keras", "--name", "cells", "--export-dir", "saved"]) == 0
    Image.fromarray(np.full((20, 24), 40, "uint8")).save(tmp_path / "im.png")
    capsys.readouterr()
    assert main(["predict", "saved/cells", "im.png", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["class_maps"][0]["output"] == "im_mask.png"
    assert np.asarray(Image.open(tmp_path / "im_mask.png")).shape == (20, 24)


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
