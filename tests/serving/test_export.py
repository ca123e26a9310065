"""export_saved_model: versioned, verified, atomic SavedModels whose signature matches the Keras model."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import dlimaging as dli
from dlimaging import registry, serving
from dlimaging.cli import main
from dlimaging.errors import InputError
from dlimaging.serving import export as export_module

BIN = pathlib.Path(sys.executable).parent


@pytest.fixture(scope="module")
def classifier():
    # Augmentation and dropout in the model: the export must switch both off.
    return dli.build_cnn(
        (8, 8, 1), 3, filters=(4,), dense_units=(8,), dropout=0.5,
        augmentation={"flip": "horizontal", "rotation": 0.2, "noise": 0.3},
    )


def _signature(path):
    return tf.saved_model.load(str(path)).signatures["serving_default"]


def test_layout_and_version_numbers(tmp_path, classifier):
    base = tmp_path / "digits"
    assert dli.export_saved_model(classifier, base) == base / "1"
    assert dli.export_saved_model(classifier, base) == base / "2"
    assert dli.export_saved_model(classifier, base, version=7) == base / "7"
    assert dli.export_saved_model(classifier, base) == base / "8"
    assert sorted(p.name for p in base.iterdir()) == ["1", "2", "7", "8"]
    for version in ("1", "8"):
        assert (base / version / "saved_model.pb").is_file()
        assert (base / version / "variables").is_dir()


def test_existing_version_is_never_overwritten(tmp_path, classifier):
    base = tmp_path / "m"
    path = dli.export_saved_model(classifier, base, version=3)
    before = (path / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(ValueError, match=r"`version` 3 already exists"):
        dli.export_saved_model(classifier, base, version=3)
    assert (path / "saved_model.pb").stat().st_mtime_ns == before
    assert sorted(p.name for p in base.iterdir()) == ["3"]


def test_signature_names_and_dtypes(tmp_path, classifier):
    path = dli.export_saved_model(classifier, tmp_path / "m", class_names=["a", "b", "c"])
    fn = _signature(path)
    _, inputs = fn.structured_input_signature
    assert list(inputs) == ["image"]
    assert inputs["image"].dtype == tf.float32
    assert inputs["image"].shape.as_list() == [None, 8, 8, 1]
    outputs = fn.structured_outputs
    assert set(outputs) == {"probabilities", "class_id", "class_name"}
    assert outputs["probabilities"].dtype == tf.float32
    assert outputs["class_id"].dtype == tf.int64
    assert outputs["class_name"].dtype == tf.string


@pytest.mark.parametrize("batch", [1, 13])
def test_outputs_equal_keras_model(tmp_path, classifier, batch, rng):
    path = dli.export_saved_model(classifier, tmp_path / "m", class_names=["a", "b", "c"])
    x = rng.uniform(0, 1, (batch, 8, 8, 1)).astype("float32")
    got = _signature(path)(image=tf.constant(x))
    expected = classifier.predict(x, verbose=0)
    np.testing.assert_allclose(got["probabilities"].numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(got["class_id"].numpy(), expected.argmax(-1))
    names = [n.decode() for n in got["class_name"].numpy()]
    assert names == [["a", "b", "c"][i] for i in expected.argmax(-1)]


def test_repeated_calls_identical_with_augmentation(tmp_path, classifier, rng):
    path = dli.export_saved_model(classifier, tmp_path / "m")
    fn = _signature(path)
    x = tf.constant(rng.uniform(0, 1, (5, 8, 8, 1)).astype("float32"))
    first = fn(image=x)["probabilities"].numpy()
    for _ in range(3):
        np.testing.assert_array_equal(fn(image=x)["probabilities"].numpy(), first)
    # Without training=False the augmentation would act: check it is really there.
    assert not np.allclose(classifier(x, training=True), classifier(x, training=True))


@pytest.mark.parametrize(
    "builder, shape, kwargs, input_name, outputs",
    [
        (dli.build_cnn, (40, 1), {"num_classes": 4}, "signal", {"probabilities", "class_id"}),
        (dli.build_mlp, (6,), {"task": "regression", "num_outputs": 2}, "features", {"predictions"}),
        (dli.build_mlp, (6,), {"task": "binary"}, "features", {"probabilities"}),
        (dli.build_mlp, (6,), {"task": "multilabel", "num_classes": 3}, "features", {"probabilities"}),
        (dli.build_cnn, (4, 4, 4, 1), {"num_classes": 2, "filters": (2,)}, "volume", {"probabilities", "class_id"}),
    ],
)
def test_inputs_and_outputs_by_task(tmp_path, builder, shape, kwargs, input_name, outputs, rng):
    model = builder(shape, **kwargs)
    path = dli.export_saved_model(model, tmp_path / "m")
    fn = _signature(path)
    assert list(fn.structured_input_signature[1]) == [input_name]
    assert set(fn.structured_outputs) == outputs
    x = rng.uniform(0, 1, (3,) + shape).astype("float32")
    key = "predictions" if "predictions" in outputs else "probabilities"
    np.testing.assert_allclose(fn(**{input_name: tf.constant(x)})[key], model.predict(x, verbose=0), atol=1e-5)


def test_metadata(tmp_path, classifier):
    path = dli.export_saved_model(
        classifier, tmp_path / "digits", class_names=["a", "b", "c"],
        metadata={"hyperparameters": {"dropout": 0.5}, "metrics": {"test_accuracy": 0.9}},
    )
    info = json.loads((path / "assets" / "dlimaging.json").read_text())
    assert info["class_names"] == ["a", "b", "c"]
    assert info["input"] == {"name": "image", "shape": [8, 8, 1], "dtype": "float32", "value_range": [0.0, 1.0],
                             "axis": None, "features": None, "any_size": False}
    assert info["target_names"] is None
    assert info["task"] == "classification"
    assert info["hyperparameters"] == {"dropout": 0.5}
    assert info["metrics"] == {"test_accuracy": 0.9}
    assert info["versions"]["tensorflow"] == tf.__version__
    assert set(info["versions"]) == {"dlimaging", "tensorflow", "keras"}
    assert info["version"] == 1 and info["name"] == "digits"
    assert info["created"].endswith("+00:00")


def test_mismatch_publishes_nothing(tmp_path, classifier, monkeypatch):
    original = export_module._serving_function

    def broken(model, task, class_names, *more):
        serve = original(model, task, class_names, *more)
        return lambda x: {k: (v + 0.5 if k == "probabilities" else v) for k, v in serve(x).items()}

    monkeypatch.setattr(export_module, "_serving_function", broken)
    with pytest.raises(export_module.ExportError, match="differs from the Keras model"):
        dli.export_saved_model(classifier, tmp_path / "m")
    assert list((tmp_path / "m").iterdir()) == []


def test_bad_arguments(tmp_path, classifier):
    with pytest.raises(ValueError, match=r"one name per output unit \(3\) for this classification model"):
        dli.export_saved_model(classifier, tmp_path / "m", class_names=["a"])
    with pytest.raises(ValueError, match="Received: version=0"):
        dli.export_saved_model(classifier, tmp_path / "m", version=0)
    with pytest.raises(ValueError, match="must be a keras.Model"):
        dli.export_saved_model("model.keras", tmp_path / "m")


def test_loads_in_a_process_that_imports_only_tensorflow(tmp_path, classifier, rng):
    path = dli.export_saved_model(classifier, tmp_path / "m", class_names=["a", "b", "c"])
    x = rng.uniform(0, 1, (2, 8, 8, 1)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import sys, numpy as np, tensorflow as tf
        fn = tf.saved_model.load({str(path)!r}).signatures["serving_default"]
        out = fn(image=tf.constant(np.load({str(tmp_path / 'x.npy')!r})))
        assert not any(m.startswith("dlimaging") for m in sys.modules), "dlimaging was imported"
        print(",".join(str(v) for v in out["probabilities"].numpy().ravel()))
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    got = np.array([float(v) for v in result.stdout.strip().splitlines()[-1].split(",")])
    np.testing.assert_allclose(got, classifier.predict(x, verbose=0).ravel(), atol=1e-6)


def test_killed_export_leaves_no_version_folder(tmp_path):
    # The child pauses after writing, inside the verification step; it is killed there.
    script = textwrap.dedent(f"""
        import sys, time
        import dlimaging as dli
        from dlimaging.serving import export
        def stalled(*args, **kwargs):
            print("WRITTEN", flush=True)
            time.sleep(120)
        export._verify = stalled
        model = dli.build_mlp((4,), 2, hidden_units=(3,))
        dli.export_saved_model(model, {str(tmp_path / 'm')!r})
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stdout.readline()
        assert line.strip() == "WRITTEN"
        leftovers = list((tmp_path / "m").iterdir())
        assert leftovers and all(p.name.startswith(".tmp-") for p in leftovers)  # it was mid-write
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    names = [p.name for p in (tmp_path / "m").iterdir()]
    assert not any(name.isdigit() for name in names)
    # A later export still starts at version 1.
    model = dli.build_mlp((4,), 2, hidden_units=(3,))
    assert dli.export_saved_model(model, tmp_path / "m").name == "1"


