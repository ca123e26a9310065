"""Pictures of what a CNN does: feature maps, learned filters, Grad-CAM and saliency.

Each function takes a Keras model and plain arrays and returns numpy arrays;
`dlimaging.plots` draws them (`feature_maps_figure`, `filters_figure`,
`grad_cam_figure`, `saliency_figure`). They work on any Keras CNN with one
input, 1D (signals, spectra) and 2D (images); dlimaging's own models have
readable layer names (`block1_act1`, `block2_conv1`, ...).

The model is always called with `training=False`: augmentation and dropout
are off, batch norm uses its moving statistics, as in `predict`.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.serving.export import SIGNATURE, infer_task
from dlimaging.serving.exports import read_metadata

# The layers whose weights are convolution kernels.
CONV_LAYERS = (
    keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
    keras.layers.SeparableConv1D, keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D,
    keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose,
)


def _input_shape(model) -> tuple[int, ...]:
    if not isinstance(model, keras.Model):
        raise InputError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    if len(model.inputs) != 1:
        raise InputError(f"`model` must have one input. Received: {len(model.inputs)} inputs")
    return tuple(model.inputs[0].shape[1:])


def conv_layers(model) -> list[str]:
    """The names of the model's convolution layers, in order: the layers `filters` reads."""
    return [layer.name for layer in model.layers if isinstance(layer, CONV_LAYERS)]


def map_layers(model) -> list[str]:
    """The layers whose output is a feature map, in order: from the first convolution on, every
    layer with one output of the input's rank (convs, batch norm, activations, pooling, sums).
    These are the layers `feature_maps` and `grad_cam` accept."""
    rank = len(_input_shape(model)) + 1
    names, started = [], False
    for layer in model.layers:
        started = started or isinstance(layer, CONV_LAYERS)
        if not started:
            continue
        try:
            output = layer.output
        except (AttributeError, ValueError):  # a layer used twice has no single output
            continue
        if not isinstance(output, (list, tuple, dict)) and len(output.shape) == rank:
            names.append(layer.name)
    return names


def _is_nonlinear(layer) -> bool:
    """An Activation layer, or a conv with its own activation (e.g. `Conv2D(..., activation="relu")`)."""
    if isinstance(layer, (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
                          keras.layers.ELU, keras.layers.PReLU, keras.layers.Softmax)):
        return True
    activation = getattr(layer, "activation", None)
    return isinstance(layer, CONV_LAYERS) and activation is not None and activation is not keras.activations.linear


def block_outputs(model) -> list[str]:
    """The default layers of `feature_maps`: the activations after the convolutions (what the next
    block sees), or the convolutions themselves in a model without separate activations."""
    maps = map_layers(model)
    chosen = [name for name in maps if _is_nonlinear(model.get_layer(name))]
    return chosen or [name for name in maps if name in conv_layers(model)]


def _require_conv(model) -> None:
    """Feature maps, filters and Grad-CAM read a convolution layer: refuse a model without one (an MLP)."""
    if not conv_layers(model):
        raise InputError(f"`model` {model.name!r} has no convolution layer: feature maps, filters and Grad-CAM "
                         "are for CNNs (saliency works on any model). Layers: "
                         + ", ".join(layer.name for layer in model.layers))


def _check_layer(model, layer, valid: Sequence[str], what: str) -> str:
    _require_conv(model)
    if layer not in valid:
        raise InputError(f"`layer` must be one of the model's {what}: {', '.join(valid)}. Received: layer={layer!r}")
    return layer


def _batch(model, x, *, single_only: bool = False) -> tuple[np.ndarray, bool]:
    """`x` as a float32 batch of the model's input; also whether it was one sample."""
    return _as_batch(x, _input_shape(model), single_only=single_only)


