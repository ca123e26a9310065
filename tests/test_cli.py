import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from dlimaging.cli import main, parse_settings, parse_value
from dlimaging.errors import InputError

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

    from PIL import Image
    from sklearn.datasets import load_digits

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
    "args, message, whole_process",
    [
        # Two run as the installed command in a new process (TensorFlow's start-up, argparse's exit);
        # the others call the same `main` in this process, which is what that command runs.
        (["train", "--data", "nope"], "'nope' is not a known dataset", True),
        (["train", "--data", "digits", "--set", "dropout=1.5"], "Received: dropout=1.5", False),
        (["train", "--data", "digits", "--set", "colour=red"], "Unknown setting `colour` for model='cnn'. Received: colour='red'", False),
        (["train", "--data", "digits", "--set", "num_classes=3"], "`num_classes` comes from the dataset", False),
        (["train", "--data", "digits", "--model", "rnn"], "invalid choice: 'rnn'", False),
        (["train", "--data", "digits", "--epochs", "0"], "Received: epochs=0", False),
        (["train"], "the following arguments are required: --data", False),
        (["export", "missing.keras", "--name", "x"], "no such model file", False),
        (["predict", "no_such_dir", "x.npy"], "No exported model at 'no_such_dir'", False),
        (["frobnicate"], "invalid choice: 'frobnicate'", True),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message, whole_process):
    if whole_process:
        result = run_cli(*args, cwd=tmp_path)
        code, err = result.returncode, result.stderr
    else:
        monkeypatch.chdir(tmp_path)
        try:
            code = main(list(args))
        except SystemExit as stop:  # argparse's own errors
            code = stop.code
        err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0]
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written


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
    assert main(["tune", str(config), "--runs-dir", str(tmp_path / "runs"), "--no-export", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "[trial 1/2]" in out and "[trial 2/2]" in out and "Best: trial" in out
    # Not a terminal: no live line, and with --verbose one plain line per epoch.
    assert "\x1b" not in out and "|" not in out.split("[trial 1/2]")[0]
    epochs = [line for line in out.splitlines() if "] epoch " in line]
    assert [line.split(" in ")[0] for line in epochs] == ["[trial 1/2] epoch 1/1", "[trial 2/2] epoch 1/1"]
    (tmp_path / "runs" / "r" / "plots" / "hyperparameters.png").unlink()
    assert main(["report", str(tmp_path / "runs" / "r")]) == 0
    out = capsys.readouterr().out
    assert "val_accuracy (higher is better)" in out and "2 trials: 2 completed, 0 failed." in out
    assert (tmp_path / "runs" / "r" / "plots" / "hyperparameters.png").is_file()  # redrawn
    assert main(["report", str(tmp_path / "nothing")]) == 2
    capsys.readouterr()

    # --pareto: exactly the trials on the front, with their objective, size and latency.
    from dlimaging.plots.trials import pareto_front
    from dlimaging.tuning.results import collect_trials

    assert main(["report", str(tmp_path / "runs" / "r"), "--pareto"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "r: Pareto front of val_accuracy (higher is better) and parameters"
    assert out[1].split() == ["trial", "val_accuracy", "(higher", "is", "better)", "params", "latency_ms"]
    rows = [line.split() for line in out[2:] if line.split() and line.split()[0].isdigit()]
    front = pareto_front(collect_trials(tmp_path / "runs" / "r"), "max")
    assert front and [row[0] for row in rows] == [str(t.trial) for t in front]
    for row, t in zip(rows, front):
        assert row[1:] == [f"{t.score:.4f}", f"{t.params:,}", f"{t.latency_ms:.3f}"] and t.latency_ms > 0
    assert out[2 + len(rows)].startswith(f"On the front: {len(front)} of 2 completed trials")


@pytest.mark.parametrize("args, toml, message", [
    (["--export-choice", "smallest-within=abc"], "", "argument --export-choice: must be \"best\", "
     "\"smallest-within=TOLERANCE\" with a number >= 0"),
    (["--export-choice", "ensemble=1"], "", "or \"ensemble=K\" with a whole number from 2 to 20"),
    (["--export-choice", "fastest"], "", "Received: --export-choice='fastest'"),
    ([], '[export]\nchoice = "smallest-within="\n', "[export] choice: must be \"best\", "),
])
def test_a_bad_export_choice_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, monkeypatch, args, toml, message):
    monkeypatch.chdir(tmp_path)
    config = _tiny_config(tmp_path)
    config.write_text(config.read_text() + toml)
    assert main(["tune", str(config), *args]) == 2
    _one_line(capsys, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.toml"]


def test_a_bug_is_an_internal_error_with_its_traceback_in_a_log(monkeypatch, capsys, tmp_path):
    import dlimaging.cli as cli

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR

    def broken(args):
        raise KeyError("oops")  # not the user's fault: not an InputError

    monkeypatch.setattr(cli.commands, "cmd_datasets", broken)
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
    monkeypatch.setattr(cli.commands, "cmd_datasets", lambda args: int("x"))  # a ValueError that is dlimaging's bug
    assert main(["datasets"]) == 1
    assert "internal error (ValueError" in capsys.readouterr().err


def _warn_then(outcome):
    def command(args):
        import warnings

        import numpy as np

        warnings.warn("the column(s) 'name' hold no numbers\n and are left out.", stacklevel=1)
        np.float32(3e38) * np.float32(10)  # numpy's RuntimeWarning: overflow
        return outcome(args)

    return command


def _fail(args):
    raise InputError("`--data` has no such file. Received: --data='nope.csv'")


def test_a_warning_followed_by_an_error_is_only_the_error(monkeypatch, capsys):
    import dlimaging.cli as cli

    monkeypatch.setattr(cli.commands, "cmd_datasets", _warn_then(_fail))
    assert main(["datasets"]) == 2
    assert capsys.readouterr().err == "dlimaging: error: `--data` has no such file. Received: --data='nope.csv'\n"


def test_warnings_of_a_command_that_succeeds_are_one_line_each(monkeypatch, capsys):
    import dlimaging.cli as cli

    monkeypatch.setattr(cli.commands, "cmd_datasets", _warn_then(lambda args: 0))
    assert main(["datasets"]) == 0
    assert main(["datasets"]) == 0  # the same warnings again: still one line each
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) >= 2 and all(line.startswith("dlimaging: warning") for line in lines)
    assert "hold no numbers and are left out." in lines[0] and "RuntimeWarning" in " ".join(lines)


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


TINY_TOML = ('name = "{name}"\n[data]\nsource = "digits"\nbatch_size = 128\n[search]\nfilters = [4]\n'
             'dense_units = 8\ndropout = {{ choice = [0.0, 0.1] }}\n[tuner]\nmax_trials = 1\nmax_epochs = 1\n')


def _tiny_config(tmp_path, name="mine"):
    config = tmp_path / f"{name}.toml"
    config.write_text(TINY_TOML.format(name=name))
    return config


def _one_line(capsys, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert all(fragment in err[0] for fragment in fragments), err[0]
    return err[0]


def test_nothing_of_the_users_is_deleted_or_replaced(tmp_path, capsys, monkeypatch):
    """Issue 9, class 1: every refusal leaves the user's file byte for byte; one line, exit 2."""
    import keras

    import dlimaging as dli

    monkeypatch.chdir(tmp_path)
    thesis = b"\\documentclass{article} % not dlimaging's\n"
    # tune into a folder of the user's own, with and without --overwrite
    config = _tiny_config(tmp_path)
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    (tmp_path / "runs" / "mine" / "thesis.tex").write_bytes(thesis)
    for extra in (["--overwrite"], []):
        assert main(["tune", str(config), "--no-export", *extra]) == 2
        _one_line(capsys, "runs/mine is not empty and is not a dlimaging run folder")
        assert sorted(p.name for p in (tmp_path / "runs" / "mine").iterdir()) == ["thesis.tex"]
        assert (tmp_path / "runs" / "mine" / "thesis.tex").read_bytes() == thesis

    # export --name that is not a plain folder name
    model = tmp_path / "m.keras"
    dli.build_mlp((8, 8, 1), 3, hidden_units=(4,)).save(model)
    keras.backend.clear_session()
    for name in ("../x", str(tmp_path / "abs"), "", ".", "a/b"):
        assert main(["export", str(model), "--name", name, "--export-dir", "saved"]) == 2
        _one_line(capsys, "`--name` must be a plain folder name")
    assert not (tmp_path / "saved").exists() and not (tmp_path / "x").exists() and not (tmp_path / "abs").exists()

    # train --output onto a folder that holds a model
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.keras").write_bytes(b"my model")
    (tmp_path / "out" / "metadata.json").write_bytes(b'{"mine": true}')
    assert main(["train", "--data", "digits", "--output", "out", "--epochs", "1"]) == 2
    _one_line(capsys, "out/model.keras already exists and was left as it is", "Pass another --output")
    assert (tmp_path / "out" / "model.keras").read_bytes() == b"my model"
    assert (tmp_path / "out" / "metadata.json").read_bytes() == b'{"mine": true}'

    # serving-config over a hand-written models.config
    (tmp_path / "saved" / "digits" / "1").mkdir(parents=True)
    hand = b'model_config_list { config { name: "hand" base_path: "/m/hand" model_platform: "tensorflow" } }\n'
    (tmp_path / "saved" / "models.config").write_bytes(hand)
    assert main(["serving-config", "saved"]) == 2
    _one_line(capsys, "saved/models.config was not written by dlimaging", "--output")
    assert (tmp_path / "saved" / "models.config").read_bytes() == hand
    assert main(["serving-config", "saved", "--output", "saved/ours.config"]) == 0
    assert main(["serving-config", "saved", "--output", "saved/ours.config"]) == 0  # its own file: replaced
    assert 'name: "digits"' in (tmp_path / "saved" / "ours.config").read_text()


def test_a_run_folder_is_locked_and_a_stale_lock_is_taken_over(tmp_path, capsys):
    """Issue 9, class 1: a second search on a run folder is refused with the holder's PID and host."""
    import socket

    config = _tiny_config(tmp_path, "locked")
    runs = tmp_path / "runs"
    assert main(["tune", str(config), "--runs-dir", str(runs), "--no-export"]) == 0
    assert not (runs / "locked" / ".lock").exists()  # released
    capsys.readouterr()
    host = socket.gethostname()
    lock = runs / "locked" / ".lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": host, "started": "now"}))  # a live holder
    assert main(["tune", str(config), "--runs-dir", str(runs), "--no-export", "--max-trials", "2"]) == 2
    _one_line(capsys, f"in use by dlimaging tune (PID {os.getpid()} on host {host}")
    assert json.loads(lock.read_text())["pid"] == os.getpid()  # not taken
    assert main(["tune", str(config), "--runs-dir", str(runs), "--no-export", "--max-trials", "2",
                 "--overwrite"]) == 2
    assert len(list(runs.glob("locked/trial_[0-9]*"))) == 1  # --overwrite did not clear a locked folder

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock.write_text(json.dumps({"pid": gone.pid, "host": host, "started": "then"}))
    assert main(["tune", str(config), "--runs-dir", str(runs), "--no-export", "--max-trials", "2"]) == 0
    assert f"Taking over the lock on {runs / 'locked'} from PID {gone.pid}" in capsys.readouterr().out
    assert not lock.exists()
    assert len(list(runs.glob("locked/trial_[0-9]*"))) == 2


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "digits", "--output", "a_file/out"], "--output folder a_file/out sits under a file (a_file)"),
    (["train", "--data", "digits", "--output", "a_file"], "--output folder a_file is a file"),
    (["export", "m.keras", "--name", "m", "--export-dir", "a_file"], "folder a_file/m sits under a file (a_file)"),
    (["tune", "c.toml", "--runs-dir", "a_file"], "run folder a_file/c sits under a file (a_file)"),
    (["tune", "c.toml", "--export-dir", "a_file/x"], "export folder a_file/x/c sits under a file (a_file)"),
    (["serving-config", "saved", "--output", "a_file/models.config"], "sits under a file (a_file)"),
    (["serving-config", "saved", "--output", "saved"], "--output saved is a folder"),
])
def test_an_output_folder_that_is_a_file_is_one_line_before_any_work(tmp_path, capsys, monkeypatch, args, message):
    """Issue 9, class 2: output locations are checked before anything is loaded, trained or written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_bytes(b"mine")
    (tmp_path / "m.keras").write_bytes(b"not loaded before the check")
    _tiny_config(tmp_path, "c")
    (tmp_path / "saved" / "m" / "1").mkdir(parents=True)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert main(args) == 2
    _one_line(capsys, message)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing written
    assert (tmp_path / "a_file").read_bytes() == b"mine"


def test_damaged_files_are_one_line_naming_the_file(tmp_path, capsys):
    """Issue 9, class 2: a corrupt export or run folder given to predict, request or report."""
    import shutil

    import dlimaging as dli

    good = dli.export_saved_model(dli.build_mlp((8, 8, 1), 3, hidden_units=(4,)), tmp_path / "good")
    np.save(tmp_path / "x.npy", np.zeros((8, 8, 1), "float32"))

    def damaged(name, change):
        version = tmp_path / name / "1"
        shutil.copytree(good, version)
        change(version)
        return tmp_path / name

    cases = [
        (damaged("badjson", lambda v: (v / "assets" / "dlimaging.json").write_text("{not json")),
         "badjson/1/assets/dlimaging.json: unreadable export metadata (JSONDecodeError"),
        (damaged("nokeys", lambda v: (v / "assets" / "dlimaging.json").write_text('{"task": "classification"}')),
         "nokeys/1/assets/dlimaging.json: incomplete export metadata (missing or bad 'input')"),
        (damaged("nopb", lambda v: (v / "saved_model.pb").write_bytes(b"\x00garbage")),
         "nopb/1: not a loadable SavedModel"),
    ]
    for folder, message in cases:
        assert main(["predict", str(folder), str(tmp_path / "x.npy")]) == 2
        _one_line(capsys, message)
    assert main(["request", str(cases[1][0]), str(tmp_path / "x.npy")]) == 2
    _one_line(capsys, "incomplete export metadata")

    run = tmp_path / "run"
    (run / "trial_0").mkdir(parents=True)
    fingerprint = {"name": "run", "tuner": {"objective": "val_accuracy"}, "model": {"task": "classification"}}
    trial = {"trial_id": "0", "status": "COMPLETED", "score": 0.5, "best_step": 0,
             "hyperparameters": {"values": {"dropout": 0.1}}}
    reports = [
        ({"experiment.json": "{", "trial_0/trial.json": trial}, "run/experiment.json: unreadable run fingerprint"),
        ({"experiment.json": {"name": "run"}, "trial_0/trial.json": trial},
         "run/experiment.json: incomplete run fingerprint (missing or bad 'tuner')"),
        ({"experiment.json": fingerprint, "trial_0/trial.json": {"trial_id": "0"}},
         "run/trial_0/trial.json: not a complete Keras Tuner trial record (missing or bad 'status')"),
        ({"experiment.json": fingerprint, "trial_0/trial.json": {**trial, "hyperparameters": {}}},
         "run/trial_0/trial.json: not a complete Keras Tuner trial record (missing or bad 'values')"),
        ({"experiment.json": fingerprint, "trial_0/trial.json": "\x00\xff"}, "run/trial_0/trial.json: unreadable"),
        ({"experiment.json": fingerprint, "trial_0/trial.json": trial, "trial_logs/0.json": [1, 2]},
         "run/trial_logs/0.json: not a dlimaging trial log"),
        ({"experiment.json": fingerprint, "trial_0/trial.json": trial, "trial_logs/0.json": "{"},
         "run/trial_logs/0.json: unreadable trial log"),
    ]
    for files, message in reports:
        shutil.rmtree(run / "trial_logs", ignore_errors=True)
        for name, content in files.items():
            (run / name).parent.mkdir(parents=True, exist_ok=True)
            (run / name).write_text(content if isinstance(content, str) else json.dumps(content))
        assert main(["report", str(run)]) == 2
        _one_line(capsys, message)
    (run / "trial_logs" / "0.json").write_text(json.dumps({"epochs": 1, "seconds": 0.5, "history": {}}))
    assert main(["report", str(run)]) == 0  # the same folder, repaired, reports
    assert "1 trials: 1 completed" in capsys.readouterr().out


def test_train_default_output_goes_beside_an_existing_model(tmp_path, capsys, monkeypatch):
    """Issue 9, class 1: the default output folder never replaces a model; the next free one is used."""
    monkeypatch.chdir(tmp_path)
    first = tmp_path / "runs" / "train_digits_mlp"
    first.mkdir(parents=True)
    (first / "model.keras").write_bytes(b"the first model")
    assert main(["train", "--data", "digits", "--model", "mlp", "--epochs", "1", "--batch-size", "128"]) == 0
    out = capsys.readouterr().out
    assert "Output folder: runs/train_digits_mlp-2" in out
    assert (first / "model.keras").read_bytes() == b"the first model"
    assert (tmp_path / "runs" / "train_digits_mlp-2" / "model.keras").is_file()


# ---------------------------------------------------------------- every task end to end


def _spectra_csv(path, samples=150, length=40, seed=0, columns=None):
    """A CSV like an instrument's: a header of wavelengths, one spectrum per row, a target column `y`."""
    from dlimaging.data.spectra import make_spectra

    spectra = make_spectra(samples=samples, length=length, seed=seed)
    axis = np.linspace(900.0, 1700.0, length)
    x = spectra.x[..., 0] * 50.0 + 200.0  # raw instrument values, far from [0, 1]
    y = spectra.concentrations[:, 0] * 10.0
    header = [f"{a:.1f}" for a in axis] + ["y"]
    table = np.column_stack([x, y])
    order = list(range(len(header))) if columns is None else columns(len(header))
    lines = [",".join(header[i] for i in order)] + [",".join(f"{row[i]:.5f}" for i in order) for row in table]
    path.write_text("\n".join(lines) + "\n")
    return x, y