def test_a_foreign_model_with_a_numeric_output_is_read_as_regression(tmp_path):
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="relu")(inputs))
    path = dli.export_saved_model(model, tmp_path / "m")
    info = json.loads((path / "assets" / "dlimaging.json").read_text())
    assert info["task"] == "regression" and info["outputs"] == ["predictions"]
    # class names have no place in a regression export: refused, not dropped
    with pytest.raises(ValueError, match=r"`class_names` is only for tasks with classes; a regression model has none"):
        dli.export_saved_model(model, tmp_path / "m", class_names=["a", "b"], task="regression")


def test_model_dir_must_end_in_a_plain_name_and_be_writable(tmp_path, classifier):
    for model_dir in (tmp_path / "..", tmp_path / "a b", pathlib.Path(".")):
        with pytest.raises(ValueError, match=r"`model_dir` must be a plain folder name"):
            dli.export_saved_model(classifier, model_dir)
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ValueError, match=r"sits under a file"):
        dli.export_saved_model(classifier, tmp_path / "file" / "m")
    assert (tmp_path / "file").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"class_names": "abc"}, r"`class_names` must be a list of strings, one per class. Received: class_names='abc'"),
        ({"class_names": [0, 1, 2]}, r"`class_names` must be a list of strings.*Received: class_names=\[0, 1, 2\]"),
        ({"metadata": ["a", "b"]}, r"`metadata` must be a dict or None. Received: metadata=\['a', 'b'\]"),
        ({"sample": np.zeros((2, 4, 4, 1))}, r"`sample` must be a batch of shape \(N, 8, 8, 1\).*Received: sample of shape \(2, 4, 4, 1\)"),
        ({"sample": np.zeros((0, 8, 8, 1))}, r"`sample` must be a batch .* with N >= 1"),
        ({"sample": np.full((1, 8, 8, 1), np.nan)}, r"`sample` holds NaN or inf"),
        ({"sample": "noise"}, r"`sample` must be an array of numbers"),
        ({"value_range": (1.0, 0.0)}, r"`value_range` must be \(low, high\) with low <= high"),
        ({"value_range": (0.0, float("inf"))}, r"`value_range\[1\]` must be a finite number"),
        ({"atol": -1.0}, r"Received: atol=-1.0"),
    ],
)
def test_export_arguments_are_checked_before_any_work(tmp_path, classifier, monkeypatch, kwargs, match):
    def no_work(*args, **kwargs):
        raise AssertionError("the export work started")

    monkeypatch.setattr(export_module, "_new_version_dir", no_work)
    with pytest.raises(ValueError, match=match):
        dli.export_saved_model(classifier, tmp_path / "m", **kwargs)
    assert not (tmp_path / "m").exists()


