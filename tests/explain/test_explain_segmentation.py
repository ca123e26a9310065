"""Grad-CAM of a segmentation model: a class's score summed over its predicted pixels."""

import numpy as np
import pytest

import dlimaging as dli
from dlimaging.errors import InputError
from dlimaging.explain.segmentation import default_layer, segmentation_grad_cam


@pytest.fixture(scope="module")
def unet():
    return dli.build_unet((16, 16, 1), 3, task="segmentation", depth=2, filters=4)


def test_the_map_covers_the_input_and_counts_the_predicted_pixels(unet):
    x = np.random.default_rng(0).random((16, 16, 1)).astype("float32")
    predicted = np.argmax(np.asarray(unet(x[None], training=False))[0], -1)
    assert default_layer(unet) == "bottom_act2"
    for cls in range(3):
        heat, chosen, pixels = segmentation_grad_cam(unet, x, class_index=cls, variant="grad-cam")
        assert heat.shape == (16, 16) and chosen == cls and pixels == int((predicted == cls).sum())
        assert 0.0 <= heat.min() and heat.max() <= 1.0
        if pixels == 0:
            assert not heat.any()  # nothing predicted as the class: nothing to explain
    heat, chosen, _ = segmentation_grad_cam(unet, x, layer="up1_act2")
    assert chosen == 1 and heat.shape == (16, 16)


def test_signals_and_refusals():
    signal_unet = dli.build_unet((32, 1), 2, task="segmentation", depth=1, filters=4)
    heat, _, _ = segmentation_grad_cam(signal_unet, np.ones((32, 1), "float32"))
    assert heat.shape == (32,)
    with pytest.raises(InputError, match=r"`class_index` must be an int in \[0, 1\].*Received: class_index=2"):
        segmentation_grad_cam(signal_unet, np.ones((32, 1)), class_index=2)
    with pytest.raises(InputError, match=r"`x` must be one input of the model's shape \(32, 1\)"):
        segmentation_grad_cam(signal_unet, np.ones((16, 1)))
    with pytest.raises(InputError, match=r"`variant` must be one of"):
        segmentation_grad_cam(signal_unet, np.ones((32, 1)), variant="cam")
    classifier = dli.build_cnn((16, 16, 1), 3)
    with pytest.raises(InputError, match=r"does not answer with a class per pixel"):
        segmentation_grad_cam(classifier, np.ones((16, 16, 1)))
