"""build_mlp: every input rank, exact parameter counts, bad input."""

import numpy as np
import pytest

import dlimaging as dli


@pytest.mark.parametrize("input_shape", [(10,), (40, 1), (8, 8, 1), (4, 4, 4, 1)])
def test_mlp_accepts_every_rank(input_shape):
    model = dli.build_mlp(input_shape, 4, hidden_units=(8,))
    x = np.ones((3,) + input_shape, "float32")
    probs = model.predict(x, verbose=0)
    assert probs.shape == (3, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "input_shape, hidden, classes, expected",
    [
        ((4,), (3,), 2, 4 * 3 + 3 + 3 * 2 + 2),
        ((4,), (), 3, 4 * 3 + 3),  # plain logistic regression
        ((2, 3), (5, 4), 2, 6 * 5 + 5 + 5 * 4 + 4 + 4 * 2 + 2),
    ],
)
def test_mlp_exact_parameter_counts(input_shape, hidden, classes, expected):
    model = dli.build_mlp(input_shape, classes, hidden_units=hidden, batch_norm=False)
    assert model.count_params() == expected


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (((8, 8, 1), None), {}, "`num_classes` is required"),
        (((8, 8, 1), 1), {}, "Received: num_classes=1"),
        (((8, 8, 1), 3), {"task": "binary"}, "Received: num_classes=3"),
        (((8, 8, 1),), {"task": "multilabel"}, "`num_classes` is required for task='multilabel'"),
        (((8, 8, 1), 10), {"task": "regression"}, "task='regression' has no classes: set `num_outputs`, not `num_classes`"),
        (((8, 8, 1), True), {}, "Received: num_classes=True"),
        (((8, 8, 1), True), {"task": "binary"}, "Received: num_classes=True"),
        (((8, 8, 1),), {"task": "regression", "num_outputs": 0}, "Received: num_outputs=0"),
        (((), 2), {}, r"Received: input_shape=\(\)"),
        (((8, -8, 1), 2), {}, "Received: input_shape"),
        (("8x8", 2), {}, "Received: input_shape='8x8'"),
        (((4,), 2), {"hidden_units": "64"}, "Received: hidden_units='64'"),
        (((4,), 2), {"augmentation": {"rotation": 0.1}}, "no such factory"),
    ],
)
def test_mlp_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dli.build_mlp(*args, **kwargs)