def test_one_sample_of_the_input_shape_is_a_batch_of_one(tmp_path, classifier, rng):
    path = dli.export_saved_model(classifier, tmp_path / "m", sample=rng.uniform(0, 1, (8, 8, 1)))
    assert path.name == "1"


def test_files_and_non_ascii_digits_are_not_versions(tmp_path, classifier):
    base = tmp_path / "m"
    base.mkdir()
    (base / "1").write_text("a note, not a model")
    (base / "²").mkdir()  # '²'.isdigit() is True, int('²') fails
    (base / "٣").mkdir()  # an Arabic-Indic 3: isdecimal, but not a TF Serving version
    assert export_module.list_versions(base) == []
    with pytest.raises(ValueError, match=r"No exported model at '.*m': it holds no version folder"):
        serving.resolve_version_dir(base)
    with pytest.raises(ValueError, match=r"No exported model at '.*1': it is a file, not a model or version folder"):
        serving.resolve_version_dir(base / "1")
    result = subprocess.run([str(BIN / "dlimaging"), "predict", str(base), str(base / "1")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "it holds no version folder" in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_target_names_go_with_numeric_outputs_and_class_names_only_with_classes(tmp_path):
    regression = dli.build_mlp((5, 1), task="regression", num_outputs=2, hidden_units=(4,))
    path = dli.export_saved_model(regression, tmp_path / "r", task="regression", class_names=[],
                                  target_names=["glucose", "lactate"], axis=[1.0, 2.0, 3.0, 4.0, 5.0])
    info = json.loads((path / "assets" / "dlimaging.json").read_text())
    assert info["target_names"] == ["glucose", "lactate"] and info["class_names"] is None
    assert info["outputs"] == ["predictions"] and info["input"]["axis"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    classifier = dli.build_mlp((5, 1), 2, hidden_units=(4,))
    path = dli.export_saved_model(classifier, tmp_path / "c", class_names=["a", "b"], target_names=["t"])
    info = json.loads((path / "assets" / "dlimaging.json").read_text())
    assert info["target_names"] is None and info["class_names"] == ["a", "b"]
    with pytest.raises(ValueError, match=r"`target_names` must have one name per output \(2\). Received 1"):
        dli.export_saved_model(regression, tmp_path / "r", target_names=["glucose"])
    with pytest.raises(ValueError, match=r"`axis` must have one entry per point of the input \(5\). Received 2"):
        dli.export_saved_model(regression, tmp_path / "r", axis=[1.0, 2.0])
    assert export_module.list_versions(tmp_path / "r") == [1]  # nothing written by the refusals


@pytest.mark.parametrize(
    "task, kwargs, names, match",
    [
        ("binary", {}, ["no", "yes", "maybe"], r"must have 2 names for a binary model.*Received 3"),
        ("binary", {}, ["yes"], r"must have 2 names for a binary model.*Received 1"),
        ("multilabel", {"num_classes": 3}, ["a", "b"], r"one name per output unit \(3\) for this multilabel model"),
        ("multilabel", {"num_classes": 1}, ["a", "b"], r"one name per output unit \(1\) for this multilabel model"),
        ("classification", {"num_classes": 3}, ["a", "b", "c", "d"], r"one name per output unit \(3\)"),
        ("regression", {"num_outputs": 2}, ["a", "b"], r"a regression model has none \(it answers with predictions\)"),
    ],
)
def test_class_names_must_fit_the_task_and_its_outputs(tmp_path, task, kwargs, names, match):
    """One check, before anything is written: binary takes 2 names, classification and multilabel one per
    output unit, tasks without classes none."""
    model = dli.build_mlp((6,), task=task, hidden_units=(3,), **kwargs)
    with pytest.raises(ValueError, match=match):
        dli.export_saved_model(model, tmp_path / "m", class_names=names)
    assert not (tmp_path / "m").exists()


def test_class_names_that_fit_are_kept(tmp_path):
    binary = dli.build_mlp((6,), task="binary", hidden_units=(3,))
    assert serving.read_metadata(dli.export_saved_model(binary, tmp_path / "b", class_names=["no", "yes"]))[
        "class_names"] == ["no", "yes"]
    unet = dli.build_unet((8, 8, 1), depth=1, filters=2)
    assert serving.read_metadata(dli.export_saved_model(unet, tmp_path / "u", class_names=[]))["class_names"] is None


@pytest.mark.parametrize("task, kwargs", [("multilabel", {"num_classes": 1}), ("binary", {}),
                                          ("multilabel", {"num_classes": 3})])
def test_export_records_the_task_the_builder_built(tmp_path, task, kwargs):
    """A multilabel model of one output looks binary from its output layer: the builder's record decides."""
    model = dli.build_mlp((12,), task=task, hidden_units=(4,), **kwargs)
    assert model.dlimaging_task == task
    path = dli.export_saved_model(model, tmp_path / "m")
    assert json.loads((path / "assets" / "dlimaging.json").read_text())["task"] == task


# ---------------------------------------------------------------- saved_model_cli
# A consumer of the export that ships with TensorFlow: `saved_model_cli show --all` lists each task's
# signature as the metadata describes it, and `saved_model_cli run` (TF1's session loader, not the Keras
# or TF2 path dlimaging uses) gives the same outputs as `dlimaging predict` on the same file.
# TensorFlow takes 5 to 10 s to start, so the commands are batched: one export per task (a module
# fixture) and one Python process that runs saved_model_cli's console entry point
# (`tensorflow.python.tools.saved_model_cli:main`, all that the `saved_model_cli` script calls) for a
# `show --all` and a `run` of every task, with its own argv each time.


# task -> (model, class names, a batch of 2 inputs): tiny models, one per task of the registry.
TASK_CASES = {
    "classification": (lambda: dli.build_cnn((8, 8, 1), 3, filters=(2,), dense_units=(4,)), ["a", "b", "c"],
                       (2, 8, 8, 1)),
    "binary": (lambda: dli.build_mlp((6,), task="binary", hidden_units=(3,)), ["no", "yes"], (2, 6)),
    "multilabel": (lambda: dli.build_mlp((6,), task="multilabel", num_classes=3, hidden_units=(3,)),
                   ["x", "y", "z"], (2, 6)),
    "regression": (lambda: dli.build_cnn((20, 1), task="regression", num_outputs=2, filters=(2,),
                                         dense_units=(4,)), None, (2, 20, 1)),
    # Any size: the patch is 16×16, the file 13×21.
    "restoration": (lambda: dli.build_unet((16, 16, 1), depth=1, filters=2), None, (2, 13, 21, 1)),
    "segmentation": (lambda: dli.build_unet((16, 16, 1), 2, task="segmentation", depth=1, filters=2), None,
                     (2, 13, 21, 1)),
}


# Runs saved_model_cli's main once per command, as the console script does; each command's stdout goes
# to its own file, and its exit status (or its traceback) to another.
DRIVER = textwrap.dedent("""
    import contextlib, json, sys, traceback
    from tensorflow.python.tools.saved_model_cli import main
    for stem, argv in json.load(open(sys.argv[1])):
        sys.argv = ["saved_model_cli", *argv]
        status = "no exit"
        with open(stem + ".out", "w") as out, contextlib.redirect_stdout(out):
            try:
                main()
            except SystemExit as done:
                status = str(done.code or 0)
            except BaseException:
                status = traceback.format_exc()
        open(stem + ".status", "w").write(status)
""")


@pytest.fixture(scope="module")
def exports_of_every_task(tmp_path_factory):
    """task -> (version folder, the inputs' .npy file, the export's metadata, what `show --all`
    printed, the folder where `run` saved its outputs)."""
    assert set(TASK_CASES) == set(registry.TASKS)  # every task of the table
    root = tmp_path_factory.mktemp("saved")
    rng = np.random.default_rng(0)
    result, commands = {}, []
    for task, (build, class_names, shape) in TASK_CASES.items():
        model = build()
        assert model.dlimaging_task == task
        version = dli.export_saved_model(model, root / task, class_names=class_names)
        inputs = root / f"{task}.npy"
        np.save(inputs, rng.uniform(0, 1, shape).astype("float32"))
        metadata = dli.serving.read_metadata(version)
        commands += [
            (str(root / f"{task}-show"), ["show", "--dir", str(version), "--all"]),
            (str(root / f"{task}-run"), ["run", "--dir", str(version), "--tag_set", "serve", "--signature_def",
                                         "serving_default", "--inputs", f"{metadata['input']['name']}={inputs}",
                                         "--outdir", str(root / f"{task}-outputs")]),
        ]
        result[task] = (version, inputs, metadata, root / f"{task}-show", root / f"{task}-outputs")
    (root / "commands.json").write_text(json.dumps(commands))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", DRIVER, str(root / "commands.json")], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for stem, argv in commands:
        status = open(stem + ".status").read()
        assert status == "0", f"saved_model_cli {' '.join(argv)}: {status}"
    return result


def _predicted(task, version, inputs, tmp_path, capsys):
    """`dlimaging predict` on the file: TF Serving's JSON answer, or the restored array."""
    capsys.readouterr()
    if task == "restoration":
        assert main(["predict", str(version), str(inputs), "--out", str(tmp_path / "restored.npy")]) == 0
        return {"restored": np.load(tmp_path / "restored.npy")}
    if task == "segmentation":  # `predict` writes the class map; the probabilities are the served ones'
        assert main(["predict", str(version), str(inputs), "--out", str(tmp_path / "mask.npy")]) == 0
        return {"class_map": np.load(tmp_path / "mask.npy")}
    assert main(["predict", str(version), str(inputs), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["predictions"]
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


@pytest.mark.parametrize("task", list(TASK_CASES))
def test_saved_model_cli_shows_and_runs_the_export_as_predict_does(task, exports_of_every_task, tmp_path, capsys):
    version, inputs, metadata, show, outputs = exports_of_every_task[task]
    name, shape = metadata["input"]["name"], metadata["input"]["shape"]

    shown = open(f"{show}.out").read()
    signature = shown.split("signature_def['serving_default']:")[1].split("signature_def[")[0]
    served = ["-1"] * (len(shape) - 1) + [str(shape[-1])] if metadata["input"]["any_size"] else list(map(str, shape))
    assert f"inputs['{name}'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, {', '.join(served)})" \
        in signature, signature
    assert sorted(part.split("'")[0] for part in signature.split("outputs['")[1:]) == sorted(metadata["outputs"])
    assert "Method name is: tensorflow/serving/predict" in signature

    ran = {key: np.load(outputs / f"{key}.npy", allow_pickle=key == "class_name") for key in metadata["outputs"]}
    predicted = _predicted(task, version, inputs, tmp_path, capsys)
    # segmentation: `predict` writes the class map only; the probabilities are checked by their shape
    assert sorted(predicted) == (["class_map"] if task == "segmentation" else sorted(ran))
    if task == "segmentation":
        assert ran["probabilities"].shape == np.load(inputs).shape[:-1] + (2,)
    for key, value in ran.items():
        if key not in predicted:
            continue
        if value.dtype == object:  # class names: bytes from the session, text in the JSON answer
            assert [v.decode() for v in value] == list(predicted[key])
        elif np.issubdtype(value.dtype, np.integer):
            np.testing.assert_array_equal(value, predicted[key])
        else:
            want = np.load(inputs).shape[:-1] if task in ("restoration", "segmentation") else (2,)
            want = want + value.shape[len(want):]
            assert value.shape == want
            np.testing.assert_allclose(value, predicted[key], atol=1e-5, rtol=1e-5)


def test_a_self_ensembled_export_serves_the_mean_of_the_8_flips_and_rotations(tmp_path, classifier):
    model = dli.build_unet((8, 8, 1), depth=1, filters=4)
    x = np.random.default_rng(3).random((2, 8, 8, 1)).astype("float32")
    plain = _signature(dli.export_saved_model(model, tmp_path / "plain"))  # off by default
    np.testing.assert_allclose(plain(image=tf.constant(x))["restored"].numpy(), model(x).numpy(), atol=1e-5)
    path = dli.export_saved_model(model, tmp_path / "ensembled", self_ensemble=True)
    got = _signature(path)(image=tf.constant(x))["restored"].numpy()
    want = []
    for turns in range(4):
        for flip in (False, True):
            moved = np.rot90(x, turns, axes=(1, 2))
            moved = np.ascontiguousarray(moved[:, :, ::-1] if flip else moved)
            out = model(moved).numpy()
            want.append(np.rot90(out[:, :, ::-1] if flip else out, -turns, axes=(1, 2)))
    np.testing.assert_allclose(got, np.mean(want, axis=0), atol=1e-5)
    assert not np.allclose(got, model(x).numpy(), atol=1e-5)
    assert json.loads((path / "assets" / "dlimaging.json").read_text())["self_ensemble"] is True
    with pytest.raises(InputError, match="applies to restoration models, not to a classification model"):
        dli.export_saved_model(classifier, tmp_path / "c", self_ensemble=True)
    with pytest.raises(InputError, match="`self_ensemble` must be True or False"):
        dli.export_saved_model(model, tmp_path / "r", self_ensemble="yes")
