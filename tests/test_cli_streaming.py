"""Issue 19, section 2, through the command line: `--cache` on train and tune, `[data] cache`,
the cache choice printed, and `splits.json` in the run folder."""

import json
import pathlib

import pytest

from dlimaging.cli import main
from tests.data.test_streaming import make_folder

EVERY_FILE = sorted(f"{c}/{i:02d}.png" for c in "abc" for i in range(10))


def _one_line(capsys, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("dlimaging") and all(f in err[0] for f in fragments), err[0]


def _splits(path: pathlib.Path) -> dict:
    record = json.loads(path.read_text())
    assert sorted(record["train"] + record["validation"] + record["test"]) == EVERY_FILE  # each file once
    return record


def test_train_streams_a_class_folder_and_records_its_splits(tmp_path, capsys):
    folder = make_folder(tmp_path / "cells")
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--epochs", "1", "--batch-size", "8", "--cache", "none",
                 "--set", "filters=4", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Cache: none (cache='none'; the decoded training split (24 x (8, 8, 1) float32)" in printed
    record = _splits(out / "splits.json")
    assert record["seed"] == 0 and record["source"] == str(folder) and len(record["test"]) == 3
    assert (out / "confusion_matrix.png").is_file()  # drawn batch by batch, without arrays
    assert not [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".png"]  # nothing beside the data


@pytest.mark.parametrize("command", ["train", "tune"])
def test_a_bad_cache_is_one_line(tmp_path, capsys, command):
    args = ["train", "--data", "digits"] if command == "train" else ["tune", "tuning/digits_cnn.toml"]
    assert main([*args, "--cache", "ram"]) == 2
    _one_line(capsys, "--cache", "'ram'", "auto", "disk")


def _experiment(tmp_path, folder, cache: str) -> pathlib.Path:
    path = tmp_path / "folder_cnn.toml"
    path.write_text(f'name = "folder_cnn"\n[data]\nsource = {json.dumps(str(folder))}\nbatch_size = 8\n'
                    f'cache = "{cache}"\n[model]\nfamily = "cnn"\n[search]\nfilters = [4]\ndense_units = 8\n'
                    '[tuner]\nmax_trials = 1\nmax_epochs = 1\n')
    return path


def test_tune_takes_data_cache_and_writes_splits_json(tmp_path, capsys):
    folder = make_folder(tmp_path / "cells")
    config = _experiment(tmp_path, folder, "memory")
    assert main(["tune", str(config), "--runs-dir", str(tmp_path / "runs"), "--no-export", "--cache", "disk"]) == 0
    _splits(tmp_path / "runs" / "folder_cnn" / "splits.json")
    bad = _experiment(tmp_path, folder, "ram")
    assert main(["tune", str(bad), "--runs-dir", str(tmp_path / "runs")]) == 2
    _one_line(capsys, "[data] cache", "'ram'")