def _as_batch(x, shape: tuple[int, ...], *, single_only: bool = False) -> tuple[np.ndarray, bool]:
    """`x` as a float32 batch of samples of `shape`; also whether it was one sample."""
    try:
        x = np.asarray(x, dtype="float32")
    except (TypeError, ValueError):
        raise InputError(f"`x` must be an array of numbers. Received: {type(x).__name__}") from None
    single = x.shape == shape
    if single:
        x = x[None]
    if x.shape[1:] != shape or len(x) == 0 or (single_only and len(x) != 1):
        wanted = f"{shape}" + ("" if single_only else f" or a batch (N, {', '.join(map(str, shape))})")
        raise InputError(f"`x` must be one input of the model's shape {wanted}. Received: x of shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("`x` holds NaN or inf values.")
    return x, single


def _score_model(model, layer_name: str | None):
    """A model from the input to (the layer's map, the scores). The scores are the output layer's
    values before its softmax or sigmoid, as in keras.io's Grad-CAM recipe: probabilities
    saturate, and their gradients vanish where the model is sure."""
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise InputError(
            "Grad-CAM and saliency explain an answer of one vector per sample (class scores or numbers); "
            f"`model` {model.name!r} answers with shape {tuple(model.outputs[0].shape)} (an image or signal, as a "
            "restoration model does): draw its feature maps or filters instead.")
    last = model.layers[-1]
    squashed = isinstance(last, keras.layers.Dense) and last.activation is not keras.activations.linear
    outputs = [last.input if squashed else model.outputs[0]]
    if layer_name is not None:
        outputs.insert(0, model.get_layer(layer_name).output)
    sub = keras.Model(model.inputs[0], outputs)

    def scores(x):
        values = sub(x, training=False)
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if squashed:
            values[-1] = keras.ops.matmul(values[-1], last.kernel) + (last.bias if last.use_bias else 0.0)
        return values

    return scores


def class_indices(model, scores: np.ndarray, class_index) -> np.ndarray:
    """One output unit per sample: `class_index`, or by default the predicted class (tasks with
    classes) or the first output (numeric outputs)."""
    return _indices(scores, class_index, registry.task(infer_task(model)).class_names)


def _indices(scores: np.ndarray, class_index, has_classes: bool) -> np.ndarray:
    """`class_indices` for scores (N, units) of a task that has classes or not."""
    units = scores.shape[-1]
    if class_index is None:
        if has_classes and units > 1:
            return np.argmax(scores, axis=-1)
        return np.zeros(len(scores), "int64")
    if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)) or not 0 <= class_index < units:
        raise InputError(f"`class_index` must be an int in [0, {units - 1}] (the model has {units} output units) "
                         f"or None (the predicted class). Received: class_index={class_index!r}")
    return np.full(len(scores), int(class_index), "int64")


def _pick(scores, indices):
    import tensorflow as tf

    return tf.gather(scores, tf.constant(indices), axis=1, batch_dims=1)


def _class_scores(model, scores, class_index):
    """The score each sample's explanation differentiates: the unit `class_indices` picks. A classifier
    of one sigmoid unit scores class 1 alone (its logit); where it answers class 0 and no unit was
    asked for, the evidence for its answer is the logit's opposite, so that is the score explained."""
    values = np.asarray(scores)
    chosen = _pick(scores, class_indices(model, values, class_index))
    if class_index is None and values.shape[-1] == 1 and registry.task(infer_task(model)).class_names:
        chosen = chosen * np.where(values[:, 0] >= 0, 1.0, -1.0).astype("float32")
    return chosen


def _normalise(maps: np.ndarray) -> np.ndarray:
    """Each sample's map divided by its largest value, so it lies in [0, 1] (all zeros stay zeros)."""
    peak = maps.reshape(len(maps), -1).max(axis=1).reshape((-1,) + (1,) * (maps.ndim - 1))
    return np.where(peak > 0, maps / np.where(peak > 0, peak, 1.0), 0.0).astype("float32")


def _input_gradient_map(grads, shape: tuple[int, ...]) -> np.ndarray:
    """|∂ score / ∂ x| per input position, in [0, 1] per sample: the largest over the channels (the last
    axis) of a signal or image; a vector's features (`shape` of rank 1) are positions themselves."""
    grads = np.abs(np.asarray(grads))
    return _normalise(grads.max(axis=-1) if len(shape) > 1 else grads)


