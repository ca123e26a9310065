"""Model builders: `build_mlp` and `build_cnn` turn plain values into Keras models.

Nothing here knows about hyperparameter search: `dlimaging.hypermodels`
translates a Keras Tuner `hp` into these arguments.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras
import numpy as np

from dlimaging import registry
from dlimaging.augment import resolve_augmentation
from dlimaging.errors import InputError
from dlimaging.heads import (
    TARGET_SCALING,
    check_scale_targets,
    check_training,
    finish,
    output_layer,
    output_units,
    target_scaling_layer,
)
from dlimaging.validation import (
    check_argument,
    check_input_shape,
    check_number,
    check_positive_int,
    resolve_activation,
)

POOL_SIZE = 2

_CONV = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
_SEPARABLE = {1: keras.layers.SeparableConv1D, 2: keras.layers.SeparableConv2D}
_POOL = {
    "max": {1: keras.layers.MaxPooling1D, 2: keras.layers.MaxPooling2D, 3: keras.layers.MaxPooling3D},
    "avg": {
        1: keras.layers.AveragePooling1D,
        2: keras.layers.AveragePooling2D,
        3: keras.layers.AveragePooling3D,
    },
}
_GLOBAL_POOL = {
    "global_avg": {
        1: keras.layers.GlobalAveragePooling1D,
        2: keras.layers.GlobalAveragePooling2D,
        3: keras.layers.GlobalAveragePooling3D,
    },
    "global_max": {
        1: keras.layers.GlobalMaxPooling1D,
        2: keras.layers.GlobalMaxPooling2D,
        3: keras.layers.GlobalMaxPooling3D,
    },
}


def conv_output_size(input_size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """The lecture's output-size formula: floor((input + 2·padding − kernel) / stride) + 1.

    Args:
        input_size: int. Size of the input along one axis.
        kernel_size: int. Size of the kernel (or pooling window) along that axis.
        stride: int. Step between windows. Defaults to 1.
        padding: int. Zeros added on each side. Defaults to 0.

    Returns:
        The output size along that axis.

    Example:
    >>> conv_output_size(5, 3, stride=1, padding=0)
    3
    >>> conv_output_size(32, 5, stride=2, padding=2)
    16
    """
    input_size = check_positive_int("input_size", input_size)
    kernel_size = check_positive_int("kernel_size", kernel_size)
    stride = check_positive_int("stride", stride)
    padding = int(check_number("padding", padding, low=0, integer=True))
    if kernel_size > input_size + 2 * padding:
        raise InputError(
            f"`kernel_size` ({kernel_size}) is larger than the padded input "
            f"({input_size} + 2×{padding}). Received: input_size={input_size}, "
            f"kernel_size={kernel_size}, padding={padding}"
        )
    return (input_size + 2 * padding - kernel_size) // stride + 1


# ---------------------------------------------------------------- checks


def _check_common(*, activation, dropout, l1, l2, batch_norm, batch_norm_momentum, compile):
    resolve_activation(activation)
    for name, value in (("dropout", dropout), ("l1", l1), ("l2", l2), ("batch_norm_momentum", batch_norm_momentum)):
        check_argument(name, value)
    for name, value in (("batch_norm", batch_norm), ("compile", compile)):
        if not isinstance(value, bool):
            raise InputError(f"`{name}` must be True or False. Received: {name}={value!r}")


def _check_conv(conv, rank, input_shape):
    check_argument("conv", conv)
    if conv == "separable" and rank == 3:
        raise InputError(
            "conv='separable' (depthwise + pointwise) is available for 1D and 2D inputs; "
            f"Keras has no 3D depthwise convolution. Received: conv='separable' with "
            f"input_shape={input_shape}"
        )


def _spatial_tuple(name: str, value: Any, rank: int) -> tuple[int, ...]:
    values = check_argument(name, value)
    if len(values) == 1:
        return values * rank
    if len(values) != rank:
        raise InputError(
            f"`{name}` must be an int or a tuple of {rank} ints for {rank}D inputs. "
            f"Received: {name}={value!r}"
        )
    return values


def _check_blocks(block, convs_per_block, padding):
    """The convs per block: None gives 1 in a plain block and 2 in a residual one."""
    check_argument("block", block)
    convs_per_block = check_argument("convs_per_block", convs_per_block)
    if block == "plain":
        return 1 if convs_per_block is None else convs_per_block
    if convs_per_block == 1:
        raise InputError(
            "block='residual' needs at least 2 convs per block: around one conv the skip connection "
            "makes the block nearly linear (He et al. 2016). Use convs_per_block=None (2) or more. "
            "Received: convs_per_block=1"
        )
    if padding != "same":
        raise InputError(
            "block='residual' needs padding='same': the skip connection is added to the convs' output, "
            f"so both must keep the same size. Received: padding={padding!r}"
        )
    return 2 if convs_per_block is None else convs_per_block


def _check_dilation(dilation_rate, filters, strides) -> tuple[int, ...]:
    """One dilation rate per block, from an int or a tuple of one per block."""
    rates = check_argument("dilation_rate", dilation_rate)
    if len(rates) == 1:
        rates = rates * len(filters)
    elif len(rates) != len(filters):
        raise InputError(
            f"`dilation_rate` must be an int or one per block ({len(filters)} for filters={tuple(filters)}). "
            f"Received: dilation_rate={dilation_rate!r}"
        )
    if max(rates) > 1 and max(strides) > 1:
        raise InputError(
            "`strides` > 1 and `dilation_rate` > 1 cannot go together: Keras convolutions refuse both in one "
            "layer, and the first conv of each block takes both. Use strides=1 with dilation (pooling still "
            f"shrinks the size), or dilation_rate=1. Received: strides={strides}, dilation_rate={dilation_rate!r}"
        )
    return rates


def _check_spatial_sizes(input_shape, filters, kernel_size, strides, padding, pooling, convs_per_block,
                         dilation_rates=None):
    """Follows the spatial size through every block with the lecture's formula; a kernel dilated
    by d spans (k − 1)·d + 1 inputs."""
    sizes = list(input_shape[:-1])
    dilation_rates = dilation_rates or (1,) * len(filters)
    for block, dilation in enumerate(dilation_rates, start=1):
        for conv in range(1, convs_per_block + 1):
            stride = strides if conv == 1 else (1,) * len(sizes)
            for axis, size in enumerate(sizes):
                k, s = kernel_size[axis], stride[axis]
                extent = (k - 1) * dilation + 1
                if padding == "valid":
                    if extent > size:
                        spans = f" with dilation_rate={dilation} spans {extent} inputs, is" if dilation > 1 else " is"
                        raise InputError(
                            f"block{block}_conv{conv}: kernel_size={k}{spans} larger than its input "
                            f"size {size} (axis {axis}, padding='valid'). Use a smaller "
                            "kernel_size or dilation_rate, fewer blocks, or padding='same'."
                        )
                    sizes[axis] = conv_output_size(size, extent, s, 0)
                else:
                    sizes[axis] = math.ceil(size / s)
        if pooling is not None:
            if any(size < POOL_SIZE for size in sizes):
                raise InputError(
                    f"block{block}_pool: pooling would shrink the spatial size {tuple(sizes)} "
                    f"below 1 (input_shape={tuple(input_shape)}, filters={tuple(filters)}). "
                    "Use fewer blocks, smaller strides or pooling=None."
                )
            sizes = [conv_output_size(size, POOL_SIZE, POOL_SIZE, 0) for size in sizes]


# ---------------------------------------------------------------- pieces

# The input's standardisation layer; `adapt` sets it, and the target scaling, from the training split.
STANDARDIZE = "standardize"


def _standardize(x, mode: str, rank: int):
    """A `Normalization` layer named "standardize", or nothing for mode "none".

    It comes after augmentation: baseline, scatter and gain model how an instrument distorts
    its raw values (a gain multiplies around zero, not around the mean), so they act on raw
    values, and the network then sees standardised values in training and at inference alike.
    """
    if mode == "none":
        return x
    # "global": one statistic (axis=None); "per_feature": one per position and channel.
    axis = None if mode == "global" else tuple(range(1, rank + 1))
    return keras.layers.Normalization(axis=axis, name=STANDARDIZE)(x)


def _regularizer(l1: float, l2: float):
    # keras.regularizers.L1L2 is exactly l1·Σ|w| + l2·Σw².
    return keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None


def _batch_norm(x, name, momentum):
    """`BatchNormalization` whose moving statistics follow the batches with `momentum`. Keras's 0.99
    averages over about 100 steps and so still holds its initial values after the few dozen steps
    of a small dataset's epochs: the model then scores near chance at inference (issue 11)."""
    return keras.layers.BatchNormalization(momentum=momentum, name=name)(x)


