"""TF Serving's REST bodies and models.config, and a real server where one is installed."""

import json
import shutil
import subprocess
import time

import numpy as np
import pytest

import dlimaging as dli
from dlimaging import serving


@pytest.fixture(scope="module")
def classifier():
    # Augmentation and dropout in the model: the export must switch both off.
    return dli.build_cnn(
        (8, 8, 1), 3, filters=(4,), dense_units=(8,), dropout=0.5,
        augmentation={"flip": "horizontal", "rotation": 0.2, "noise": 0.3},
    )


def test_rest_request_matches_tf_serving_format(tmp_path, classifier, rng):
    path = dli.export_saved_model(classifier, tmp_path / "m")
    x = rng.uniform(0, 1, (2, 8, 8, 1)).astype("float32")
    body = serving.rest_request(x, serving.read_metadata(path))
    # TF Serving's REST API, row format: {"signature_name": ..., "instances": [{"input": value}, ...]}
    assert set(body) == {"signature_name", "instances"}
    assert body["signature_name"] == "serving_default"
    assert len(body["instances"]) == 2
    assert set(body["instances"][0]) == {"image"}
    np.testing.assert_allclose(np.array(body["instances"][1]["image"]), x[1])
    json.dumps(body)  # plain JSON


def test_serving_response_format():
    outputs = {"probabilities": np.array([[0.2, 0.8]], "float32"), "class_id": np.array([1]),
               "class_name": np.array([b"dog"], dtype=object)}
    response = serving.serving_response(outputs)
    assert response == {"predictions": [{"class_id": 1, "class_name": "dog",
                                         "probabilities": pytest.approx([0.2, 0.8])}]}


def test_serving_config(tmp_path, classifier):
    dli.export_saved_model(classifier, tmp_path / "alpha")
    dli.export_saved_model(classifier, tmp_path / "beta")
    (tmp_path / "not_a_model").mkdir()
    text = serving.serving_config(tmp_path)
    assert text.startswith("# written by dlimaging serving-config\nmodel_config_list {")
    assert 'name: "alpha"' in text and 'base_path: "/models/beta"' in text
    assert "not_a_model" not in text
    assert text.count("config {") == 2


@pytest.mark.skipif(shutil.which("tensorflow_model_server") is None,
                    reason="no tensorflow_model_server binary on PATH (install TF Serving to run this test)")
def test_served_by_tensorflow_model_server(tmp_path, classifier, rng):
    import socket
    import urllib.request

    dli.export_saved_model(classifier, tmp_path / "digits")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([
        "tensorflow_model_server", f"--rest_api_port={port}", "--port=0",
        "--model_name=digits", f"--model_base_path={tmp_path / 'digits'}",
    ])
    try:
        x = rng.uniform(0, 1, (2, 8, 8, 1)).astype("float32")
        metadata = serving.read_metadata(tmp_path / "digits" / "1")
        body = json.dumps(serving.rest_request(x, metadata)).encode()
        url = f"http://127.0.0.1:{port}/v1/models/digits:predict"
        deadline = time.time() + 60
        while True:
            try:
                answer = json.loads(urllib.request.urlopen(urllib.request.Request(url, body), timeout=5).read())
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        got = np.array([row["probabilities"] for row in answer["predictions"]])
        np.testing.assert_allclose(got, classifier.predict(x, verbose=0), atol=1e-5)
    finally:
        server.terminate()
        server.wait(timeout=30)
