"""Self-ensembling at inference: the mean of a model over the flips and rotations, each turned back."""

import numpy as np
import tensorflow as tf

import dlimaging as dli
from dlimaging.models.self_ensemble import self_ensemble, transforms


def _numpy_mean_of_8(predict, x):
    outputs = []
    for turns in range(4):
        for flip in (False, True):
            moved = np.rot90(x, turns, axes=(1, 2))
            moved = moved[:, :, ::-1] if flip else moved
            out = np.asarray(predict(np.ascontiguousarray(moved)))
            out = out[:, :, ::-1] if flip else out
            outputs.append(np.rot90(out, -turns, axes=(1, 2)))
    return np.mean(outputs, axis=0)


def test_the_mean_of_the_8_flips_and_rotations_of_a_model():
    model = dli.build_unet((8, 8, 1), depth=1, filters=4, compile=False)
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype("float32")
    got = self_ensemble(lambda t: model(t, training=False), tf.constant(x)).numpy()
    want = _numpy_mean_of_8(lambda t: model(t, training=False), x)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not np.allclose(got, model(x, training=False).numpy(), atol=1e-5)  # it does change the output


def test_signals_take_their_two_orientations():
    assert len(transforms(3)) == 2 and len(transforms(4)) == 8
    x = np.arange(10, dtype="float32").reshape(1, 10, 1)
    got = self_ensemble(lambda t: tf.cumsum(t, axis=1), x).numpy()
    np.testing.assert_allclose(got, (np.cumsum(x, 1) + np.cumsum(x[:, ::-1], 1)[:, ::-1]) / 2)