def _dense_block(x, units, *, prefix, activation, dropout, regularizer, batch_norm, batch_norm_momentum):
    x = keras.layers.Dense(
        units, use_bias=not batch_norm, kernel_regularizer=regularizer, name=f"{prefix}"
    )(x)
    if batch_norm:
        x = _batch_norm(x, f"{prefix}_bn", batch_norm_momentum)
    x = keras.layers.Activation(activation, name=f"{prefix}_act")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{prefix}_dropout")(x)
    return x


def _conv_layer(x, filters, *, name, rank, kernel_size, strides, dilation_rate, padding, conv, activation,
                batch_norm, batch_norm_momentum, regularizer):
    """conv → (BatchNormalization) → activation, named `blockB_convI`, `blockB_bnI`, `blockB_actI`;
    no activation when `activation` is None (the last conv of a residual block)."""
    common = dict(padding=padding, strides=strides, dilation_rate=dilation_rate, use_bias=not batch_norm, name=name)
    if conv == "separable":
        layer = _SEPARABLE[rank](filters, kernel_size, depthwise_regularizer=regularizer,
                                 pointwise_regularizer=regularizer, **common)
    else:
        layer = _CONV[rank](filters, kernel_size, kernel_regularizer=regularizer, **common)
    x = layer(x)
    if batch_norm:
        x = _batch_norm(x, name.replace("_conv", "_bn"), batch_norm_momentum)
    if activation is None:
        return x
    return keras.layers.Activation(activation, name=name.replace("_conv", "_act"))(x)


