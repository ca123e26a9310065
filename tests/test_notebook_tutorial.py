"""Notebook 08's CIFAR-10 branch, offline.

The test suite executes every notebook as it is, which on a machine without a prepared CIFAR-10
runs notebook 08 on the digits. Its CIFAR-10 branch is the same code with another source; here its
code cells run on TensorFlow Datasets' mock CIFAR-10 (random 32x32x3 images, no network).
"""

import json
import pathlib

import pytest

tfds = pytest.importorskip("tensorflow_datasets")

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "08_tensorflow_cnn_tutorial.ipynb"


def test_tutorial_cifar10_branch_runs_on_mock_data(monkeypatch):
    monkeypatch.setenv("DLIMAGING_TUTORIAL_SOURCE", "tfds:cifar10")
    notebook = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cells = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    namespace: dict = {}
    ran = 0
    with tfds.testing.mock_data(num_examples=200):
        for source in cells:
            if "model.evaluate(data.test" in source:
                break  # the mock labels are random: the test accuracy is chance, so stop before judging it
            exec(compile(source.replace("%matplotlib inline", ""), str(NOTEBOOK), "exec"), namespace)
            ran += 1
    assert ran >= 6
    data, model = namespace["data"], namespace["model"]
    assert namespace["SOURCE"] == "tfds:cifar10"
    assert data.input_shape == (32, 32, 3) and data.num_classes == 10
    assert namespace["PADDING"] == "valid"  # 32x32 survives the tutorial's "valid" convolutions
    assert model.get_layer("block3_conv1").output.shape[1:3] == (4, 4)  # 32 -> 30 -> 15 -> 13 -> 6 -> 4, as in the tutorial
    assert len(namespace["history"].history["loss"]) == namespace["EPOCHS"]
