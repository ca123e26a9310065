"""The builders' building blocks and their argument checks: convolution blocks, residual
blocks, heads, pooling, standardisation, and the lecture's output-size formula.

Private to `dlimaging.models`, except `conv_output_size`, which is public.
"""

from __future__ import annotations

import math
from typing import Any

import keras

from dlimaging.errors import InputError
from dlimaging.validation import (
    check_argument,
    check_number,
    check_positive_int,
    resolve_activation,
)

POOL_SIZE = 2
CONV = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
_SEPARABLE = {1: keras.layers.SeparableConv1D, 2: keras.layers.SeparableConv2D}
POOL = {
    "max": {1: keras.layers.MaxPooling1D, 2: keras.layers.MaxPooling2D, 3: keras.layers.MaxPooling3D},
    "avg": {
        1: keras.layers.AveragePooling1D,
        2: keras.layers.AveragePooling2D,
        3: keras.layers.AveragePooling3D,
    },
}


GLOBAL_POOL = {
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


def check_common(*, activation, dropout, l1, l2, batch_norm, batch_norm_momentum, compile):
    resolve_activation(activation)
    for name, value in (("dropout", dropout), ("l1", l1), ("l2", l2), ("batch_norm_momentum", batch_norm_momentum)):
        check_argument(name, value)
    for name, value in (("batch_norm", batch_norm), ("compile", compile)):
        if not isinstance(value, bool):
            raise InputError(f"`{name}` must be True or False. Received: {name}={value!r}")


def check_conv(conv, rank, input_shape):
    check_argument("conv", conv)
    if conv == "separable" and rank == 3:
        raise InputError(
            "conv='separable' (depthwise + pointwise) is available for 1D and 2D inputs; "
            f"Keras has no 3D depthwise convolution. Received: conv='separable' with "
            f"input_shape={input_shape}"
        )


def spatial_tuple(name: str, value: Any, rank: int) -> tuple[int, ...]:
    values = check_argument(name, value)
    if len(values) == 1:
        return values * rank
    if len(values) != rank:
        raise InputError(
            f"`{name}` must be an int or a tuple of {rank} ints for {rank}D inputs. "
            f"Received: {name}={value!r}"
        )
    return values


def check_blocks(block, convs_per_block, padding):
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


def check_dilation(dilation_rate, filters, strides) -> tuple[int, ...]:
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


def check_spatial_sizes(input_shape, filters, kernel_size, strides, padding, pooling, convs_per_block,
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


# The input's standardisation layer; `adapt` sets it, and the target scaling, from the training split.
STANDARDIZE = "standardize"


def standardize_layer(x, mode: str, rank: int):
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


def kernel_penalty(l1: float, l2: float):
    # keras.regularizers.L1L2 is exactly l1·Σ|w| + l2·Σw².
    return keras.regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None


def _batch_norm(x, name, momentum):
    """`BatchNormalization` whose moving statistics follow the batches with `momentum`. Keras's 0.99
    averages over about 100 steps and so still holds its initial values after the few dozen steps
    of a small dataset's epochs: the model then scores near chance at inference (issue 11)."""
    return keras.layers.BatchNormalization(momentum=momentum, name=name)(x)


def dense_block(x, units, *, prefix, activation, dropout, regularizer, batch_norm, batch_norm_momentum):
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
        layer = CONV[rank](filters, kernel_size, kernel_regularizer=regularizer, **common)
    x = layer(x)
    if batch_norm:
        x = _batch_norm(x, name.replace("_conv", "_bn"), batch_norm_momentum)
    if activation is None:
        return x
    return keras.layers.Activation(activation, name=name.replace("_conv", "_act"))(x)


def _plain_block(x, filters, *, block, convs, strides, activation, prefix="block", **settings):
    """`convs` × [conv → (BatchNormalization) → activation]; the first conv takes the stride.
    Layers are named `<prefix><block>_conv<i>` (`block2_conv1`, a U-Net's `down2_conv1`)."""
    for index in range(1, convs + 1):
        x = _conv_layer(x, filters, name=f"{prefix}{block}_conv{index}", strides=strides if index == 1 else 1,
                        activation=activation, **settings)
    return x


def _residual_block(x, filters, *, block, convs, strides, activation, prefix="block", **settings):
    """The residual block of He et al. (2016): the convs of a plain block, the last one without its
    activation, plus a skip connection from the block's input, then the activation.

    The skip is the identity, or a 1×1 conv with the block's stride (`blockB_skip`, with batch norm
    `blockB_skip_bn`) when the stride or the number of channels changes. The sum is `blockB_add` and
    the activation after it `blockB_act`.
    """
    shortcut = x
    for index in range(1, convs + 1):
        x = _conv_layer(x, filters, name=f"{prefix}{block}_conv{index}", strides=strides if index == 1 else 1,
                        activation=activation if index < convs else None, **settings)
    if shortcut.shape[-1] != filters or max(strides) > 1:
        batch_norm = settings["batch_norm"]
        shortcut = CONV[settings["rank"]](
            filters, 1, strides=strides, padding="same", use_bias=not batch_norm,
            kernel_regularizer=settings["regularizer"], name=f"{prefix}{block}_skip",
        )(shortcut)
        if batch_norm:
            shortcut = _batch_norm(shortcut, f"{prefix}{block}_skip_bn", settings["batch_norm_momentum"])
    x = keras.layers.Add(name=f"{prefix}{block}_add")([x, shortcut])
    return keras.layers.Activation(activation, name=f"{prefix}{block}_act")(x)


# `validation.BLOCKS` name → the function that builds one block.
BLOCKS = {"plain": _plain_block, "residual": _residual_block}


def head_layers(x, head, rank, dense_units, *, activation, dropout, regularizer, batch_norm, batch_norm_momentum):
    """Flatten or global pooling, then the hidden Dense layers of the head."""
    if head == "flatten":
        x = keras.layers.Flatten(name="head_flatten")(x)
    else:
        x = GLOBAL_POOL[head][rank](name="head_pool")(x)
    for index, units in enumerate(dense_units, start=1):
        x = dense_block(x, units, prefix=f"head_dense{index}", activation=activation, dropout=dropout,
                         regularizer=regularizer, batch_norm=batch_norm, batch_norm_momentum=batch_norm_momentum)
    return x
