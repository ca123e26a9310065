"""A U-Net trained, tuned, exported and used for prediction on a restoration bundle of
(corrupted, clean) batches. The bundle is built here from scikit-image's camera, so these
tests need no particular data loader: any `load_dataset` that returns such a bundle works."""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from skimage import data as samples

import dlimaging
import dlimaging.tuning.search
from dlimaging import registry
from dlimaging.cli import main
from dlimaging.data.bundle import DatasetBundle
from dlimaging.errors import InputError
from dlimaging.serving.restoration import restored_path
from dlimaging.tuning.experiment import parse_experiment
from dlimaging.tuning.search import run_search

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
    monkeypatch.setattr(dlimaging.tuning.search, "load_dataset", lambda *args, **kwargs: _bundle())
    experiment = parse_experiment({
        "name": "denoise", "data": {"source": "camera", "corruption": {"kind": "gaussian", "sigma": 0.1}}, "model": {"family": UNET},
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


def test_predict_restores_spectra_from_csv_and_npy_files(tmp_path, capsys, monkeypatch):
    from dlimaging.models.unet import build_unet
    from dlimaging.serving.export import export_saved_model

    model = build_unet((16, 1), depth=2, filters=4, compile=False)
    export_saved_model(model, tmp_path / "saved" / "spectra", task=RESTORATION)
    rng = np.random.default_rng(0)
    signals = rng.random((3, 30)).astype("float32")  # 30 points: not the 16 it was built for
    (tmp_path / "noisy.csv").write_text(
        "\n".join([",".join(f"{400 + 2 * i}" for i in range(30))] + [",".join(f"{v:.6f}" for v in row) for row in signals]))
    np.save(tmp_path / "one.npy", signals[0])  # (length,): one spectrum, one channel
    loads = []
    load = tf.saved_model.load
    monkeypatch.setattr(tf.saved_model, "load", lambda *a, **k: loads.append(a) or load(*a, **k))
    assert main(["predict", str(tmp_path / "saved" / "spectra"), str(tmp_path / "noisy.csv"), str(tmp_path / "one.npy"),
                 "--out", str(tmp_path / "out")]) == 0
    assert len(loads) == 1  # the SavedModel is loaded once for all the files
    lines = (tmp_path / "out" / "noisy_restored.csv").read_text().splitlines()
    assert lines[0].split(",")[:2] == ["400", "402"] and len(lines) == 4
    restored = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    # The model's own answer for these signals, at their own length.
    forward = tf.function(lambda t: model(t, training=False), input_signature=[tf.TensorSpec((None, None, 1))])
    expected = forward(tf.constant(signals[..., None])).numpy()[..., 0]
    np.testing.assert_allclose(restored, expected, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "one_restored.npy"), expected[0], atol=1e-5)
    # A stack of spectra without a channel axis, (N, length), as the CSV's rows: restored in that layout.
    np.save(tmp_path / "stack.npy", signals)
    assert main(["predict", str(tmp_path / "saved" / "spectra"), str(tmp_path / "stack.npy"),
                 "--out", str(tmp_path / "out")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out" / "stack_restored.npy"), expected, atol=1e-5)
    with pytest.raises(InputError, match=r"--out .*x.csv' is one file, for one input; 2 inputs need a folder"):
        restored_path(tmp_path / "noisy.csv", tmp_path / "x.csv", 2, images=False)
    with pytest.raises(InputError, match=r"a restored signal is written as .csv or .npy. Received: .png"):
        restored_path(tmp_path / "noisy.csv", tmp_path / "x.png", 1, images=False)


def test_an_objective_or_loss_the_input_rank_lacks_is_refused_before_the_search():
    from dlimaging.tuning.experiment import ExperimentError
    from dlimaging.tuning.search import check_against_data

    def experiment(**sections):
        return parse_experiment({"name": "d", "data": {"source": "spectra", "corruption": {"kind": "gaussian", "sigma": 0.1}}, "model": {"family": UNET}, **sections})

    check_against_data(experiment(tuner={"objective": "val_ssim"}), (32, 32, 1))  # images: measured
    with pytest.raises(ExperimentError, match=r"objective: val_ssim is not measured on inputs of shape \(64, 1\); "
                                              r"use val_psnr"):
        check_against_data(experiment(tuner={"objective": "val_ssim"}), (64, 1))
    with pytest.raises(ExperimentError, match=r"\[search\] loss: 'ssim' is not defined on inputs of shape \(64, 1\); "
                                              r"use one of mse, mae"):
        check_against_data(experiment(search={"loss": {"choice": ["mse", "ssim"]}}), (64, 1))


def test_a_saved_unet_loads_in_a_fresh_process_for_export_and_explain(tmp_path):
    # In this process dlimaging.unet is imported already; the command line starts without it.
    import os
    import subprocess
    import sys
    import warnings

    from dlimaging.models.unet import build_unet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_unet((12, 12, 1), depth=2, filters=4).save(tmp_path / "model.keras")  # padded: PadToMultiple
    np.save(tmp_path / "x.npy", np.zeros((12, 12, 1), "float32"))
    script = ("import sys; from dlimaging.cli import main; "
              "sys.exit(main(sys.argv[1:4] + ['--out', sys.argv[4], '--method', 'filters']) "
              "or main(['export', sys.argv[2], '--name', 'den', '--export-dir', sys.argv[5]]))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(pathlib.Path(dlimaging.__file__).parents[1]),
                                                                      os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", script, "explain", str(tmp_path / "model.keras"),
                           str(tmp_path / "x.npy"), str(tmp_path / "k.png"), str(tmp_path / "saved")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "k.png").is_file() and (tmp_path / "saved" / "den" / "1").is_dir()