def _plain_block(x, filters, *, block, convs, strides, activation, **settings):
    """`convs` × [conv → (BatchNormalization) → activation]; the first conv takes the stride."""
    for index in range(1, convs + 1):
        x = _conv_layer(x, filters, name=f"block{block}_conv{index}", strides=strides if index == 1 else 1,
                        activation=activation, **settings)
    return x


def _residual_block(x, filters, *, block, convs, strides, activation, **settings):
    """The residual block of He et al. (2016): the convs of a plain block, the last one without its
    activation, plus a skip connection from the block's input, then the activation.

    The skip is the identity, or a 1×1 conv with the block's stride (`blockB_skip`, with batch norm
    `blockB_skip_bn`) when the stride or the number of channels changes. The sum is `blockB_add` and
    the activation after it `blockB_act`.
    """
    shortcut = x
    for index in range(1, convs + 1):
        x = _conv_layer(x, filters, name=f"block{block}_conv{index}", strides=strides if index == 1 else 1,
                        activation=activation if index < convs else None, **settings)
    if shortcut.shape[-1] != filters or max(strides) > 1:
        batch_norm = settings["batch_norm"]
        shortcut = _CONV[settings["rank"]](
            filters, 1, strides=strides, padding="same", use_bias=not batch_norm,
            kernel_regularizer=settings["regularizer"], name=f"block{block}_skip",
        )(shortcut)
        if batch_norm:
            shortcut = _batch_norm(shortcut, f"block{block}_skip_bn", settings["batch_norm_momentum"])
    x = keras.layers.Add(name=f"block{block}_add")([x, shortcut])
    return keras.layers.Activation(activation, name=f"block{block}_act")(x)


# `validation.BLOCKS` name → the function that builds one block.
_BLOCKS = {"plain": _plain_block, "residual": _residual_block}


