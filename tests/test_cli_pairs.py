"""Paired restoration data and percentile normalisation through the CLI: `train` on a folder of
low/ and high/ 16-bit TIFFs with --normalize percentile, `export`, and `predict` back in the input's units."""

import json

import numpy as np
import tifffile

from dlimaging.cli import main
from dlimaging.data.normalize import normalize_array
from dlimaging.serving.exports import (
    exported_predictor,
    read_metadata,
    resolve_version_dir,
)

TINY = ["--epochs", "1", "--batch-size", "4", "--set", "filters=4", "--set", "depth=1", "--patch-size", "8"]


def test_train_on_pairs_with_percentile_and_predict_in_the_inputs_units(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for i in range(4):
        high = (rng.random((16, 16)) * 20000 + 2000).astype("uint16")
        for kind, image in (("low", high // 8 + rng.integers(0, 200, (16, 16)).astype("uint16")), ("high", high)):
            (tmp_path / "data" / kind).mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(tmp_path / "data" / kind / f"f{i}.tif", image, photometric="minisblack")
    args = ["train", "--model", "unet", "--data", "data", *TINY, "--seed", "0"]
    assert main([*args, "--normalize", "bogus", "--output", "bad"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Received: --normalize='bogus'" in err and not (tmp_path / "bad").exists()
    assert main([*args, "--corruption", '{kind = "gaussian", sigma = 0.1}', "--output", "bad"]) == 2
    assert "`corruption` does not apply to a pairs source" in capsys.readouterr().err
    assert main([*args, "--normalize", "percentile", "--output", "run"]) == 0  # no --corruption: pairs
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert sorted(splits["train"] + splits["validation"] + splits["test"]) == [f"f{i}" for i in range(4)]
    assert main(["export", "run/model.keras", "--name", "care", "--export-dir", "saved"]) == 0
    version = resolve_version_dir(tmp_path / "saved" / "care")
    metadata = read_metadata(version)
    assert metadata["normalize"] == "percentile:1,99.8"
    low = (rng.random((12, 20)) * 3000 + 100).astype("uint16")  # another size, another brightness
    tifffile.imwrite(tmp_path / "new.tif", low, photometric="minisblack")
    assert main(["predict", "saved/care", "new.tif"]) == 0
    written = tifffile.imread(tmp_path / "new_restored.tif")
    assert written.dtype == np.uint16 and written.shape == (12, 20)  # the input's bit depth
    # the model saw the input by its percentiles; its output was mapped back into the input's units
    x = (low / 65535.0).astype("float32")[None, ..., None]
    scaled, (p_low, p_high) = normalize_array(x, (1.0, 99.8))
    out = exported_predictor(version, metadata)(scaled)["restored"] * (p_high - p_low) + p_low
    expected = np.clip(np.round(out[0, ..., 0] * 65535), 0, 65535)
    np.testing.assert_allclose(written, expected, atol=1.01)


def test_normalize_setting_of_tuning_files_and_tune(tmp_path, capsys):
    from dlimaging.tuning.experiment import ExperimentError, parse_experiment

    experiment = parse_experiment({"name": "t", "data": {"source": "digits", "normalize": "percentile"}})
    assert experiment.data.normalize == "percentile:1,99.8"
    assert parse_experiment({"name": "t", "data": {"source": "digits"}}).data.normalize == "dtype"
    try:
        parse_experiment({"name": "t", "data": {"source": "digits", "normalize": "percentile:90,10"}}, path="x.toml")
        raise AssertionError("not refused")
    except ExperimentError as error:
        assert "x.toml" in str(error) and "normalize" in str(error) and "'percentile:90,10'" in str(error)
    config = tmp_path / "t.toml"
    config.write_text('name = "t"\n[data]\nsource = "digits"\n')
    assert main(["tune", str(config), "--normalize", "zscore", "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Received: --normalize='zscore'" in err and not (tmp_path / "runs").exists()
