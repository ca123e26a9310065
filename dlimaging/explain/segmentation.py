"""Grad-CAM of a segmentation model: where the evidence for a class's predicted pixels lies.

A segmentation model answers with a class per pixel, not one vector, so the score Grad-CAM
differentiates is the class's score (its logit, before the softmax) summed over the pixels the
model assigns to that class (Seg-Grad-CAM, Vinogradova et al. 2020). The gradient of that sum
with respect to a layer's feature maps weighs the maps, as in `dlimaging.explain.methods.grad_cam`.
By default the layer is the U-Net's bottom (its deepest, coarsest maps: what the decoder is told
about the context), and the class the first one after the background (class 1).
"""

from __future__ import annotations

import keras
import numpy as np

from dlimaging.errors import InputError
from dlimaging.explain.methods import CAM_VARIANTS, block_outputs, map_layers

DEFAULT_CLASS = 1  # the first class after the background


def default_layer(model) -> str:
    """The last of the block outputs with the smallest spatial size: a U-Net's bottom."""
    layers = block_outputs(model) or map_layers(model)
    if not layers:
        raise InputError(f"`model` {model.name!r} has no feature-map layer to explain.")
    sizes = [int(np.prod(model.get_layer(name).output.shape[1:-1])) for name in layers]
    return [name for name, size in zip(layers, sizes) if size == min(sizes)][-1]


def _logits_model(model, layer: str):
    """A model from the input to (the layer's maps, the per-pixel scores before the softmax)."""
    last = model.layers[-1]
    softmax = isinstance(last, keras.layers.Activation) and "softmax" in getattr(last.activation, "__name__", "")
    scores = last.input if softmax else model.outputs[0]
    return keras.Model(model.inputs[0], [model.get_layer(layer).output, scores])


def segmentation_grad_cam(model, x, class_index: int | None = None, layer: str | None = None, *,
                          variant: str = "hires") -> tuple[np.ndarray, int, int]:
    """Grad-CAM of one class of a segmentation model for one input, summed over its predicted pixels.

    Args:
        model: a segmentation model (`keras.Model`) whose output is (N, *spatial, classes).
        x: one input of the model's shape (height, width, channels) or (length, channels).
        class_index: int or None. The class explained. Defaults to None: class 1, the first class
            after the background.
        layer: str or None. Any of `map_layers(model)`. Defaults to None: `default_layer`, the
            U-Net's bottom.
        variant: "hires" (default; each position weighed by its own gradient) or "grad-cam" (the
            gradient averaged over positions), as in `dlimaging.explain.methods.grad_cam`.

    Returns:
        (map, class, pixels): the map in [0, 1] of the input's spatial size (all zeros when no
        pixel is predicted as the class), the class explained and how many pixels the model
        assigns to it.

    Example:
    >>> heat, cls, pixels = segmentation_grad_cam(unet, image)  # doctest: +SKIP
    """
    import tensorflow as tf

    shape = tuple(model.inputs[0].shape[1:])
    output = tuple(model.outputs[0].shape)
    if len(output) != len(shape) + 1 or len(shape) not in (2, 3):
        raise InputError(f"`model` {model.name!r} does not answer with a class per pixel (output {output}).")
    classes = int(output[-1])
    if class_index is None:
        class_index = DEFAULT_CLASS
    if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)) or not 0 <= class_index < classes:
        raise InputError(f"`class_index` must be an int in [0, {classes - 1}] (the model has {classes} classes). "
                         f"Received: class_index={class_index!r}")
    if variant not in CAM_VARIANTS:
        raise InputError(f"`variant` must be one of {', '.join(map(repr, CAM_VARIANTS))}. Received: variant={variant!r}")
    x = np.asarray(x, "float32")
    if x.shape != shape:
        raise InputError(f"`x` must be one input of the model's shape {shape}. Received: x of shape {x.shape}")
    valid = map_layers(model)
    layer = default_layer(model) if layer is None else layer
    if layer not in valid:
        raise InputError(f"`layer` must be one of the model's feature-map layers: {', '.join(valid)}. "
                         f"Received: layer={layer!r}")
    sub = _logits_model(model, layer)
    with tf.GradientTape() as tape:
        maps, logits = sub(tf.constant(x[None]), training=False)
        predicted = tf.cast(tf.argmax(logits, axis=-1) == class_index, logits.dtype)
        score = tf.reduce_sum(logits[..., class_index] * predicted)
    grads = tape.gradient(score, maps)
    spatial = tuple(range(1, len(maps.shape) - 1))
    weights = CAM_VARIANTS[variant](grads, spatial)
    cam = tf.nn.relu(tf.reduce_sum(maps * weights, axis=-1))[0]
    if cam.shape != shape[:-1]:
        cam = (tf.image.resize(cam[..., None], shape[:-1], method="bilinear")[..., 0] if len(shape) == 3 else
               tf.image.resize(cam[None, :, None], (1, shape[0]), method="bilinear")[0, :, 0])
    cam = np.asarray(cam, "float32")
    peak = float(cam.max())
    heat = cam / peak if peak > 0 else np.zeros_like(cam)
    return heat, int(class_index), int(np.asarray(predicted).sum())
