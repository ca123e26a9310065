"""Volumes through the CLI: `dlimaging train` of a 3D U-Net on `blobs3d` (restoration) and on
`cells:ndim=3` (segmentation), `export`, and `predict` on a .npy volume of another size; the
tuning file `tuning/denoise_volume_unet.toml`."""

import json
import pathlib

import numpy as np
import pytest

from dlimaging.cli import main
from dlimaging.tuning.experiment import load_experiment

TUNING = pathlib.Path(__file__).resolve().parents[1] / "tuning" / "denoise_volume_unet.toml"
TINY = ["--epochs", "1", "--batch-size", "4", "--set", "filters=4", "--set", "depth=1"]


def test_train_export_and_predict_a_restoration_volume(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--task", "restoration", "--model", "unet", "--data", "blobs3d:count=4,size=8",
                 "--corruption", '{kind = "gaussian", sigma = 0.1}', "--patch-size", "8",
                 "--set", "augmentation.flip=true", "--set", "augmentation.rotate90=true", *TINY,
                 "--output", "run"]) == 0
    assert (tmp_path / "run" / "restoration.png").is_file()  # the middle slices
    assert main(["export", "run/model.keras", "--name", "vol", "--export-dir", "saved"]) == 0
    info = json.loads((tmp_path / "saved" / "vol" / "1" / "assets" / "dlimaging.json").read_text())
    assert info["input"]["shape"] == [8, 8, 8, 1] and info["input"]["name"] == "volume"  # trained on cubes
    np.save(tmp_path / "v.npy", np.random.default_rng(0).random((5, 11, 9)).astype("float32"))
    capsys.readouterr()
    assert main(["predict", "saved/vol", "v.npy"]) == 0
    assert "v.npy (5, 11, 9, 1) → v_restored.npy" in capsys.readouterr().out
    restored = np.load(tmp_path / "v_restored.npy")
    assert restored.shape == (5, 11, 9) and np.all(np.isfinite(restored))  # padded to 8·2 and cropped back
    # A volume is not an image: a PNG result is refused in one line, before any work.
    assert main(["predict", "saved/vol", "v.npy", "--out", "v.png"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a restored volume is written as .tif or .tiff or .npy. Received: .png" in err


def test_train_export_and_predict_a_segmentation_volume(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--task", "segmentation", "--model", "unet", "--data", "cells:ndim=3,count=4,size=8",
                 "--set", "loss=crossentropy+dice", "--set", "augmentation.flip=horizontal", *TINY,
                 "--output", "run"]) == 0
    assert (tmp_path / "run" / "segmentation.png").is_file()
    assert main(["export", "run/model.keras", "--name", "cells3d", "--export-dir", "saved"]) == 0
    np.save(tmp_path / "v.npy", np.random.default_rng(1).random((6, 10, 7, 1)).astype("float32"))
    assert main(["predict", "saved/cells3d", "v.npy"]) == 0
    class_map = np.load(tmp_path / "v_mask.npy")
    assert class_map.shape == (6, 10, 7) and set(np.unique(class_map)) <= {0, 1}
    capsys.readouterr()
    assert main(["predict", "saved/cells3d", "v.npy", "--out", "m.png"]) == 2
    assert "a volume's class map is written as .tif or .tiff or .npy" in capsys.readouterr().err
    # Moving options that volumes cannot take are refused before any training.
    assert main(["train", "--task", "segmentation", "--model", "unet", "--data", "cells:ndim=3,count=4,size=8",
                 "--set", "augmentation.zoom=0.1", *TINY, "--output", "run2"]) == 2
    err = capsys.readouterr().err
    assert "`augmentation` option 'zoom' is not one of flip, rotate90" in err and "(volumes)" in err
    assert not (tmp_path / "run2" / "model.keras").exists()


def test_the_volume_tuning_file_is_valid_and_small():
    experiment = load_experiment(TUNING)
    assert experiment.name == "denoise_volume_unet" and experiment.model.task == "restoration"
    assert experiment.data.source.startswith("blobs3d:") and experiment.data.patch_size == 16
    assert experiment.tuner.max_trials * experiment.tuner.max_epochs <= 16  # a few minutes on 2 cores


def _volume_folder(root, count=4, shape=(6, 12, 12)):
    """`images/` of 16-bit multi-page TIFFs and `masks/` of their class ids (bright blobs are cells)."""
    import tifffile

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        mask = np.zeros(shape, "uint8")
        z, y, x = (int(rng.integers(1, s - 3)) for s in shape)
        mask[z:z + 3, y:y + 5, x:x + 5] = 1
        image = (1000 + 30000 * mask.astype("int64") + rng.integers(0, 500, shape)).astype("uint16")
        tifffile.imwrite(root / "images" / f"v{i}.tif", image)
        tifffile.imwrite(root / "masks" / f"v{i}.tif", mask)
    return root


def test_a_folder_of_tiff_volumes_and_masks_trains_a_3d_unet_and_predicts_a_tiff_class_map(tmp_path, capsys,
                                                                                            monkeypatch):
    from dlimaging.data.dataset import load_dataset

    monkeypatch.chdir(tmp_path)
    folder = _volume_folder(tmp_path / "stacks")
    data = load_dataset(str(folder), task="segmentation", batch_size=2, validation_split=0.25, test_split=0.25,
                        cache="none")  # volumes load into memory whatever the cache
    assert data.input_shape == (6, 12, 12, 1) and data.class_names == ["0", "1"]
    assert "this folder of volumes is read into memory" in data.cache_note  # `train` prints it
    x, y = next(iter(data.train))
    assert x.shape[1:] == (6, 12, 12, 1) and y.shape[1:] == (6, 12, 12)
    np.testing.assert_array_equal(y.numpy(), (x.numpy()[..., 0] > 0.3).astype("int32"))  # masks stay with images
    assert main(["train", "--task", "segmentation", "--model", "unet", "--data", str(folder), *TINY,
                 "--output", "run"]) == 0
    assert main(["export", "run/model.keras", "--name", "stacks", "--export-dir", "saved"]) == 0
    capsys.readouterr()
    assert main(["predict", "saved/stacks", "stacks/images/v0.tif"]) == 0
    import tifffile

    class_map = tifffile.imread(tmp_path / "stacks" / "images" / "v0_mask.tif")
    assert class_map.shape == (6, 12, 12) and set(np.unique(class_map)) <= {0, 1}


def test_volume_masks_that_disagree_are_one_line_errors(tmp_path):
    import tifffile
    from PIL import Image

    from dlimaging.data.dataset import load_dataset
    from dlimaging.errors import InputError

    folder = _volume_folder(tmp_path / "a", count=3)
    tifffile.imwrite(folder / "masks" / "v1.tif", np.zeros((5, 12, 12), "uint8"))
    with pytest.raises(InputError, match=r"Mask '.*v1.tif' is 5x12x12 \(depth x height x width\); its image "
                                         r"'v1.tif' is 6x12x12"):
        load_dataset(str(folder), task="segmentation")
    folder = _volume_folder(tmp_path / "b", count=3)
    Image.fromarray(np.zeros((12, 12), "uint8")).save(folder / "images" / "w.png")
    Image.fromarray(np.zeros((12, 12), "uint8")).save(folder / "masks" / "w.png")
    with pytest.raises(InputError, match=r"mixes images and volumes: 'w.png' is an image, 'v0.tif' a volume"):
        load_dataset(str(folder), task="segmentation")
