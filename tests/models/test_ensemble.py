import numpy as np
import pytest

import dlimaging as dli
from dlimaging.errors import InputError
from dlimaging.models.ensemble import ensemble_model


def _mlp(units=3, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    return dli.build_mlp((4,), num_classes=units, hidden_units=(8,))


def test_the_output_is_the_mean_of_the_members_and_it_evaluates_as_they_do():
    members = [_mlp(seed=s) for s in range(3)]
    x = np.random.default_rng(0).random((6, 4), dtype="float32")
    y = np.array([0, 1, 2, 0, 1, 2])
    outputs = [m.predict(x, verbose=0) for m in members]
    model = ensemble_model(members)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.mean(outputs, axis=0), atol=1e-6)
    assert model.dlimaging_task == "classification"
    metrics = model.evaluate(x, y, return_dict=True, verbose=0)
    assert set(metrics) == set(members[0].evaluate(x, y, return_dict=True, verbose=0))
    mean = np.mean(outputs, axis=0)
    assert metrics["accuracy"] == pytest.approx(np.mean(mean.argmax(-1) == y))
    assert model.count_params() == sum(m.count_params() for m in members)


def test_models_that_cannot_be_averaged_are_refused():
    with pytest.raises(InputError, match="at least 2 models"):
        ensemble_model([_mlp()])
    with pytest.raises(InputError, match="same shapes"):
        ensemble_model([_mlp(3), _mlp(4)])
    binary = dli.build_mlp((4,), task="binary", hidden_units=(8,))
    regressor = dli.build_mlp((4,), task="regression", hidden_units=(8,))
    assert binary.output_shape == regressor.output_shape  # only the task differs
    with pytest.raises(InputError, match="one task"):
        ensemble_model([binary, regressor])


def test_an_ensemble_of_unets_tiles_as_its_members_need():
    from dlimaging.models.field import tiling_info

    shallow = dli.build_unet((16, 16, 1), depth=1, filters=4)
    deep = dli.build_unet((16, 16, 1), depth=2, filters=4)
    model = ensemble_model([shallow, deep])
    info, one, two = tiling_info(model), tiling_info(shallow), tiling_info(deep)
    assert info["multiple"] == max(one["multiple"], two["multiple"]) == 4
    assert info["margin"] >= max(one["margin"], two["margin"]) > 0 and info["margin"] % 4 == 0
    assert info["bytes_per_pixel"] == pytest.approx(one["bytes_per_pixel"] + two["bytes_per_pixel"])
    x = np.random.default_rng(0).random((1, 16, 16, 1), dtype="float32")
    mean = (shallow.predict(x, verbose=0) + deep.predict(x, verbose=0)) / 2
    np.testing.assert_allclose(model.predict(x, verbose=0), mean, atol=1e-5)
    assert model.dlimaging_task == "restoration"


def test_members_without_a_recorded_task_take_the_one_their_output_implies():
    members = [_mlp(seed=s) for s in range(2)]
    for member in members:
        del member.dlimaging_task  # as a model loaded from a file
    from dlimaging.serving.export import infer_task

    model = ensemble_model(members)
    assert not hasattr(model, "dlimaging_task") and infer_task(model) == "classification"
