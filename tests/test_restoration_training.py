"""A U-Net trained, tuned, exported and used for prediction on a restoration bundle of
(corrupted, clean) batches. The bundle is built here from scikit-image's camera, so these
tests need no particular data loader: any `load_dataset` that returns such a bundle works."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from skimage import data as samples

import dlimaging
import dlimaging.data
from dlimaging import registry
from dlimaging.cli import main
from dlimaging.data import DatasetBundle
from dlimaging.errors import InputError
from dlimaging.experiment import parse_experiment
from dlimaging.tuning import run_search

RESTORATION = next(name for name, entry in registry.TASKS.items() if entry.units == "channels")
UNET = next(name for name, entry in registry.FAMILIES.items() if RESTORATION in entry.tasks)
OFFSET = 0.2  # the corruption: a constant added to every pixel, which a U-Net learns in a few steps


def _bundle(size=16, per_split=(48, 16, 16), seed=0):
    rng = np.random.default_rng(seed)
    image = samples.camera().astype("float32") / 255
    def patches(count):
        rows, cols = rng.integers(0, 512 - size, (2, count))
        return np.stack([image[r:r + size, c:c + size, None] for r, c in zip(rows, cols)])

    splits = [patches(n) for n in per_split]

    def dataset(clean):
        return tf.data.Dataset.from_tensor_slices((clean + OFFSET, clean)).batch(16)

    bundle = DatasetBundle(
        train=dataset(splits[0]).shuffle(8, seed=seed), validation=dataset(splits[1]), test=dataset(splits[2]),
        input_shape=(size, size, 1), num_classes=None, class_names=[], task=RESTORATION, name="camera",
        num_train=per_split[0], num_validation=per_split[1], num_test=per_split[2], value_range=(0.0, 1.0 + OFFSET))
    bundle.max_val = 1.0  # a field of DatasetBundle once the restoration loader is merged
    return bundle


def test_train_on_a_restoration_bundle_learns_and_draws_its_figure(tmp_path):
    noisy_psnr = 10 * np.log10(1 / OFFSET**2)  # 13.98 dB
    result = dlimaging.train(_bundle(), model=UNET, epochs=3, output_dir=tmp_path / "run", verbose=0,
                             overrides={"depth": 1, "filters": 4, "learning_rate": 1e-2, "batch_norm": False})
    metrics = result["metrics"]
    assert set(metrics) == {"test_loss", "test_psnr", "test_ssim"}
    assert metrics["test_psnr"] > noisy_psnr + 3  # it learned to take the offset away
    assert result["monitor"] == "val_psnr" and result["direction"].startswith("higher")
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert metadata["task"] == RESTORATION and metadata["class_names"] is None
    assert [p.rsplit("/", 1)[-1] for p in result["plots"]] == ["restoration.png"]
    assert (tmp_path / "run" / "restoration.png").read_bytes()[:4] == b"\x89PNG"


def test_max_val_comes_from_the_data_and_cannot_be_set(tmp_path):
    bundle = _bundle()
    bundle.max_val = 255.0
    with pytest.raises(InputError, match=r"`max_val` comes from the dataset and cannot be set"):
        dlimaging.train(bundle, model=UNET, epochs=1, output_dir=tmp_path / "a", overrides={"max_val": 1.0})
    cnn = next(name for name, entry in registry.FAMILIES.items() if RESTORATION not in entry.tasks)
    with pytest.raises(InputError, match=rf"task={RESTORATION!r} needs model {UNET!r}"):
        dlimaging.train(bundle, model=cnn, epochs=1, output_dir=tmp_path / "b")


def test_tune_exports_a_model_that_restores_pngs_of_any_size(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(dlimaging.data, "load_dataset", lambda *args, **kwargs: _bundle())
    experiment = parse_experiment({
        "name": "denoise", "data": {"source": "camera"}, "model": {"family": UNET},
        "search": {"depth": {"min": 1, "max": 2}, "filters": 4, "learning_rate": 1e-2, "batch_norm": False},
        "tuner": {"max_trials": 1, "max_epochs": 2},
    })
    assert experiment.model.task == RESTORATION and experiment.objective == "val_psnr"
    result = run_search(experiment, runs_dir=tmp_path / "runs", export_dir=tmp_path / "saved", printer=lambda _: None)
    assert result.best.test_metrics["test_psnr"] > 14.0
    assert (result.run_dir / "plots" / "restoration.png").is_file()
    info = json.loads((result.export_path / "assets" / "dlimaging.json").read_text())
    assert info["outputs"] == ["restored"] and info["input"]["any_size"] and info["input"]["name"] == "image"

    # A grey PNG of a size that is not a multiple of 2^depth, restored into --out.
    clean = samples.camera()[100:121, 200:219].astype("float32") / 255
    noisy = np.clip(clean + OFFSET, 0, 1)
    Image.fromarray(np.round(noisy * 255).astype("uint8")).save(tmp_path / "noisy.png")
    assert main(["predict", str(tmp_path / "saved" / "denoise"), str(tmp_path / "noisy.png"),
                 "--out", str(tmp_path / "clean.png")]) == 0
    assert "(21, 19, 1) →" in capsys.readouterr().out
    restored = np.asarray(Image.open(tmp_path / "clean.png"), "float32") / 255
    assert restored.shape == (21, 19)
    assert np.mean((restored - clean) ** 2) < 0.8 * np.mean((noisy - clean) ** 2)  # closer to the clean image

    # Without --out, NAME_restored.png goes next to the input; a .npy stays a .npy.
    np.save(tmp_path / "noisy.npy", noisy[..., None])
    assert main(["predict", str(tmp_path / "saved" / "denoise"), str(tmp_path / "noisy.png"),
                 str(tmp_path / "noisy.npy")]) == 0
    assert (tmp_path / "noisy_restored.png").is_file()
    assert np.load(tmp_path / "noisy_restored.npy").shape == (21, 19, 1)

    # A colour image for a grey model: one line on stderr, exit 2, nothing written.
    Image.fromarray(np.stack([np.round(noisy * 255).astype("uint8"), np.zeros((21, 19), "uint8"),
                              np.zeros((21, 19), "uint8")], -1)).save(tmp_path / "colour.png")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "saved" / "denoise"), str(tmp_path / "colour.png")]) == 2
    error = capsys.readouterr().err
    assert "has 3 channel(s) (colour (RGB)); the model restores grey inputs of 1 channel(s)" in error
    assert error.count("\n") == 1 and not (tmp_path / "colour_restored.png").exists()
