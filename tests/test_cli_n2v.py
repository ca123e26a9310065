"""Noise2Void (`dlimaging train --target self`) and self-ensembled exports (`--self-ensemble`), through the CLI."""

import json

import numpy as np
from PIL import Image

from dlimaging.cli import main


def test_train_on_noisy_images_alone_then_export_self_ensembled(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "noisy").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.random((16, 16)) * 255).astype("uint8")).save(tmp_path / "noisy" / f"{i}.png")
    code = main(["train", "--data", "noisy", "--model", "unet", "--target", "self", "--n2v-fraction", "0.01",
                 "--epochs", "1", "--patch-size", "8", "--patches-per-epoch", "8", "--set", "depth=1",
                 "--set", "filters=4", "--output", "run"])
    assert code == 0
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert metadata["task"] == "restoration" and set(metadata["metrics"]) == {"test_loss"}  # self-supervised
    assert (tmp_path / "run" / "restoration.png").is_file()
    assert main(["export", "run/model.keras", "--name", "n2v", "--export-dir", "saved", "--self-ensemble"]) == 0
    info = json.loads(next((tmp_path / "saved" / "n2v").glob("*/assets/dlimaging.json")).read_text())
    assert info["self_ensemble"] is True and info["task"] == "restoration"


def test_noise2void_mistakes_are_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    unet = ["train", "--model", "unet", "--epochs", "1", "--set", "depth=1", "--set", "filters=4"]
    for argv, message in (
        (unet + ["--data", "skimage:camera,moon,coins", "--target", "self", "--n2v-fraction", "0.5",
                 "--corruption", "{kind = \"gaussian\", sigma = 0.1}"], "`n2v_fraction` must be a number in (0.0, 0.1]"),
        (unet + ["--data", "skimage:camera,moon,coins", "--target", "self"], "on which Noise2Void"),
        (unet + ["--data", "cells:count=4,size=16", "--target", "self"], "dataset of pairs or labels"),
        (["train", "--model", "cnn", "--data", "digits", "--target", "self"], "applies to task 'restoration'"),
        (unet + ["--data", "skimage:camera,moon,coins", "--n2v-fraction", "0.01",
                 "--corruption", "{kind = \"gaussian\", sigma = 0.1}"], "applies to Noise2Void training"),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("dlimaging: error:") and message in err and "\n" not in err
    assert main(["train", "--data", "digits", "--model", "cnn", "--epochs", "1", "--set", "filters=4",
                 "--output", "cnn"]) == 0
    capsys.readouterr()
    assert main(["export", "cnn/model.keras", "--name", "c", "--export-dir", "saved", "--self-ensemble"]) == 2
    err = capsys.readouterr().err.strip()
    assert "applies to restoration models, not to a classification model" in err and "\n" not in err