def _printed_values(out, target):
    return [float(line.split(f"{target}=")[1].split(",")[0]) for line in out.splitlines() if f" {target}=" in line]


def test_csv_regression_train_export_and_predict_on_a_csv(tmp_path, capsys):
    import keras

    _spectra_csv(tmp_path / "my.csv")
    out_dir = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "my.csv"), "--target", "y", "--task", "regression",
                 "--epochs", "2", "--output", str(out_dir), "--set", "filters=4", "--set", "dense_units=8"]) == 0
    out = capsys.readouterr().out
    assert "early stopping on val_loss (lower is better)" in out and "Test metrics:" in out and "test_rmse" in out
    assert "standardised inside the model (standardize=per_feature" in out  # raw values: the default
    for name in ("model.keras", "parity.png", "residuals.png", "spectra.png", "curves.png"):
        assert (out_dir / name).read_bytes()[:4] in (b"\x89PNG", b"PK\x03\x04"), name
    metadata = json.loads((out_dir / "metadata.json").read_text())
    assert metadata["task"] == "regression" and metadata["target_names"] == ["y"]
    assert metadata["class_names"] is None and metadata["early_stopping"] == {"monitor": "val_loss", "mode": "min"}
    assert metadata["axis"][0] == 900.0 and len(metadata["features"]) == 40

    export_dir = tmp_path / "saved_models"
    # In a fresh process, as a user runs it: the model's own loss class must load there too.
    exported = run_cli("export", str(out_dir / "model.keras"), "--name", "glucose", "--export-dir", str(export_dir))
    assert exported.returncode == 0, exported.stderr
    info = json.loads((export_dir / "glucose" / "1" / "assets" / "dlimaging.json").read_text())
    assert info["outputs"] == ["predictions"] and info["target_names"] == ["y"] and info["class_names"] is None

    # New samples with their columns reversed and the target first: picked and ordered by name.
    x, _ = _spectra_csv(tmp_path / "new.csv", samples=4, seed=7, columns=lambda n: list(range(n))[::-1])
    assert main(["predict", str(export_dir / "glucose"), str(tmp_path / "new.csv")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "glucose version 1 (regression)"
    assert f"{tmp_path / 'new.csv'}[3]: y=" in out
    model = keras.saving.load_model(out_dir / "model.keras")
    expected = model.predict(x.astype("float32")[..., None], verbose=0)[:, 0]
    # Adapted on the training split only, before training: the same split load_dataset gives.
    from dlimaging.data.dataset import load_dataset

    train_x = load_dataset(str(tmp_path / "my.csv"), target="y", task="regression").arrays["x_train"]
    np.testing.assert_allclose(np.ravel(model.get_layer("standardize").mean), train_x.mean(axis=0).ravel(),
                               rtol=1e-4)
    np.testing.assert_allclose(_printed_values(out, "y"), expected, rtol=1e-3)

    (tmp_path / "short.csv").write_text("900.0,y\n1,2\n")
    assert main(["predict", str(export_dir / "glucose"), str(tmp_path / "short.csv")]) == 2
    assert "short.csv' has no column '920.5', '941.0', '961.5', '982.1', '1002.6' and 34 more" in capsys.readouterr().err


def test_coffee_classification_train_export_predict(tmp_path, capsys):
    out_dir, export_dir = tmp_path / "run", tmp_path / "saved_models"
    assert main(["train", "--data", "coffee", "--model", "cnn", "--epochs", "1", "--output", str(out_dir),
                 "--set", "filters=4", "--set", "dense_units=8"]) == 0
    out = capsys.readouterr().out
    assert "early stopping on val_loss (lower is better)" in out and "test_accuracy" in out
    assert {"confusion_matrix.png", "spectra.png"} <= {p.name for p in out_dir.iterdir()}
    metadata = json.loads((out_dir / "metadata.json").read_text())
    assert len(metadata["class_names"]) == 3 and metadata["target_names"] is None
    assert main(["export", str(out_dir / "model.keras"), "--name", "coffee", "--export-dir", str(export_dir)]) == 0
    capsys.readouterr()
    from dlimaging.data.dataset import load_dataset

    np.save(tmp_path / "two.npy", load_dataset("coffee").arrays["x_test"][:2])
    assert main(["predict", str(export_dir / "coffee"), str(tmp_path / "two.npy")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.split(": ")[1].split(" (p=")[0] in metadata["class_names"] for line in lines[1:])


@pytest.mark.parametrize("task, y, expected", [
    ("binary", np.arange(60) % 2, r"p\(1\)=0\.\d{3} → [01]$"),
    ("multilabel", np.stack([np.arange(60) % 2, np.arange(60) // 30, np.arange(60) % 3 == 0], 1).astype("int64"),
     r": 0=0\.\d{3}, 1=0\.\d{3}, 2=0\.\d{3}$"),
])
def test_binary_and_multilabel_train_export_predict(tmp_path, capsys, task, y, expected):
    import re

    x = np.random.default_rng(0).normal(size=(60, 20, 1)).astype("float32")
    np.savez(tmp_path / "d.npz", x=x, y=y)
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--task", task, "--model", "mlp", "--epochs", "1",
                 "--output", str(tmp_path / "run"), "--set", "hidden_units=4"]) == 0
    assert "early stopping on val_loss (lower is better)" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "run" / "model.keras"), "--name", "m",
                 "--export-dir", str(tmp_path / "sm")]) == 0
    capsys.readouterr()
    np.save(tmp_path / "x.npy", x[:2])
    assert main(["predict", str(tmp_path / "sm" / "m"), str(tmp_path / "x.npy")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].endswith(f"({task})") and len(lines) == 3
    assert all(re.search(expected, line) for line in lines[1:]), lines
