"""Issue 21 through the CLI: restoration exports in `request` and `predict`, `export --class-names`, and
`serving-config` with hostile names. Every refusal is one line on stderr, exit 2, and writes nothing."""

import json
import warnings

import numpy as np
import pytest
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
)
from PIL import Image

import dlimaging as dli
from dlimaging.cli import main


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Tiny U-Net exports for 1 and 4 channels and one of positive weights, and the .keras files of a binary, a regression and a U-Net model."""
    root = tmp_path_factory.mktemp("exports")
    dli.export_saved_model(dli.build_unet((16, 16, 1), depth=1, filters=2), root / "grey")
    dli.export_saved_model(dli.build_unet((16, 16, 4), depth=1, filters=2), root / "four")
    positive = dli.build_unet((16, 16, 1), depth=1, filters=2)  # weights > 0: a huge input overflows
    positive.set_weights([np.abs(w) + 0.5 for w in positive.get_weights()])
    dli.export_saved_model(positive, root / "positive")
    dli.build_mlp((6,), task="binary", hidden_units=(3,)).save(root / "binary.keras")
    dli.build_mlp((6,), task="regression", hidden_units=(3,)).save(root / "regression.keras")
    dli.build_mlp((6,), task="multilabel", num_classes=3, hidden_units=(3,)).save(root / "multilabel.keras")
    dli.build_unet((16, 16, 1), depth=1, filters=2).save(root / "unet.keras")
    return root


def _one_line(capsys, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert all(fragment in err[0] for fragment in fragments), err[0]
    assert "internal error" not in err[0]
    return err[0]


def test_request_sends_a_restoration_input_at_its_own_size(exports, tmp_path, capsys):
    """Class 2: the served signature takes any size; a 37×53 image is not resized to the 16×16 patch."""
    image = np.random.default_rng(0).integers(0, 256, (37, 53), dtype="uint8")
    Image.fromarray(image).save(tmp_path / "odd.png")
    assert main(["request", str(exports / "grey"), str(tmp_path / "odd.png")]) == 0
    body = json.loads(capsys.readouterr().out)
    sent = np.array([instance["image"] for instance in body["instances"]], "float32")
    assert sent.shape == (1, 37, 53, 1)
    np.testing.assert_allclose(sent[0, ..., 0], image / 255.0, atol=1e-6)
    # What predict restores from the same file has that size too.
    assert main(["predict", str(exports / "grey"), str(tmp_path / "odd.png"), "--out", str(tmp_path / "r.npy")]) == 0
    assert np.load(tmp_path / "r.npy").shape == (1, 37, 53, 1)


@pytest.mark.parametrize(
    "model, names, message",
    [
        ("binary.keras", "yes,no,maybe", "`class_names` must have 2 names for a binary model"),
        ("binary.keras", "yes", "Received 1: class_names=['yes']"),
        ("multilabel.keras", "a,b", "one name per output unit (3) for this multilabel model"),
        ("regression.keras", "yes,no", "a regression model has none"),
        ("unet.keras", "yes,no", "a restoration model has none"),
    ],
)
def test_export_refuses_class_names_that_do_not_fit_and_writes_nothing(exports, tmp_path, capsys, model, names,
                                                                       message):
    """Class 2: class names that the task or the output size cannot use are refused, not ignored."""
    assert main(["export", str(exports / model), "--name", "m", "--export-dir", str(tmp_path / "saved"),
                 "--class-names", names]) == 2
    _one_line(capsys, "dlimaging: error:", message)
    assert not (tmp_path / "saved").exists()


def test_export_keeps_two_class_names_of_a_binary_model_and_predict_prints_them(exports, tmp_path, capsys):
    assert main(["export", str(exports / "binary.keras"), "--name", "b", "--export-dir", str(tmp_path),
                 "--class-names", "no,yes"]) == 0
    np.save(tmp_path / "x.npy", np.zeros((1, 6), "float32"))
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "b"), str(tmp_path / "x.npy")]) == 0
    assert "p(yes)=" in capsys.readouterr().out


def _restoration_cases(tmp_path):
    (tmp_path / "text.png").write_text("not an image, whatever its name says")
    (tmp_path / "nothing.png").write_bytes(b"")
    np.save(tmp_path / "empty.npy", np.zeros((0, 16, 16), "float32"))
    np.save(tmp_path / "flat.npy", np.zeros((16, 0), "float32"))
    np.save(tmp_path / "words.npy", np.array(["a", "b"]))
    np.save(tmp_path / "complex.npy", np.zeros((16, 16), "complex128"))
    np.save(tmp_path / "huge.npy", np.full((16, 16), 1e300))  # float64 beyond float32's range
    Image.fromarray(np.zeros((20, 24), "uint8")).save(tmp_path / "grey.png")
    return [
        ("grey", "text.png", "is unreadable (UnidentifiedImageError"),
        ("grey", "nothing.png", "is unreadable"),
        ("grey", "empty.npy", "has shape (0, 16, 16)"),
        ("grey", "flat.npy", "has shape (16, 0)"),
        ("grey", "words.npy", "must hold real numbers. Received dtype <U1"),
        ("grey", "complex.npy", "must hold real numbers. Received dtype complex128"),
        ("grey", "huge.npy", "holds values up to 1e+300, beyond float32's range"),
        ("four", "grey.png", "has 1 channel(s) (grey); the model restores 4-channel inputs of 4 channel(s)"),
    ]


def test_restoration_predict_refuses_bad_files_in_one_line_naming_them(exports, tmp_path, capsys):
    """Classes 4 and 5: a file that is no image, an empty batch, values float32 cannot hold, the wrong
    channels: one line naming the file, exit 2, no warning before it and nothing written."""
    np.save(tmp_path / "edge.npy", np.full((16, 16), 3e38, "float32"))  # float32, but its output overflows
    cases = _restoration_cases(tmp_path) + [("positive", "edge.npy", "the model's output holds NaN or inf values")]
    for export, name, message in cases:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(["predict", str(exports / export), str(tmp_path / name), "--out", str(tmp_path / "out")]) == 2
        assert not caught, [str(w.message) for w in caught]
        _one_line(capsys, "dlimaging: error:", repr(str(tmp_path / name)), message)
        assert not (tmp_path / "out").exists()


def test_request_refuses_the_same_files_in_one_line(exports, tmp_path, capsys):
    for export, name, message in _restoration_cases(tmp_path):
        assert main(["request", str(exports / export), str(tmp_path / name)]) == 2
        _one_line(capsys, "dlimaging: error:", repr(str(tmp_path / name)), message)


def _model_server_config():
    """TF Serving's ModelServerConfig, rebuilt here from tensorflow_serving/config/model_server_config.proto
    (the fields dlimaging writes, with their numbers): the test's own reader, not dlimaging's."""
    text = """
        name: "model_server_config.proto" package: "tensorflow.serving" syntax: "proto3"
        message_type { name: "ModelConfig"
          field { name: "name" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
          field { name: "base_path" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL }
          field { name: "model_platform" number: 4 type: TYPE_STRING label: LABEL_OPTIONAL } }
        message_type { name: "ModelConfigList"
          field { name: "config" number: 1 type: TYPE_MESSAGE label: LABEL_REPEATED
                  type_name: ".tensorflow.serving.ModelConfig" } }
        message_type { name: "ModelServerConfig" oneof_decl { name: "config" }
          field { name: "model_config_list" number: 1 type: TYPE_MESSAGE label: LABEL_OPTIONAL oneof_index: 0
                  type_name: ".tensorflow.serving.ModelConfigList" } }
    """
    pool = descriptor_pool.DescriptorPool()
    pool.Add(text_format.Parse(text, descriptor_pb2.FileDescriptorProto()))
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.ModelServerConfig"))()


HOSTILE = ['a"b', "back\\slash", "new\nline", "δέλτα", "it's", 'x" } config { name: "evil']


def test_serving_config_escapes_quotes_and_parses_back(tmp_path, capsys):
    """Class 7: a quote in a path or a name cannot end a string early and add configuration."""
    for name in HOSTILE + ["plain"]:
        (tmp_path / "saved" / name / "1").mkdir(parents=True)
    base = '/mo"dels\\ü'
    assert main(["serving-config", str(tmp_path / "saved"), "--base-path", base]) == 0
    text = (tmp_path / "saved" / "models.config").read_text()
    assert text.startswith("# written by dlimaging serving-config\n") and text.isascii()
    config = _model_server_config()
    text_format.Parse(text, config)
    got = [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config]
    assert got == [(name, f"{base}/{name}", "tensorflow") for name in sorted(HOSTILE + ["plain"])]
    # Written again over its own file: the same text.
    assert main(["serving-config", str(tmp_path / "saved"), "--base-path", base]) == 0
    assert (tmp_path / "saved" / "models.config").read_text() == text


def test_serving_config_refuses_a_name_that_is_not_utf8_text(tmp_path, capsys):
    (tmp_path / "saved" / "ok" / "1").mkdir(parents=True)
    assert main(["serving-config", str(tmp_path / "saved"), "--base-path", "/m\udcff"]) == 2
    _one_line(capsys, "`base_path` is not valid UTF-8 text")
    assert not (tmp_path / "saved" / "models.config").exists()
