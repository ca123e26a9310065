"""Issue 19, section 2, through the command line: a restoration folder trains streamed
(`--cache none`), writes splits.json, and a file that breaks mid-training is one line, exit 2."""

import json

from dlimaging.cli import main
from dlimaging.data import item_stream
from tests.data.test_item_stream import clean_folder


def _train(folder, out):
    return main(["train", "--task", "restoration", "--model", "unet", "--data", str(folder), "--epochs", "1",
                 "--corruption", '{kind = "gaussian", sigma = 0.1}', "--patch-size", "16", "--cache", "none",
                 "--set", "filters=4", "--set", "depth=1", "--output", str(out)])


def test_a_restoration_folder_trains_streamed_and_a_broken_file_is_one_line(tmp_path, capsys, monkeypatch):
    folder = clean_folder(tmp_path / "clean")
    assert _train(folder, tmp_path / "run") == 0
    assert "Cache: none" in capsys.readouterr().out
    record = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert sorted(record["train"] + record["validation"] + record["test"]) == [f"{i}.tif" for i in range(6)]
    read = item_stream.read_image

    def breaks(path):  # listed fine, then damaged while training
        if path.endswith(record["train"][0]):
            raise item_stream.InputError(f"Image {path!r} is unreadable (damaged while training).")
        return read(path)

    monkeypatch.setattr(item_stream, "read_image", breaks)
    assert _train(folder, tmp_path / "run2") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dlimaging: error: Image ") and record["train"][0] in err[0], err