def _resize(maps: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """(N, *map size) maps stretched to the input's size, each map cell centred on the input
    positions it covers (linear interpolation; bilinear for images)."""
    if maps.shape[1:] == size:
        return maps
    if len(size) == 1:
        n, m = size[0], maps.shape[1]
        centres = (np.arange(m) + 0.5) * n / m - 0.5
        return np.stack([np.interp(np.arange(n), centres, row) for row in maps]).astype("float32")
    import tensorflow as tf

    return tf.image.resize(maps[..., None], size, method="bilinear").numpy()[..., 0]


def feature_maps(model, x, layers: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The feature maps (activations) of a CNN's layers for one input.

    Args:
        model: a `keras.Model` with convolutions (1D, 2D or 3D).
        x: one input of the model's shape, e.g. (8, 8, 1), or a batch of one.
        layers: list of layer names or None. Any of `map_layers(model)`.
            Defaults to None: the activation after each convolution
            (`block_outputs(model)`: `block1_act1`, `block2_act1`, ...).

    Returns:
        A dict, layer name → array (*spatial size, channels), in the order given.

    Example:
    >>> maps = feature_maps(model, images[0])  # doctest: +SKIP
    >>> {name: m.shape for name, m in maps.items()}  # doctest: +SKIP
    {'block1_act1': (8, 8, 16), 'block2_act1': (4, 4, 32)}
    """
    x, _ = _batch(model, x, single_only=True)
    _require_conv(model)
    valid = map_layers(model)
    if layers is None:
        layers = block_outputs(model)
    elif isinstance(layers, str):
        layers = [layers]
    layers = [_check_layer(model, name, valid, "feature-map layers") for name in layers]
    if not layers:
        raise InputError(f"`layers` must name at least one layer: {', '.join(valid)}. Received: layers=[]")
    sub = keras.Model(model.inputs[0], [model.get_layer(name).output for name in layers])
    outputs = sub(x, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {name: np.asarray(value)[0] for name, value in zip(layers, outputs)}


def filters(model, layer: str | None = None) -> np.ndarray:
    """The learned kernels of a convolution layer, one per filter.

    Args:
        model: a `keras.Model`.
        layer: str or None. A convolution layer, any of `conv_layers(model)`.
            Defaults to None (the first: its kernels act on the input itself,
            so they read as edge, blob or peak detectors).

    Returns:
        An array (filters, *kernel size, input channels): for `Conv2D(16, 3)`
        on a grey image, (16, 3, 3, 1). For a separable or depthwise layer, its
        depthwise kernels, one per input channel (and depth multiplier):
        (channels × multiplier, *kernel size, 1).

    Example:
    >>> filters(model, "block1_conv1").shape  # doctest: +SKIP
    (16, 3, 3, 1)
    """
    _input_shape(model)
    valid = conv_layers(model)
    layer = valid[0] if layer is None and valid else layer
    conv = model.get_layer(_check_layer(model, layer, valid, "convolution layers"))
    if hasattr(conv, "depthwise_kernel"):
        kernel = np.asarray(conv.depthwise_kernel)  # (*kernel, channels, multiplier)
        kernel = kernel.reshape(kernel.shape[:-2] + (-1,))
        return np.moveaxis(kernel, -1, 0)[..., None]
    kernel = np.asarray(conv.kernel)  # (*kernel, in, out); transposed convs: (*kernel, out, in)
    if isinstance(conv, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)):
        kernel = np.swapaxes(kernel, -1, -2)
    return np.moveaxis(kernel, -1, 0)


def _check_rank(model, what: str) -> tuple[int, ...]:
    shape = _input_shape(model)
    if len(shape) not in (2, 3):
        raise InputError(f"{what} is for 1D and 2D CNNs: inputs (length, channels) or (height, width, channels). "
                         f"Received: a model with input shape {shape}")
    return shape


def _grad_cam_weights(grads, spatial):
    """Grad-CAM: one weight per channel, the gradient averaged over positions."""
    import tensorflow as tf

    return tf.reduce_mean(grads, axis=spatial, keepdims=True)


def _hires_weights(grads, spatial):
    """HiResCAM: the gradient itself, one weight per position and channel."""
    return grads


# `grad_cam`'s variants: how the gradient weighs the feature maps; the first is the default.
CAM_VARIANTS = {"hires": _hires_weights, "grad-cam": _grad_cam_weights}


def grad_cam(model, x, class_index: int | None = None, layer: str | None = None, *,
             variant: str = "hires") -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): where in the input the evidence for a class lies.

    The gradient of the class score (before softmax) with respect to a conv
    layer's feature maps weighs the maps; their weighted sum over the channels,
    through a ReLU, is the class-activation map. It is divided by its maximum
    and stretched to the input's length (1D) or size (2D), so it can be laid
    over the input. By default (HiResCAM, Draelos & Carin 2020) each position
    is weighed by its own gradient; keras.io's recipe ("grad-cam") averages the
    gradient over the positions first, one weight per channel, which forgets
    where the head looks: on images whose class is decided by one quadrant it
    lights every place a channel fires, and points at the deciding quadrant
    for fewer than half of them.

    Args:
        model: a 1D or 2D CNN (`keras.Model`).
        x: one input of the model's shape, or a batch (N, ...).
        class_index: int or None. The output unit to explain. Defaults to None:
            each sample's predicted class (the first output for regression; for
            one sigmoid unit, the evidence for the answer, 0 or 1).
        layer: str or None. Any of `map_layers(model)`. Defaults to None: the
            last of `block_outputs(model)`, the last conv block's activation
            (deepest, so most about the class, yet still a map).
        variant: "hires" (default) or "grad-cam". "hires" multiplies each
            map by its gradient position by position: the same map as
            "grad-cam" where the layer feeds a global average
            (`head="global_avg"`), and faithful behind a `Flatten` head (the
            builders' default), where each position has weights of its own.
            "grad-cam" averages the gradient over positions: there it keeps
            which channels count but not where, and the average can be
            negative for every channel, which leaves a map of zeros.

    Returns:
        An array in [0, 1] of the input's spatial size: (length,) or (height,
        width) for one input, with a leading batch axis for a batch.

    Example:
    >>> heat = grad_cam(model, spectrum)  # doctest: +SKIP
    >>> int(heat.argmax())  # doctest: +SKIP
    117
    """
    import tensorflow as tf

    shape = _check_rank(model, "Grad-CAM")
    if variant not in CAM_VARIANTS:
        raise InputError(f"`variant` must be one of {', '.join(map(repr, CAM_VARIANTS))}. Received: variant={variant!r}")
    x, single = _batch(model, x)
    valid = map_layers(model)
    if layer is None and valid:
        layer = (block_outputs(model) or valid)[-1]
    layer = _check_layer(model, layer, valid, "feature-map layers")
    scores_of = _score_model(model, layer)
    with tf.GradientTape() as tape:
        maps, scores = scores_of(tf.constant(x))
        chosen = _class_scores(model, scores, class_index)
    grads = tape.gradient(chosen, maps)
    spatial = tuple(range(1, len(maps.shape) - 1))
    weights = CAM_VARIANTS[variant](grads, spatial)
    cam = tf.nn.relu(tf.reduce_sum(maps * weights, axis=-1)).numpy()
    cam = _normalise(_resize(cam, shape[:-1]))
    return cam[0] if single else cam


def saliency(model, x, class_index: int | None = None) -> np.ndarray:
    """The input-gradient (saliency) map: how much each input value moves the class score.

    For a spectrum, a curve over its wavenumbers: |∂ score / ∂ x| at each
    point (Simonyan et al. 2014), the largest over the channels, divided by
    its maximum. Where Grad-CAM is as coarse as its conv layer, this is as fine
    as the input, and noisier. Works for images too.

    Args:
        model: a `keras.Model` (any input rank).
        x: one input of the model's shape, or a batch (N, ...).
        class_index: int or None. The output unit. Defaults to None: each
            sample's predicted class (the first output for regression).

    Returns:
        An array in [0, 1] of the input's spatial size ((length,) for a
        spectrum; (features,) for a vector input), with a leading batch axis
        for a batch.

    Example:
    >>> curve = saliency(model, spectrum)  # doctest: +SKIP
    """
    import tensorflow as tf

    _input_shape(model)
    x, single = _batch(model, x)
    scores_of = _score_model(model, None)
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        (scores,) = scores_of(inputs)
        chosen = _class_scores(model, scores, class_index)
    grads = _input_gradient_map(tape.gradient(chosen, inputs), x.shape[1:])
    return grads[0] if single else grads


def saliency_exported(version_dir, x, class_index: int | None = None, output: str | None = None) -> np.ndarray:
    """`saliency` for an exported version, with TensorFlow alone.

    An export holds the serving function, not the layers, so the score is its
    first served output (`probabilities` or `predictions`, after softmax) and
    Grad-CAM and feature maps, which need a layer's output, are not available.

    Args:
        version_dir: an exported version folder (`saved_models/NAME/VERSION`).
        x: one input of the model's shape, or a batch (N, ...).
        class_index: int or None. The output unit. Defaults to None (as `saliency`).
        output: str or None. The served output to differentiate. Defaults to None
            (the first output of the export's task).

    Returns:
        As `saliency`.
    """
    import tensorflow as tf


    metadata = read_metadata(version_dir)
    entry = registry.task(metadata["task"])
    output = output or entry.outputs[0]
    loaded = tf.saved_model.load(str(version_dir))  # kept: the signature needs its variables alive
    signature = loaded.signatures[SIGNATURE]
    x, single = _as_batch(x, tuple(metadata["input"]["shape"]))
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        scores = signature(**{metadata["input"]["name"]: inputs})[output]
        if len(scores.shape) != 2:
            raise InputError(f"Saliency explains an answer of one vector per sample; the export's {output!r} has "
                             f"shape {tuple(scores.shape)} (an image or signal). Received: {str(version_dir)!r}")
        chosen = _pick(scores, _indices(scores.numpy(), class_index, entry.class_names))
    grads = _input_gradient_map(tape.gradient(chosen, inputs), x.shape[1:])
    return grads[0] if single else grads
