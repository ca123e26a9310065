"""Issue 21, the data side through the command line: CSV columns, labels, targets, noise, sizes and
option names. Each mistake is one line on stderr and exit 2; nothing silently wrong."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from dlimaging.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _one_line(capsys, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("dlimaging: error: ") and all(f in err[0] for f in fragments), err[0]
    return err[0]


def test_predict_reads_csv_columns_by_value_and_refuses_a_column_named_twice(tmp_path, capsys):
    """Class 2: a header naming `1000` twice answered with the last one (exit 0); `1000.0` was
    refused against the training column `1000`."""
    import keras

    import dlimaging as dli

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    model.layers[-1].set_weights([np.array([[1.0], [10.0], [100.0]], "float32")])  # y = x1000 + 10·x1100 + 100·x1200
    dli.serving.export_saved_model(model, tmp_path / "lin", task="regression", target_names=["y"],
                                   features=["1000", "1100", "1200"], axis=[1000.0, 1100.0, 1200.0])
    (tmp_path / "new.csv").write_text("id,1.2e3,1000.0,1100.00\na,3,1,2\n")
    assert main(["predict", str(tmp_path / "lin"), str(tmp_path / "new.csv")]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("new.csv[0]: y=321")
    (tmp_path / "twice.csv").write_text("1000,1100,1200,1000\n1,2,3,1000\n")
    assert main(["predict", str(tmp_path / "lin"), str(tmp_path / "twice.csv")]) == 2
    _one_line(capsys, "twice.csv': the header names column(s) ['1000'] more than once")


@pytest.mark.parametrize("y, task, fragments", [
    (np.array([0.0, 1e20] * 20), None, ["`y` holds the label 1e+20; class labels must be integers from 0 to 2**53",
                                        "pass task='regression'"]),
    (np.array([0, 1] * 20) + 1j, None, ["`y` holds complex numbers; labels and targets must be real"]),
    # float32 sums of squares overflowed: "NaN or infinite"; the variance itself is beyond float32
    (3e21 + 1e21 * np.random.default_rng(0).normal(size=40), "regression",
     ["adapt: the training targets spread too widely for float32: their variance reaches", "Rescale them"]),
])
def test_labels_and_targets_that_would_be_read_wrongly_are_one_line(tmp_path, capsys, y, task, fragments):
    """Class 2: {0.0, 1e20} loaded as 3 classes; a complex y lost its imaginary part; finite targets
    near 3e21 were called NaN or infinite."""
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(1).normal(size=(40, 4)), y=y)
    args = ["train", "--data", str(tmp_path / "d.npz"), "--model", "mlp", "--epochs", "1",
            "--output", str(tmp_path / "run"), "--set", "hidden_units=4"]
    assert main(args + (["--task", task] if task else [])) == 2
    _one_line(capsys, *fragments)
    assert not (tmp_path / "run" / "model.keras").exists()


def test_noise_absurd_for_the_data_is_one_line_before_any_training(tmp_path, capsys):
    """Class 2: σ = 1e39 made inf patches. Beyond float32 it is refused with the file's other
    mistakes; beyond 10 times the data's range, when the data loads."""
    for sigma, fragment in ((1e39, "`corruption.sigma` must be a finite number (within float32's"),
                            (1e30, "`corruption.sigma` must be at most 10 times the data's range (max_val=1")):
        config = tmp_path / f"noise{sigma:g}.toml"
        config.write_text(
            f'name = "noise"\n[data]\nsource = "skimage:camera,moon,coins"\n'
            f'corruption = {{ kind = "gaussian", sigma = {sigma:g} }}\npatch_size = 16\n'
            '[model]\nfamily = "unet"\ntask = "restoration"\n[search]\ndepth = 1\nfilters = 4\n'
            '[tuner]\nmax_trials = 1\nmax_epochs = 1\n')
        assert main(["tune", str(config), "--no-export", "--runs-dir", str(tmp_path / "runs")]) == 2
        _one_line(capsys, fragment, f"Received: corruption.sigma={sigma:g}")
    assert not list(tmp_path.rglob("*.keras"))


@pytest.mark.parametrize("source, fragments", [
    # Class 4: MemoryError, or the process died with no message.
    ("spectra:length=1000000000", ["spectra:length=1000000000': 2000 spectra of length 1000000000 would need about",
                                   "TB of memory;", "Ask for fewer or shorter spectra."]),
    # Class 6: reported as `samples=0`.
    ("spectra:test_samples=0", ["`test_samples` must be a positive integer. Received: test_samples=0"]),
])
def test_spectra_options_are_checked_and_named_before_anything_is_made(tmp_path, capsys, source, fragments):
    assert main(["train", "--data", source, "--epochs", "1", "--output", str(tmp_path / "run")]) == 2
    _one_line(capsys, *fragments)


def test_a_warning_followed_by_an_error_is_just_the_error(tmp_path):
    """Class 5: the CSV text-column warning was printed, with its source line, before the error:
    three lines on stderr. Run as a user runs it, where Python prints warnings."""
    (tmp_path / "s.csv").write_text("sample,y,400,402\ns0,1,2,3\ns1,2,abc,4\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "dlimaging.cli", "train", "--data", str(tmp_path / "s.csv"),
                          "--target", "y", "--epochs", "1", "--output", str(tmp_path / "run")],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"dlimaging: error: `source` '{tmp_path / 's.csv'}', row 3, column '400': 'abc' is not a number."]
