"""Segmentation exports: any spatial size in, probabilities and a class map out, PNG class maps written."""

import numpy as np
import pytest
from PIL import Image

from dlimaging.errors import InputError
from dlimaging.models import build_unet
from dlimaging.serving.export import export_saved_model, infer_task
from dlimaging.serving.exports import predict_exported, read_metadata
from dlimaging.serving.segmentation import segment_files


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = build_unet((16, 16, 1), 3, task="segmentation", depth=2, filters=4)
    folder = tmp_path_factory.mktemp("export") / "seg"
    path = export_saved_model(model, folder, class_names=["bg", "cell", "edge"])
    return model, path


def test_the_export_takes_any_size_and_serves_a_class_map(exported):
    model, path = exported
    metadata = read_metadata(path)
    assert metadata["task"] == "segmentation" and metadata["outputs"] == ["probabilities", "class_map"]
    assert metadata["input"]["any_size"]
    x = np.random.default_rng(0).random((2, 21, 13, 1), dtype="float32")
    out = predict_exported(path, x, metadata)
    assert out["probabilities"].shape == (2, 21, 13, 3) and out["class_map"].shape == (2, 21, 13)
    np.testing.assert_array_equal(out["class_map"], out["probabilities"].argmax(-1))
    model.dlimaging_task = None
    assert infer_task(model) == "segmentation"  # read from the softmax at each pixel


def test_segment_files_writes_png_class_maps_and_replaces_nothing(exported, tmp_path):
    _, path = exported
    image = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(1).random((19, 23)) * 255).astype("uint8")).save(image)
    metadata = read_metadata(path)
    (_, first, shape), = segment_files(path, metadata, [image])
    assert first == tmp_path / "a_mask.png" and shape == (19, 23, 1)
    ids = np.asarray(Image.open(first))
    assert ids.shape == (19, 23) and ids.dtype == np.uint8 and ids.max() < 3
    (_, second, _), = segment_files(path, metadata, [image])
    assert second == tmp_path / "a_mask-2.png"
    with pytest.raises(InputError, match=r"--out .*a_mask.png.* exists"):
        segment_files(path, metadata, [image], out=first)
