"""`tiling_info`: the downsampling factor, the receptive field's reach and the cost per pixel, read
from a model's layers."""

import warnings

import keras
import pytest

from dlimaging.models import build_unet
from dlimaging.models.field import tiling_info


def _unet(shape, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_unet(shape, filters=4, compile=False, **kwargs)


@pytest.mark.parametrize("depth, margin", [(1, 12), (2, 32)])
def test_a_unet_tiles_on_two_to_the_depth_with_its_receptive_field(depth, margin):
    info = tiling_info(_unet((16, 16, 1), depth=depth))
    # depth 2, 3x3 kernels: 2 convs per block at each scale, pools, 2x2 up-convs: a reach of 32 pixels
    assert info["multiple"] == 2**depth and info["margin"] == margin and info["bytes_per_pixel"] > 0


def test_wider_kernels_and_signals_are_read_too():
    assert tiling_info(_unet((16, 16, 1), depth=2, kernel_size=5))["margin"] > 32
    signal = tiling_info(_unet((32, 1), depth=2))
    assert signal["multiple"] == 4 and signal["margin"] == 32


def test_a_sequential_model_with_strides_and_dilations():
    model = keras.Sequential([keras.Input((None, None, 1)),
                              keras.layers.Conv2D(2, 3, padding="same", dilation_rate=2),  # reach 2
                              keras.layers.Conv2D(2, 3, strides=2, padding="same"),       # reach +3, factor 2
                              keras.layers.Conv2DTranspose(1, 2, strides=2, padding="same")])
    info = tiling_info(model)
    assert info["multiple"] == 2 and info["margin"] >= 5 and info["margin"] % 2 == 0
