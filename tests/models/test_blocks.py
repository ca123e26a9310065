"""The blocks and their checks: conv_output_size, kernel penalties, sizes that fall below one, the shared rules."""

import numpy as np
import pytest

import dlimaging as dli
from dlimaging.models import conv_output_size


@pytest.mark.parametrize("l1, l2", [(0.01, 0.0), (0.0, 0.02), (0.003, 0.005)])
def test_penalty_equals_formula(l1, l2):
    model = dli.build_cnn((8, 8, 1), 3, filters=(4,), dense_units=(5,), l1=l1, l2=l2)
    model(np.zeros((1, 8, 8, 1), "float32"))
    kernels = [layer.kernel for layer in model.layers if hasattr(layer, "kernel")]
    assert len(kernels) == 3  # conv, head dense and output layer
    expected = sum(l1 * np.abs(k.numpy()).sum() + l2 * np.square(k.numpy()).sum() for k in kernels)
    got = sum(float(loss) for loss in model.losses)
    assert got == pytest.approx(expected, rel=1e-5)


def test_no_penalty_by_default():
    model = dli.build_mlp((4,), 2)
    assert model.losses == []


@pytest.mark.parametrize(
    "args, expected",
    [((5, 3), 3), ((5, 3, 1, 1), 5), ((32, 5, 2, 2), 16), ((28, 2, 2), 14), ((7, 3, 2), 3)],
)
def test_conv_output_size(args, expected):
    assert conv_output_size(*args) == expected


def test_lecture_example_5x5_input_3x3_kernel():
    # The slide's 5x5 input and 3x3 kernel give the 3x3 output shown.
    assert conv_output_size(5, 3) == 3


def test_cnn_bad_rank():
    with pytest.raises(ValueError, match=r"`input_shape` must have 2 or 3 or 4 dimensions.*Received: input_shape=\(64,\)"):
        dli.build_cnn((64,), 2)


def test_kernel_larger_than_input_names_the_block():
    with pytest.raises(ValueError, match=r"block2_conv1: kernel_size=5 is larger than its input size 4"):
        dli.build_cnn((12, 12, 1), 2, filters=(4, 4), kernel_size=5, padding="valid", pooling="max")


def test_pooling_below_one_names_the_block():
    with pytest.raises(ValueError, match=r"block4_pool: pooling would shrink the spatial size \(1, 1\) below 1"):
        dli.build_cnn((8, 8, 1), 10, filters=(4, 4, 4, 4))


def test_strides_below_one_names_the_block():
    with pytest.raises(ValueError, match="block3_pool"):
        dli.build_cnn((16, 16, 1), 2, filters=(4, 4, 4), strides=2)


def test_conv_output_size_bad_input():
    with pytest.raises(ValueError, match="Received: stride=0"):
        conv_output_size(5, 3, stride=0)
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv_output_size(2, 5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"convs_per_block": 0}, "Received: convs_per_block=0"),
        ({"filters": ()}, r"`filters` must hold at least one positive integer"),
        ({"kernel_size": 0}, "Received: kernel_size=0"),
        ({"padding": "full"}, "Received: padding='full'"),
        ({"epsilon": float("inf")}, r"`epsilon` must be a finite number"),
        ({"optimizer": "sgd", "momentum": 1.0}, r"`momentum` must be a number in \[0.0, 1.0\). Received: momentum=1.0"),
    ],
)
def test_builder_rules_come_from_the_shared_table(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dli.build_cnn((8, 8, 1), 2, **kwargs)


@pytest.mark.parametrize("builder, shape, takes", [(dli.build_cnn, (64,), r"build_cnn takes \(length, channels\)"),
                                                   (dli.build_mlp, (2, 2, 2, 2, 1), r"build_mlp takes \(features,\)")])
def test_bad_rank_names_the_shapes_the_builder_takes(builder, shape, takes):
    with pytest.raises(ValueError, match=takes):
        builder(shape, 2)
