"""The Keras Tuner internals that dlimaging patches: present, patched only inside a search, restored."""

import importlib
import json
import re

import pytest

from dlimaging.tuning import progress, tuner


def test_the_patched_internals_exist_in_this_keras_tuner():
    # Fails loudly when a keras-tuner release moves or renames one of them.
    tuner.check_keras_tuner_internals()
    for module, attribute in tuner.KERAS_TUNER_INTERNALS.values():
        assert hasattr(importlib.import_module(module), attribute), f"{module}.{attribute}"


def test_a_moved_internal_is_reported_by_name(monkeypatch):
    monkeypatch.setitem(tuner.KERAS_TUNER_INTERNALS, "save_json", ("keras_tuner.src.utils", "save_json_v2"))
    with pytest.raises(tuner.KerasTunerChanged, match=r"keras_tuner.src.utils.save_json_v2 \(save_json\)"):
        tuner.check_keras_tuner_internals()
    with pytest.raises(tuner.KerasTunerChanged):
        with tuner.tuner_patches():
            pass


def test_patches_apply_inside_the_block_and_are_restored(tmp_path):
    from keras_tuner.src import config, utils

    original_save, original_debug = utils.save_json, config.DEBUG
    with tuner.tuner_patches():
        assert utils.save_json is not original_save and config.DEBUG is False
        utils.save_json(tmp_path / "state.json", {"a": 1})  # what the oracle calls
        assert json.loads((tmp_path / "state.json").read_text()) == {"a": 1}
        assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left
    assert utils.save_json is original_save and config.DEBUG is original_debug


def test_a_search_hides_older_objects_from_the_collector_and_gives_them_back():
    import gc

    class Cycle:
        pass

    assert gc.get_freeze_count() == 0
    old = Cycle()
    old.me = old  # a reference cycle: only the collector can free it
    with tuner.tuner_patches():
        assert gc.get_freeze_count() > 0  # the per-trial gc.collect() no longer walks the old objects
        new = Cycle()
        new.me = new
        del new
        assert gc.collect() >= 1  # what a trial leaves behind is still collected
    assert gc.get_freeze_count() == 0
    del old
    assert gc.collect() >= 1  # given back: collectable again after the search

    gc.freeze()  # a caller that froze objects itself keeps them frozen
    try:
        frozen = gc.get_freeze_count()
        with tuner.tuner_patches():
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


# ---------------------------------------------------------------- inside a trial


def _fit_watched(display, epochs=2, label="trial 1/2"):
    """A tiny model trained with `TrialProgress`; returns the model."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 2, 64)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    watcher = progress.TrialProgress(display, label=label, objective="val_accuracy", direction="max")
    model.fit(x, y, validation_data=(x, y), epochs=epochs, batch_size=16, verbose=0, callbacks=[watcher])
    return model


def test_a_terminal_shows_one_live_line_that_the_trial_end_removes():
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    lines = []
    _fit_watched(progress.ProgressDisplay(lines.append, live=console, refresh_seconds=0.0))
    out = console.file.getvalue()
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.replace("\r", "\n")).split("\n")
    shown = [frame for frame in frames if frame.startswith("trial 1/2 |")]
    assert any("epoch 1/2 | batch 1/4 | loss=" in frame and "left" in frame for frame in shown), shown
    assert any(frame.startswith("trial 1/2 | epoch 1/2 | loss=") and "| val_accuracy=" in frame
               and "| best val_accuracy=" in frame for frame in shown), shown
    assert any("epoch 2/2" in frame for frame in shown)
    assert out.endswith("\x1b[1A\x1b[2K")  # the line is erased: the trial's summary takes its place
    assert lines == []  # nothing plain without verbose


def test_without_a_terminal_nothing_per_epoch_unless_verbose():
    lines = []
    _fit_watched(progress.ProgressDisplay(lines.append, live=False))
    assert lines == []
    _fit_watched(progress.ProgressDisplay(lines.append, live=False, verbose=True), epochs=3)
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"[trial 1/2] epoch {epoch}/3 in ") and "loss=" in line and "val_accuracy=" in line
        assert "\x1b" not in line
    assert "left" in lines[0] and "left" not in lines[-1]


def test_the_model_is_measured_when_training_ends():
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    model.compile("adam", "mse")
    sink = {}
    model.fit(np.zeros((4, 8, 8, 1)), np.zeros((4, 10)), epochs=1, verbose=0, callbacks=[progress.MeasureModel(sink)])
    assert sink["params"] == model.count_params() == 4 * 9 + 4 + 144 * 10 + 10
    assert 0 < sink["latency_ms"] < 1000


@pytest.mark.parametrize("seconds, text", [(0.42, "0.4s"), (12.4, "12s"), (185, "3m05s"), (3720, "1h02m")])
def test_durations_read_well(seconds, text):
    assert progress._duration(seconds) == text


def _custom_gradients():
    from tensorflow.python.framework import ops

    return {name for name in ops._gradient_registry._registry if name.startswith("CustomGradient-")}


def test_a_trained_models_graph_is_released_with_its_custom_gradients():
    """Issue 23: every traced Keras train step registers a custom gradient (the default strategy's
    all_reduce) that keeps its graph alive for good: +115 MB over 25 trials in
    benchmarks/tuning_overhead.py. Inside `released_custom_gradients` they go when the block ends."""
    import gc

    import keras
    import numpy as np

    import dlimaging as dli

    x, y = np.zeros((8, 6, 6, 1), "float32"), np.zeros(8, "int64")

    def train_one():
        model = dli.build_cnn((6, 6, 1), 2, filters=(2,), dense_units=(2,))
        model.fit(x, y, epochs=1, batch_size=4, verbose=0)

    keras.backend.clear_session()
    before = _custom_gradients()
    train_one()
    if not _custom_gradients() - before:  # what the block is for: outside it, the gradient stays registered
        pytest.skip("this TensorFlow no longer registers a custom gradient per trained model")
    before = _custom_gradients()
    with tuner.released_custom_gradients():
        train_one()
        assert _custom_gradients() - before  # registered while the model trains ...
    gc.collect()
    assert _custom_gradients() == before  # ... and gone with the block


def test_a_moved_tensorflow_internal_is_reported_by_name(monkeypatch):
    monkeypatch.setitem(tuner.TENSORFLOW_INTERNALS, "gradient_registry",
                        ("tensorflow.python.framework.ops", "_gradient_registry_v2"))
    with pytest.raises(tuner.KerasTunerChanged, match=r"tensorflow .* has no tensorflow.python.framework.ops."
                                                      r"_gradient_registry_v2 \(gradient_registry\)"):
        tuner.check_keras_tuner_internals()