def _head(x, head, rank, dense_units, *, activation, dropout, regularizer, batch_norm, batch_norm_momentum):
    """Flatten or global pooling, then the hidden Dense layers of the head."""
    if head == "flatten":
        x = keras.layers.Flatten(name="head_flatten")(x)
    else:
        x = _GLOBAL_POOL[head][rank](name="head_pool")(x)
    for index, units in enumerate(dense_units, start=1):
        x = _dense_block(x, units, prefix=f"head_dense{index}", activation=activation, dropout=dropout,
                         regularizer=regularizer, batch_norm=batch_norm, batch_norm_momentum=batch_norm_momentum)
    return x


# ---------------------------------------------------------------- builders


def build_mlp(
    input_shape: Sequence[int],
    num_classes: int | None = None,
    *,
    task: str = registry.DEFAULT_TASK,
    num_outputs: int = 1,
    hidden_units: Sequence[int] = (128, 64),
    activation: Any = "relu",
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    batch_norm: bool = False,
    batch_norm_momentum: float = 0.9,
    augmentation: Any = None,
    standardize: str = "none",
    scale_targets: bool | None = None,
    compile: bool = True,
    optimizer: Any = registry.DEFAULT_OPTIMIZER,
    learning_rate: float = 1e-3,
    beta_1: float | None = None,
    beta_2: float | None = None,
    epsilon: float | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
    schedule: str = "constant",
    warmup_epochs: int = 0,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    loss: str | None = None,
    label_smoothing: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """Builds a multilayer perceptron (fully connected network).

    Image or signal inputs are flattened first. Each hidden layer is
    Dense → (BatchNormalization) → activation → (Dropout).

    Args:
        input_shape: tuple of ints. Shape of one sample without the batch
            axis: `(features,)`, `(length, channels)`, `(height, width, channels)`
            or `(depth, height, width, channels)`.
        num_classes: int or None. Number of classes for "classification"
            (>= 2) or labels for "multilabel". Defaults to None.
        task: str. "classification" (softmax, sparse categorical
            cross-entropy), "binary" (one sigmoid unit), "multilabel"
            (`num_classes` sigmoid units) or "regression" (`num_outputs`
            linear units, MSE). Defaults to "classification".
        num_outputs: int. Number of regression outputs. Defaults to 1.
        hidden_units: tuple of ints. Units of each hidden layer; `()` gives
            plain logistic or linear regression. Defaults to (128, 64).
        activation: str, callable or None. Any Keras activation name.
            Defaults to "relu".
        dropout: float in [0, 1). Fraction of units dropped after every
            hidden layer, in training only. Defaults to 0.0.
        l1: float >= 0. L1 penalty l1·Σ|w| on every kernel, the output layer
            included. Defaults to 0.0.
        l2: float >= 0. L2 penalty l2·Σw² on every kernel. Defaults to 0.0.
        batch_norm: bool. Batch normalization before each activation.
            Defaults to False.
        batch_norm_momentum: float in [0, 1). Momentum of the batch norm's
            moving mean and variance, which inference uses. Keras's 0.99
            averages over about 100 steps and lags far behind on a small
            dataset (a few dozen steps per epoch): the model then scores near
            chance at inference although its training loss falls. 0.9 (PyTorch's
            default, 0.1 there) follows within an epoch or two. Defaults to 0.9.
        augmentation: dict, Keras layer or None. A dict holds the options of
            `image_augmentation` or `signal_augmentation` (picked by the input
            rank). Acts only in training. Defaults to None.
        standardize: str. "none", "global" (one mean and variance over
            every value) or "per_feature" (one per position and channel): a
            Keras `Normalization` layer named "standardize" right after the
            input (and after augmentation, which models distortions of the
            raw instrument values). Its statistics come from the training
            split through `dlimaging.models.adapt`, and it stays in the model,
            so an exported model takes raw values. Defaults to "none".
        scale_targets: bool or None. For tasks with numeric outputs
            ("regression"): a `Normalization(invert=True)` layer named
            "target_scaling" after the output layer, adapted by `adapt` on the
            training targets, so the network learns standardised targets (the
            loss is computed on them) while the model returns real units.
            None means True for tasks with numeric outputs and False for the
            others; True with another task is refused. Defaults to None.
        compile: bool. Compile with the task's loss and metrics.
            Defaults to True.
        optimizer: str or `keras.optimizers.Optimizer`. A name from
            `dlimaging.registry.OPTIMIZERS` ("adam", "adamw", "sgd",
            "rmsprop") or an optimizer object. Defaults to "adam".
        learning_rate: float > 0. Defaults to 1e-3.
        beta_1, beta_2, epsilon, momentum, weight_decay: float or None.
            Settings of the named optimizer; each is refused by an optimizer
            it does not apply to (`momentum` by "adam", say), and None keeps
            Keras's default (Adam: 0.9, 0.999, 1e-7; SGD: momentum 0.0;
            AdamW: weight_decay 0.004). Defaults to None.
        schedule: str. The learning rate over training: "constant",
            "cosine" (from `learning_rate` down to 0 at the last step, as a
            half cosine) or "exponential" (down to 1% of `learning_rate` at
            the last step). Defaults to "constant".
        warmup_epochs: int >= 0. Epochs over which the learning rate first
            rises linearly from 0 to `learning_rate`; the schedule then runs
            over the remaining epochs. Defaults to 0.
        epochs, steps_per_epoch: int or None. The length of the training,
            which a schedule (or a warm-up) needs and refuses to run without:
            `dlimaging train` and `dlimaging tune` pass them; calling the
            builder yourself, pass what `fit` will run. A constant rate
            ignores them. Defaults to None.
        loss: str or None. For tasks with a choice of loss ("regression":
            "mse", "mae" or "huber"). Defaults to None (the task's default).
        label_smoothing: float in [0, 1). For tasks with classes: the
            cross-entropy's target becomes (1 − label_smoothing) for the true
            class plus label_smoothing / C for each of the C classes
            (binary tasks: 1 − ls/2 and ls/2), so the model is not pushed to
            ever more confident outputs. Refused for tasks without classes
            ("regression"). Defaults to 0.0.
        name: str or None. Model name. Defaults to "multilayer_perceptron".

    Returns:
        A `keras.Model`, compiled unless `compile=False`.

    Example:
    >>> model = build_mlp((8, 8, 1), num_classes=10, hidden_units=(64,), dropout=0.2)
    """
    input_shape = check_input_shape(input_shape, (1, 2, 3, 4), "build_mlp")
    out_units = output_units(task, num_classes, num_outputs)
    hidden_units = check_argument("hidden_units", hidden_units)
    _check_common(activation=activation, dropout=dropout, l1=l1, l2=l2, batch_norm=batch_norm,
                  batch_norm_momentum=batch_norm_momentum, compile=compile)
    training = check_training(
        task=task, loss=loss, optimizer=optimizer, learning_rate=learning_rate, beta_1=beta_1,
        beta_2=beta_2, epsilon=epsilon, momentum=momentum, weight_decay=weight_decay, schedule=schedule,
        warmup_epochs=warmup_epochs, epochs=epochs, steps_per_epoch=steps_per_epoch,
        label_smoothing=label_smoothing,
    )
    augmentation = resolve_augmentation(augmentation, input_shape)
    check_argument("standardize", standardize)
    scale_targets = check_scale_targets(task, scale_targets)
    regularizer = _regularizer(l1, l2)

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    if augmentation is not None:
        x = augmentation(x)
    x = _standardize(x, standardize, len(input_shape))
    if len(input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    for index, units in enumerate(hidden_units, start=1):
        x = _dense_block(
            x, units, prefix=f"dense{index}", activation=resolve_activation(activation),
            dropout=dropout, regularizer=regularizer, batch_norm=batch_norm,
            batch_norm_momentum=batch_norm_momentum,
        )
    outputs = output_layer(x, task, out_units, regularizer)
    if scale_targets:
        outputs = target_scaling_layer(outputs)
    model = keras.Model(inputs, outputs, name=name or "multilayer_perceptron")
    return finish(model, compile=compile, **training)


def build_cnn(
    input_shape: Sequence[int],
    num_classes: int | None = None,
    *,
    task: str = registry.DEFAULT_TASK,
    num_outputs: int = 1,
    filters: Sequence[int] = (32, 64),
    kernel_size: Any = 3,
    strides: Any = 1,
    dilation_rate: Any = 1,
    padding: str = "same",
    pooling: str | None = "max",
    conv: str = "standard",
    block: str = "plain",
    convs_per_block: int | None = None,
    activation: Any = "relu",
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    batch_norm: bool = False,
    batch_norm_momentum: float = 0.9,
    head: str = "flatten",
    dense_units: Sequence[int] = (128,),
    augmentation: Any = None,
    standardize: str = "none",
    scale_targets: bool | None = None,
    compile: bool = True,
    optimizer: Any = registry.DEFAULT_OPTIMIZER,
    learning_rate: float = 1e-3,
    beta_1: float | None = None,
    beta_2: float | None = None,
    epsilon: float | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
    schedule: str = "constant",
    warmup_epochs: int = 0,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    loss: str | None = None,
    label_smoothing: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """Builds a 1D, 2D or 3D convolutional network.

    The rank of `input_shape` picks the convolutions: `(length, channels)`
    gives 1D (spectra, signals), `(height, width, channels)` gives 2D
    (images) and `(depth, height, width, channels)` gives 3D (volumes,
    hyperspectral cubes). Each entry of `filters` is one block:
    `convs_per_block` × [conv → (BatchNormalization) → activation], then
    pooling (window 2, stride 2), then dropout. The head flattens or pools
    globally, then applies `dense_units` hidden Dense layers (each followed by
    dropout) and the task's output layer.

    `block="residual"` makes each block residual (He et al. 2016): conv →
    (batch norm) → activation → conv → (batch norm), plus a skip connection
    from the block's input, then the activation. The skip is the identity, or
    a 1×1 conv with the block's stride when the channels or the stride
    change. This answers the lecture's slide on vanishing and exploding
    gradients: through the sum, the gradient reaches every block by a short
    path that does not shrink through each layer's weights and activations,
    so deeper networks still train. `dilation_rate` spreads each kernel's
    taps d apart, so a kernel of size k spans (k − 1)·d + 1 inputs: with
    rates (1, 2, 4, 8) the receptive field grows exponentially with depth at
    no cost in parameters, as in the dilated CNNs and TCNs that lead on
    MNIST-1D.

    Args:
        input_shape: tuple of 2, 3 or 4 ints, channels last.
        num_classes: int or None. As in `build_mlp`. Defaults to None.
        task: str. As in `build_mlp`. Defaults to "classification".
        num_outputs: int. Number of regression outputs. Defaults to 1.
        filters: tuple of ints. Filters of each block. Defaults to (32, 64).
        kernel_size: int or tuple. Kernel size of every conv. Defaults to 3.
        strides: int or tuple. Stride of the first conv of each block.
            Defaults to 1.
        dilation_rate: int or tuple of ints. Dilation of every conv: one
            rate for all blocks, or one per block (`(1, 2, 4, 8)`). Refused
            with `strides` > 1, which Keras convolutions cannot combine with
            it. Defaults to 1.
        padding: str. "same" or "valid" ("same" only, for residual blocks).
            Defaults to "same".
        pooling: str or None. "max", "avg" or None after each block.
            Defaults to "max".
        conv: str. "standard", or "separable" for a depthwise convolution
            followed by a pointwise (1×1) one (1D and 2D). Defaults to "standard".
        block: str. "plain" or "residual" (see above). Layers are named
            `blockB_convI`, `blockB_bnI`, `blockB_actI`; a residual block adds
            `blockB_skip` (and `blockB_skip_bn`) when it projects, `blockB_add`
            and `blockB_act`. Defaults to "plain".
        convs_per_block: int or None. Convolutions per block; None gives 1
            in a plain block and 2 in a residual one, which refuses 1.
            Defaults to None.
        activation: str, callable or None. Defaults to "relu".
        dropout: float in [0, 1). Dropout after each conv block and after each
            hidden Dense layer of the head, in training only. Defaults to 0.0.
        l1: float >= 0. L1 penalty on every kernel (conv, dense and output).
            Defaults to 0.0.
        l2: float >= 0. L2 penalty on every kernel. Defaults to 0.0.
        batch_norm: bool. Batch normalization before each activation.
            Defaults to False.
        batch_norm_momentum: float in [0, 1). As in `build_mlp`. Defaults to 0.9.
        head: str. "flatten", "global_avg" or "global_max". Defaults to "flatten".
        dense_units: tuple of ints. Hidden Dense layers of the head.
            Defaults to (128,).
        augmentation: dict, Keras layer or None. As in `build_mlp`.
        standardize, scale_targets: as in `build_mlp`.
        compile, optimizer, learning_rate, beta_1, beta_2, epsilon, momentum,
            weight_decay, schedule, warmup_epochs, epochs, steps_per_epoch,
            loss, label_smoothing: as in `build_mlp`.
        name: str or None. Model name. Defaults to "convnet1d", "convnet2d" or "convnet3d".

    Returns:
        A `keras.Model`, compiled unless `compile=False`.

    Example:
    >>> model = build_cnn((8, 8, 1), num_classes=10, filters=(16, 32), dropout=0.1)
    >>> resnet = build_cnn((40, 1), 10, filters=(32, 32, 64), block="residual", dilation_rate=(1, 2, 4),
    ...                    batch_norm=True, head="global_avg", schedule="cosine", warmup_epochs=2,
    ...                    epochs=30, steps_per_epoch=63)
    """
    input_shape = check_input_shape(input_shape, (2, 3, 4), "build_cnn")
    rank = len(input_shape) - 1
    out_units = output_units(task, num_classes, num_outputs)
    filters = check_argument("filters", filters)
    kernel_size = _spatial_tuple("kernel_size", kernel_size, rank)
    strides = _spatial_tuple("strides", strides, rank)
    check_argument("padding", padding)
    check_argument("pooling", pooling)
    _check_conv(conv, rank, input_shape)
    convs_per_block = _check_blocks(block, convs_per_block, padding)
    dilation_rates = _check_dilation(dilation_rate, filters, strides)
    check_argument("head", head)
    dense_units = check_argument("dense_units", dense_units)
    _check_common(activation=activation, dropout=dropout, l1=l1, l2=l2, batch_norm=batch_norm,
                  batch_norm_momentum=batch_norm_momentum, compile=compile)
    training = check_training(
        task=task, loss=loss, optimizer=optimizer, learning_rate=learning_rate, beta_1=beta_1,
        beta_2=beta_2, epsilon=epsilon, momentum=momentum, weight_decay=weight_decay, schedule=schedule,
        warmup_epochs=warmup_epochs, epochs=epochs, steps_per_epoch=steps_per_epoch,
        label_smoothing=label_smoothing,
    )
    _check_spatial_sizes(input_shape, filters, kernel_size, strides, padding, pooling, convs_per_block,
                         dilation_rates)
    augmentation = resolve_augmentation(augmentation, input_shape)
    check_argument("standardize", standardize)
    scale_targets = check_scale_targets(task, scale_targets)
    regularizer = _regularizer(l1, l2)
    act = resolve_activation(activation)

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    if augmentation is not None:
        x = augmentation(x)
    x = _standardize(x, standardize, len(input_shape))
    layer_settings = dict(rank=rank, kernel_size=kernel_size, padding=padding, conv=conv, activation=act,
                          batch_norm=batch_norm, batch_norm_momentum=batch_norm_momentum, regularizer=regularizer)
    for index, (block_filters, dilation) in enumerate(zip(filters, dilation_rates), start=1):
        x = _BLOCKS[block](x, block_filters, block=index, convs=convs_per_block, strides=strides,
                           dilation_rate=dilation, **layer_settings)
        if pooling is not None:
            x = _POOL[pooling][rank](pool_size=POOL_SIZE, name=f"block{index}_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"block{index}_dropout")(x)
    x = _head(x, head, rank, dense_units, activation=act, dropout=dropout, regularizer=regularizer,
              batch_norm=batch_norm, batch_norm_momentum=batch_norm_momentum)
    outputs = output_layer(x, task, out_units, regularizer)
    if scale_targets:
        outputs = target_scaling_layer(outputs)
    model = keras.Model(inputs, outputs, name=name or f"convnet{rank}d")
    return finish(model, compile=compile, **training)


# ---------------------------------------------------------------- adapting the standardisation


def _constant_to_unit_variance(layer) -> None:
    """A feature (or target) that never varies gets variance 1: standardising it then subtracts
    its mean and divides by 1, rather than multiplying any later change by 1/√ε. A feature whose
    standard deviation is below 1e-6 of its magnitude counts as constant: in float32 it is."""
    mean = np.asarray(layer.adapt_mean, "float64")
    variance = np.asarray(layer.adapt_variance, "float64")
    if not (np.isfinite(mean).all() and np.isfinite(variance).all()):
        what = "targets" if layer.name == TARGET_SCALING else "inputs"
        raise InputError(f"adapt: the training {what} hold NaN or infinite values; "
                         f"layer {layer.name!r} cannot be standardised on them.")
    constant = variance <= np.square(1e-6 * np.maximum(np.abs(mean), 1.0))
    layer.adapt_variance.assign(np.where(constant, 1.0, variance).astype("float32"))
    layer.finalize_state()


def _split(train, y):
    """(inputs, targets) as a dataset of batches or arrays, from either form `adapt` takes."""
    import tensorflow as tf

    if isinstance(train, tf.data.Dataset):
        if y is not None:
            raise InputError("adapt: `y` goes with array inputs; a dataset already holds (x, y) batches. "
                             f"Received: y of type {type(y).__name__}")
        inputs = train.map(lambda x, *rest: x)

        def targets(x, y, *rest):
            y = tf.cast(y, "float32")
            return y[:, None] if y.shape.rank == 1 else y

        return inputs, train.map(targets)
    inputs = np.asarray(train, "float32")
    if y is None:
        return inputs, None
    y = np.asarray(y, "float32")
    return inputs, (y[:, None] if y.ndim == 1 else y)


def adapt(model: keras.Model, train: Any, y: Any = None) -> keras.Model:
    """Sets the model's standardisation from the training split; call it before `fit`.

    Adapts the "standardize" layer (`standardize="global"` or `"per_feature"`) on the training
    inputs and the "target_scaling" layer (`scale_targets`) on the training targets. Use the
    training split only: the validation and test splits are then standardised with statistics
    they did not contribute to, as new data will be. `dlimaging.training.train` and the
    hypermodels' `fit` (so `tune`) call it. A constant feature or target gets variance 1, so
    nothing is divided by zero. A model without these layers is returned unchanged.

    Args:
        model: keras.Model. A model from `build_mlp` or `build_cnn`.
        train: a `tf.data.Dataset` of (x, y) batches, or an array of inputs.
        y: array or None. The targets, when `train` is an array. Defaults to None
            (then the target scaling, if any, is left as it is).

    Returns:
        The model, adapted in place.

    Example:
    >>> model = build_mlp((3,), task="regression", standardize="per_feature")
    >>> x = np.random.default_rng(0).normal(5, 2, (64, 3))
    >>> adapt(model, x, 1000 + 500 * x[:, :1])
    """
    layers = {layer.name: layer for layer in model.layers if layer.name in (STANDARDIZE, TARGET_SCALING)}
    if not layers:
        return model
    inputs, targets = _split(train, y)
    if STANDARDIZE in layers:
        layers[STANDARDIZE].adapt(inputs)
        _constant_to_unit_variance(layers[STANDARDIZE])
    if TARGET_SCALING in layers and targets is not None:
        layers[TARGET_SCALING].adapt(targets)
        _constant_to_unit_variance(layers[TARGET_SCALING])
    # The statistics are constants inside traced functions: trace again with the new ones.
    for attribute in ("train_function", "test_function", "predict_function"):
        if getattr(model, attribute, None) is not None:
            setattr(model, attribute, None)
    return model
