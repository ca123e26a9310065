"""Issue 21, class 1: no command replaces a file dlimaging did not write in this run. A name the user
gives that is taken is refused in one line naming it; a name dlimaging makes up moves to the next
free one, printed. Also the names `explain --out` takes (classes 4 and 6)."""

import os

import numpy as np
import pytest
from PIL import Image

import dlimaging as dli
from dlimaging.cli import main
from dlimaging.files import folder_lock


def _one_line(capsys, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert all(fragment in err[0] for fragment in fragments), err[0]
    return err[0]


def _grey(path, value):
    Image.fromarray(np.full((16, 16), value, "uint8")).save(path)


def test_predict_restoration_never_writes_two_inputs_or_a_users_file_to_one_name(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = dli.build_unet((16, 16, 1), depth=1, filters=4, compile=False)
    dli.export_saved_model(model, tmp_path / "saved" / "den", task="restoration")
    _grey(tmp_path / "a.png", 40)
    _grey(tmp_path / "a.jpg", 200)
    _grey(tmp_path / "mine.png", 90)
    (tmp_path / "mine_restored.png").write_bytes(b"the user's own")
    assert main(["predict", "saved/den", "a.png", "a.jpg", "mine.png"]) == 0
    out = capsys.readouterr().out
    assert "a.png (16, 16, 1) → a_restored.png" in out and "a.jpg (16, 16, 1) → a_restored-2.png" in out
    assert "mine.png (16, 16, 1) → mine_restored-2.png" in out
    assert (tmp_path / "mine_restored.png").read_bytes() == b"the user's own"
    first, second = (np.asarray(Image.open(tmp_path / name)) for name in ("a_restored.png", "a_restored-2.png"))
    assert not np.array_equal(first, second)  # each input's own answer, neither replaced by the other

    # A given --out that exists (the user's, or the input itself) is refused before any work; nothing changes.
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert main(["predict", "saved/den", "a.png", "--out", "mine_restored.png"]) == 2
    _one_line(capsys, "--out mine_restored.png already exists and was left as it is",
              "dlimaging never replaces a file it did not write in this run")
    assert main(["predict", "saved/den", "a.png", "--out", "a.png"]) == 2
    _one_line(capsys, "is the input itself")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


@pytest.fixture
def explain_setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dli.build_cnn((8, 8, 1), 3, filters=(4,), batch_norm=False, dropout=0.0).save(tmp_path / "model.keras")
    Image.fromarray(np.arange(64, dtype="uint8").reshape(8, 8) * 4).save(tmp_path / "digit.png")
    (tmp_path / "broken.keras").write_bytes(b"not a model: loading it would fail")
    return tmp_path


def test_explain_never_overwrites_its_input_or_an_existing_file(explain_setup, capsys):
    digit = (explain_setup / "digit.png").read_bytes()
    assert main(["explain", "model.keras", "digit.png", "--out", "digit.png"]) == 2
    _one_line(capsys, "`out` digit.png is an input of this run; it is never overwritten")
    assert (explain_setup / "digit.png").read_bytes() == digit
    assert main(["explain", "model.keras", "digit.png", "--out", "k.png", "--method", "filters"]) == 0
    figure = (explain_setup / "k.png").read_bytes()
    assert main(["explain", "model.keras", "digit.png", "--out", "k.png", "--method", "filters"]) == 2
    _one_line(capsys, "`out` k.png already exists and was left as it is", "Pass another `out`")
    assert (explain_setup / "k.png").read_bytes() == figure


def test_explain_prints_the_path_it_writes_and_refuses_a_folder_or_an_empty_name(explain_setup, capsys):
    assert main(["explain", "model.keras", "digit.png", "--out", "cam", "--method", "filters"]) == 0
    assert capsys.readouterr().out.startswith("Wrote cam.png: filters of ")
    assert (explain_setup / "cam.png").read_bytes()[:4] == b"\x89PNG" and not (explain_setup / "cam").exists()
    assert main(["explain", "model.keras", "digit.png", "--out", "cam.PDF", "--method", "filters"]) == 0
    assert (explain_setup / "cam.PDF").read_bytes()[:4] == b"%PDF"
    (explain_setup / "figs").mkdir()
    for out in (".", "figs", "figs/", ".png", ""):
        assert main(["explain", "broken.keras", "digit.png", "--out", out]) == 2
        _one_line(capsys, "`out` must be a")
    assert not (explain_setup / ".png").exists() and not any((explain_setup / "figs").iterdir())


@pytest.mark.parametrize("out", ["notes.txt", "table.csv", "model2.keras", "x.PNG.jpg"])
def test_explain_refuses_a_suffix_it_cannot_write_before_any_work(explain_setup, capsys, out):
    # broken.keras is never loaded: the name is checked first.
    assert main(["explain", "broken.keras", "digit.png", "--out", out]) == 2
    _one_line(capsys, "`out` must end in .png, .pdf or .svg", f"Received: out={out!r}")
    assert not (explain_setup / out).exists()


def test_train_locks_its_output_folder_and_replaces_none_of_its_files(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train = ["train", "--data", "digits", "--model", "mlp", "--epochs", "1", "--batch-size", "128"]
    with folder_lock(tmp_path / "out", command="dlimaging train"):  # another train, running on out
        assert main([*train, "--output", "out"]) == 2
        _one_line(capsys, f"out is in use by dlimaging train (PID {os.getpid()}")
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".lock"]  # its lock, untouched
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "curves.png").write_bytes(b"the user's curves")
    assert main([*train, "--output", "out"]) == 2
    _one_line(capsys, "--output out/curves.png already exists and was left as it is", "Pass another --output")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["curves.png"]
    assert (tmp_path / "out" / "curves.png").read_bytes() == b"the user's curves"

    # The default folder, in use by another train: the next free one.
    with folder_lock(tmp_path / "runs" / "train_digits_mlp", command="dlimaging train"):
        assert main(train) == 0
    assert "Output folder: runs/train_digits_mlp-2" in capsys.readouterr().out
    assert (tmp_path / "runs" / "train_digits_mlp-2" / "model.keras").is_file()
    assert not (tmp_path / "runs" / "train_digits_mlp").exists()
    assert not (tmp_path / "runs" / "train_digits_mlp-2" / ".lock").exists()  # released
