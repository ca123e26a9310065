"""The Keras Tuner internals that dlimaging patches: present, patched only inside a search, restored."""

import importlib
import json

import pytest

from dlimaging import tuner


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
