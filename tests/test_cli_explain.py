"""`dlimaging explain` on models that are not image CNNs: an MLP of a vector input, a binary CNN."""

import json

import numpy as np
import pytest
from PIL import Image

import dlimaging as dli
from dlimaging.cli import main


@pytest.fixture(scope="module")
def mlp_files(tmp_path_factory):
    """An MLP of 6 features, saved as `train` saves it and exported, and a .npy of two inputs."""
    tmp_path = tmp_path_factory.mktemp("mlp")
    model = dli.build_mlp((6,), 3, hidden_units=(8,))
    model.save(tmp_path / "model.keras")
    (tmp_path / "metadata.json").write_text(json.dumps({"task": "classification", "class_names": ["a", "b", "c"]}))
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(2, 6)).astype("float32"))
    dli.export_saved_model(model, tmp_path / "saved" / "vec")
    return tmp_path


@pytest.mark.parametrize("model", ["model.keras", "saved/vec"])
def test_explain_draws_the_saliency_of_a_vector_input(mlp_files, capsys, model):
    out = mlp_files / f"s_{model.replace('/', '_')}.png"  # explain never replaces a figure
    assert main(["explain", str(mlp_files / model), str(mlp_files / "x.npy"), "--out", str(out),
                 "--method", "saliency", "--sample", "1"]) == 0, capsys.readouterr().err
    assert "saliency of class " in capsys.readouterr().out and Image.open(out).size == (800, 460)


@pytest.mark.parametrize("method", ["feature-maps", "filters", "grad-cam"])
def test_explain_refuses_the_cnn_methods_on_an_mlp_in_one_line(mlp_files, capsys, method):
    assert main(["explain", str(mlp_files / "model.keras"), str(mlp_files / "x.npy"), "--out",
                 str(mlp_files / "m.png"), "--method", method]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dlimaging: error: ")
    assert "1D and 2D CNNs" in err if method == "grad-cam" else "has no convolution layer" in err


def test_explain_names_the_class_a_binary_model_answers(tmp_path, capsys):
    model = dli.build_cnn((8, 8, 1), task="binary", filters=(4,), batch_norm=False, dropout=0.0)
    model.layers[-1].bias.assign([-20.0])  # it answers "no" to anything
    model.save(tmp_path / "model.keras")
    (tmp_path / "metadata.json").write_text(json.dumps({"task": "binary", "class_names": ["no", "yes"]}))
    np.save(tmp_path / "x.npy", np.zeros((8, 8, 1), "float32"))
    args = ["explain", str(tmp_path / "model.keras"), str(tmp_path / "x.npy"), "--out", str(tmp_path / "c.png")]
    assert main(args) == 0
    assert "hires of block1_act1 for class no (p=1.000)" in capsys.readouterr().out
    args[-1] = str(tmp_path / "c0.png")  # explain never replaces a figure
    assert main(args + ["--class", "0"]) == 0  # the unit asked for: the probability of "yes"
    assert "for class yes (p=0.000)" in capsys.readouterr().out
