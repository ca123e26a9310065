import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from dlimaging.cli import main, parse_settings, parse_value

DLIMAGING = pathlib.Path(sys.executable).parent / "dlimaging"


def run_cli(*args, cwd=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([str(DLIMAGING), *args], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.mark.parametrize(
    "text, value",
    [("3", 3), ("0.25", 0.25), ("1e-3", 1e-3), ("true", True), ("False", False), ("none", None),
     ("16,32", (16, 32)), ("relu", "relu"), ("horizontal", "horizontal")],
)
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_parse_settings_nests_and_tuples():
    settings = parse_settings(["dropout=0.3", "filters=16", "augmentation.rotation=0.1", "augmentation.flip=horizontal"])
    assert settings == {"dropout": 0.3, "filters": 16, "augmentation": {"rotation": 0.1, "flip": "horizontal"}}


def test_datasets_command(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "digits" in out and "mnist1d" in out and "tfds:" in out


@pytest.mark.slow
def test_train_export_predict_end_to_end(tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert main(["train", "--data", "digits", "--epochs", "2", "--output", str(out_dir),
                 "--set", "filters=8,16", "--set", "dropout=0.1", "--set", "augmentation.rotation=0.05"]) == 0
    out = capsys.readouterr().out
    assert "test_accuracy" in out
    for name in ("model.keras", "curves.png", "history.json", "metadata.json"):
        assert (out_dir / name).is_file(), name
    history = json.loads((out_dir / "history.json").read_text())
    assert len(history["loss"]) == 2 and len(history["val_loss"]) == 2
    metadata = json.loads((out_dir / "metadata.json").read_text())
    assert metadata["hyperparameters"]["filters"] == [8, 16]
    assert 0.0 <= metadata["metrics"]["test_accuracy"] <= 1.0
    assert (out_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"

    export_dir = tmp_path / "saved_models"
    assert main(["export", str(out_dir / "model.keras"), "--name", "digits", "--export-dir", str(export_dir)]) == 0
    assert "Exported" in capsys.readouterr().out
    info = json.loads((export_dir / "digits" / "1" / "assets" / "dlimaging.json").read_text())
    assert info["class_names"] == [str(i) for i in range(10)]
    assert info["metrics"] == metadata["metrics"]

    from sklearn.datasets import load_digits
    from PIL import Image

    digits = load_digits()
    np.save(tmp_path / "three.npy", (digits.images[:3] / 16).astype("float32")[..., None])
    Image.fromarray((digits.images[0] * 16).astype("uint8")).save(tmp_path / "zero.png")
    assert main(["predict", str(export_dir / "digits"), str(tmp_path / "three.npy"), str(tmp_path / "zero.png")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("digits version 1")
    assert len(lines) == 5 and "three.npy[2]" in lines[3] and "zero.png" in lines[4]

    assert main(["predict", str(export_dir / "digits" / "1"), str(tmp_path / "zero.png"), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert len(answer["predictions"][0]["probabilities"]) == 10

    assert main(["request", str(export_dir / "digits"), str(tmp_path / "zero.png")]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["signature_name"] == "serving_default"
    assert np.array(body["instances"][0]["image"]).shape == (8, 8, 1)

    assert main(["serving-config", str(export_dir)]) == 0
    assert 'name: "digits"' in (export_dir / "models.config").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", "nope"], "'nope' is not a known dataset"),
        (["train", "--data", "digits", "--set", "dropout=1.5"], "Received: dropout=1.5"),
        (["train", "--data", "digits", "--set", "colour=red"], "Unknown setting `colour` for model='cnn'. Received: colour='red'"),
        (["train", "--data", "digits", "--set", "num_classes=3"], "`num_classes` comes from the dataset"),
        (["train", "--data", "digits", "--model", "rnn"], "invalid choice: 'rnn'"),
        (["train", "--data", "digits", "--epochs", "0"], "Received: epochs=0"),
        (["train"], "the following arguments are required: --data"),
        (["export", "missing.keras", "--name", "x"], "no such model file"),
        (["predict", "no_such_dir", "x.npy"], "No exported model at 'no_such_dir'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_predict_refuses_bad_inputs_in_one_line(tmp_path, capsys):
    import dlimaging as dli

    dli.export_saved_model(dli.build_mlp((8, 8, 1), 3, hidden_units=(4,)), tmp_path / "m")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    np.save(tmp_path / "wrong.npy", np.zeros((2, 5, 5, 1), "float32"))
    cases = [
        (tmp_path / "broken.png", "is unreadable"),
        (tmp_path / "wrong.npy", "has shape (2, 5, 5, 1); the model takes (8, 8, 1)"),
        (tmp_path / "missing.npy", "no such file"),
    ]
    for path, message in cases:
        assert main(["predict", str(tmp_path / "m"), str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_report_command(tmp_path, capsys):
    config = tmp_path / "r.toml"
    config.write_text('name = "r"\n[data]\nsource = "digits"\nbatch_size = 256\n[search]\nfilters = [4]\n'
                      'dense_units = 8\ndropout = { choice = [0.0, 0.1] }\n[tuner]\nmax_trials = 2\nmax_epochs = 1\n')
    assert main(["tune", str(config), "--runs-dir", str(tmp_path / "runs"), "--no-export"]) == 0
    out = capsys.readouterr().out
    assert "[trial 1/2]" in out and "[trial 2/2]" in out and "Best: trial" in out
    (tmp_path / "runs" / "r" / "plots" / "hyperparameters.png").unlink()
    assert main(["report", str(tmp_path / "runs" / "r")]) == 0
    out = capsys.readouterr().out
    assert "val_accuracy (maximize)" in out and "2 trials: 2 completed, 0 failed." in out
    assert (tmp_path / "runs" / "r" / "plots" / "hyperparameters.png").is_file()  # redrawn
    assert main(["report", str(tmp_path / "nothing")]) == 2


def test_a_bug_is_an_internal_error_with_its_traceback_in_a_log(monkeypatch, capsys, tmp_path):
    import dlimaging.cli as cli

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR

    def broken(args):
        raise KeyError("oops")  # not the user's fault: not an InputError

    monkeypatch.setattr(cli, "cmd_datasets", broken)
    assert main(["datasets"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "internal error (KeyError: 'oops')" in err and "bug in dlimaging" in err
    logs = list(tmp_path.glob("dlimaging-internal-error-*.log"))
    assert len(logs) == 1 and str(logs[0]) in err
    assert "Traceback" in logs[0].read_text() and "broken" in logs[0].read_text()


def test_a_plain_value_error_from_inside_is_an_internal_error_too(monkeypatch, capsys, tmp_path):
    import tempfile

    import dlimaging.cli as cli

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setattr(cli, "cmd_datasets", lambda args: int("x"))  # a ValueError that is dlimaging's bug
    assert main(["datasets"]) == 1
    assert "internal error (ValueError" in capsys.readouterr().err


def test_a_bad_builder_argument_names_itself_in_one_line(capsys):
    from dlimaging.errors import InputError

    assert main(["train", "--data", "digits", "--set", "dropout=1.5", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "dlimaging: error: `dropout` must be a number in [0.0, 1.0). Received: dropout=1.5"
    assert issubclass(InputError, ValueError)


def test_model_choices_come_from_the_registry(capsys):
    from dlimaging import registry

    assert main(["train", "--data", "digits", "--model", "rnn"]) == 2
    err = capsys.readouterr().err
    assert all(f"'{name}'" in err for name in registry.FAMILIES)
