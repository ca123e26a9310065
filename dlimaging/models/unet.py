"""`build_unet`: a 1D, 2D or 3D U-Net that restores a signal, an image or a volume (denoising,
deblurring), or segments it (a class per pixel or voxel).

Plain values in, a Keras model out; `dlimaging.tuning.hypermodels.UNetHyperModel` searches its
arguments. The convolution blocks are `dlimaging.models.blocks`'s, named by level.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import keras

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.models.augmentation import resolve_augmentation
from dlimaging.models.blocks import (
    BLOCKS,
    CONV,
    POOL,
    POOL_SIZE,
    check_common,
    check_conv,
    kernel_penalty,
    spatial_tuple,
)
from dlimaging.models.compile import check_compile, compile_model
from dlimaging.models.heads import output_units
from dlimaging.models.segmentation import check_class_weight
from dlimaging.validation import (
    check_argument,
    check_input_shape,
    check_max_val,
    resolve_activation,
)

_TRANSPOSE = {1: keras.layers.Conv1DTranspose, 2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}


@keras.saving.register_keras_serializable(package="dlimaging")
class PadToMultiple(keras.layers.Layer):
    """Pads the spatial axes at their end with zeros up to a multiple of `multiple`, from the
    size of each batch, so the model takes any size: a U-Net of depth d halves the size d times."""

    def __init__(self, multiple: int, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, x):
        shape = keras.ops.shape(x)
        rank = len(x.shape) - 2
        pads = [[0, 0]] + [[0, (-shape[axis]) % self.multiple] for axis in range(1, rank + 1)] + [[0, 0]]
        return keras.ops.pad(x, pads)

    def compute_output_shape(self, input_shape):
        spatial = tuple(None if d is None else d + (-d) % self.multiple for d in input_shape[1:-1])
        return (input_shape[0],) + spatial + (input_shape[-1],)

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package="dlimaging")
class CropToMatch(keras.layers.Layer):
    """Crops the spatial axes of `x` to those of `reference`: undoes `PadToMultiple`."""

    def call(self, inputs):
        x, reference = inputs
        shape = keras.ops.shape(reference)
        rank = len(x.shape) - 2
        return x[(slice(None),) + tuple(slice(0, shape[axis]) for axis in range(1, rank + 1))]

    def compute_output_shape(self, input_shapes):
        x, reference = input_shapes
        return (x[0],) + tuple(reference[1:-1]) + (x[-1],)


def _family() -> str:
    """The family whose builder this is, read from the registry."""
    return next(name for name, entry in registry.FAMILIES.items() if entry.builder == f"{__name__}:build_unet")


def _widths(filters, depth: int) -> tuple[int, ...]:
    """Filters of each level and of the bottom: an int is the first level's, doubled at each level down."""
    widths = check_argument("filters", filters)
    if len(widths) == 1:
        return tuple(widths[0] * 2**level for level in range(depth + 1))
    if len(widths) != depth + 1:
        raise InputError(
            f"`filters` must be an int (the first level's, doubled at each level down) or one per level plus "
            f"the bottom ({depth + 1} for depth={depth}). Received: filters={filters!r}"
        )
    return widths


def check_depth(depth, input_shape) -> int:
    """`depth`, refused when it halves the input's smallest side below one sample: at most log2(side)."""
    depth = check_argument("depth", depth)
    smallest = min(input_shape[:-1])
    if POOL_SIZE**depth > smallest:
        deepest = int(math.log2(smallest))
        hint = f"at most depth={deepest}" if deepest else "a side of at least 2"
        raise InputError(
            f"`depth` is deeper than the input allows: each level halves the size, and input_shape="
            f"{tuple(input_shape)} (smallest side {smallest}) takes {hint}. Received: depth={depth}"
        )
    return depth


def _head(x, source, task: str, units: int, residual: bool, regularizer):
    """The last 1×1 conv and the output: the restored input (or its correction, added to it), or a
    softmax over the classes at each pixel."""
    x = CONV[len(source.shape) - 2](units, 1, kernel_regularizer=regularizer, name="head_conv")(x)
    x = CropToMatch(name="crop")([x, source])
    if registry.task(task).units == "num_classes":
        return keras.layers.Activation(registry.task(task).output_activation, name="output")(x)
    if residual:
        return keras.layers.Add(name="output")([source, x])
    return keras.layers.Activation("linear", name="output")(x)


def _check_task_settings(task, input_shape, num_classes, residual, class_weight, class_frequencies):
    """The output's units and `residual`, `class_weight` checked for the task: a restoration has one
    output per input channel (no classes), a segmentation `num_classes` (>= 2) and no residual."""
    classes = registry.task(task).units == "num_classes"
    if residual is not None and not isinstance(residual, bool):
        raise InputError(f"`residual` must be True or False. Received: residual={residual!r}")
    if not classes:
        for key, value in (("num_classes", num_classes), ("class_weight", class_weight)):
            if value is not None:
                raise InputError(f"`{key}` is for a task with classes, not task={task!r} (its output is the "
                                 f"restored input). Received: {key}={value!r}")
        return input_shape[-1], True if residual is None else residual, None
    if residual:
        raise InputError(f"`residual` adds the input to the output; task={task!r} outputs class "
                         f"probabilities. Received: residual={residual!r}")
    units = output_units(task, num_classes, 1)
    return units, False, check_class_weight(class_weight, units, class_frequencies)


def _check_model_augmentation(augmentation, input_shape):
    """A dict `augmentation` of the model may only change values: the target is not moved with the
    input. Volumes have no augmentation layers: their flips and quarter turns belong to the data."""
    if not isinstance(augmentation, dict):
        return
    if len(input_shape) == 4:
        raise InputError(
            f"`augmentation` as a dict has no layers for volumes, input_shape={input_shape}; give flips and "
            f"rotate90 to the data (load_dataset(augmentation=...), as `dlimaging train` does), which moves "
            f"the volume and its target together, or pass a Keras layer. Received: augmentation={augmentation!r}")
    moving = sorted(key for key, value in augmentation.items()
                    if key in registry.AUGMENTATIONS and registry.AUGMENTATIONS[key].moves and value)
    if moving:
        raise InputError(
            f"`augmentation` of a U-Net may only change values, since the target (clean image or mask) is "
            f"not moved with the input; {', '.join(moving)} would move them (give them to the data, which "
            f"moves both: load_dataset(augmentation=...), as `dlimaging train` does). Allowed: "
            f"{', '.join(k for k in registry.augmentation_keys(tuple(input_shape)) if not registry.AUGMENTATIONS[k].moves)}. "
            f"Received: augmentation={augmentation!r}")


def build_unet(
    input_shape: Sequence[int],
    num_classes: int | None = None,
    *,
    task: str | None = None,
    depth: int = 3,
    filters: Any = 32,
    kernel_size: Any = 3,
    activation: Any = "relu",
    dropout: float = 0.0,
    l1: float = 0.0,
    l2: float = 0.0,
    batch_norm: bool = True,
    batch_norm_momentum: float = 0.9,
    conv: str = "standard",
    block: str = "plain",
    residual: bool | None = None,
    augmentation: Any = None,
    compile: bool = True,
    loss: str | None = None,
    class_weight: Any = None,
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
    max_val: float = 1.0,
    class_frequencies: Sequence[float] | None = None,
    self_supervised: bool = False,
    name: str | None = None,
) -> keras.Model:
    """Builds a U-Net (Ronneberger et al. 2015; 3D: Çiçek et al. 2016) that maps a 1D signal, a 2D
    image or a 3D volume to its restored version (task "restoration"), or to a class per pixel or
    voxel (task "segmentation").

    `depth` levels go down: at each, a block of two convs (`dlimaging.models.blocks`'s plain or
    residual block), kept for the skip connection, then max pooling by 2. The bottom block
    follows, then `depth` levels up: a transposed conv (stride 2), the concatenation with
    the skip of that level, and a block. A 1×1 conv gives one value per input channel.
    With `residual=True` that value is the correction added to the input (DnCNN's residual
    learning, Zhang et al. 2017): the network learns the noise, which is simpler than the image.
    For segmentation, the 1×1 conv gives `num_classes` values per pixel, and a softmax over them
    the probability of each class (the output, named `output`, has shape `(*spatial, num_classes)`).

    The network works at any spatial size, not only `input_shape`'s: each batch is padded
    with zeros at the end of each spatial axis up to a multiple of 2^depth, and the output
    is cropped back. The export (`export_saved_model`) and a `tf.function` with unknown
    sizes use this; the Keras model's own `predict` and `__call__` still check `input_shape`. When `input_shape` itself is not such a multiple, the builder
    says so once (a `UserWarning`).

    Args:
        input_shape: tuple of 2, 3 or 4 ints, channels last: `(length, channels)` (spectra),
            `(height, width, channels)` (images) or `(depth, height, width, channels)`
            (volumes: Conv3D, MaxPooling3D and Conv3DTranspose; every option works but
            conv="separable", loss="ssim" and a dict `augmentation`), any number of channels.
        num_classes: int >= 2 or None. Segmentation: the number of classes (background
            included). Restoration refuses it. Defaults to None.
        task: str or None. A task of `dlimaging.registry.TASKS` that the U-Net family
            builds (its `tasks`: "restoration", "segmentation"). Defaults to None (the
            family's first: restoration).
        depth: int >= 1. Levels down (and up): each halves the size, so 2^depth must not
            exceed the smallest side of `input_shape`. Defaults to 3.
        filters: int or tuple of ints. Filters of the first level, doubled at each level
            down; or one per level plus one for the bottom (`(16, 32, 64)` for depth 2).
            Defaults to 32.
        kernel_size: int or tuple. Kernel size of every conv. Defaults to 3.
        activation: str, callable or None. Defaults to "relu".
        dropout: float in [0, 1). Dropout after each block, in training only. Defaults to 0.0.
        l1, l2: float >= 0. Penalties on every kernel. Defaults to 0.0.
        batch_norm: bool. Batch normalization before each activation. Defaults to True.
        batch_norm_momentum: float in [0, 1). As in `build_cnn`. Defaults to 0.9.
        conv: str. "standard" or "separable". Defaults to "standard".
        block: str. "plain" or "residual" blocks (as in `build_cnn`). Layers are named
            `down1_conv1`, `down1_pool`, `bottom_conv1`, `up2_upconv`, `up2_concat`,
            `up2_conv1`, `head_conv` and `output`. Defaults to "plain".
        residual: bool or None. Add the network's output to the input (predict the
            correction). None: True for restoration; segmentation refuses True.
            Defaults to None.
        augmentation: dict, Keras layer or None. As in `build_cnn`; it acts on the input
            only, in training, so a dict may hold only options that change values (`noise`,
            `contrast`, `scale`, …): ones that move them (flip, rotation, zoom, translation,
            shift) would no longer line up with the target, and are refused; give those to
            the data (`load_dataset(augmentation=...)`, see `dlimaging.data.joint`), which
            moves the input and its target together (`dlimaging train` does).
            Defaults to None.
        compile: bool. Compile with the loss and PSNR (and SSIM, for images). Defaults to True.
        loss: str or None. Restoration: "mse", "mae" or "ssim" (1 − SSIM; images only:
            signals take "mse" or "mae"). Segmentation: "crossentropy", "dice" (1 − the
            soft Dice, averaged over the classes) or "crossentropy+dice". None is the
            task's default ("mse", "crossentropy"). Defaults to None.
        class_weight: None, "balanced" or one number per class. Segmentation: each pixel's
            loss weighs its true class's weight; "balanced" is the inverse of each class's
            frequency in the training masks (`class_frequencies`). Defaults to None.
        optimizer, learning_rate, beta_1, beta_2, epsilon, momentum, weight_decay, schedule,
            warmup_epochs, epochs, steps_per_epoch: as in `build_cnn`.
        max_val: float > 0. The data's value range, which PSNR and SSIM need (1.0 for
            images in [0, 1]; a dataset bundle's `max_val`). Defaults to 1.0.
        class_frequencies: list of floats or None. The fraction of the training pixels in each
            class (a segmentation bundle's `class_frequencies`), which `class_weight="balanced"`
            needs. Defaults to None.
        self_supervised: bool. Restoration: Noise2Void training (a bundle's `self_supervised`):
            the loss ("mse" or "mae") is scored at the masked pixels of the target
            (`dlimaging.models.metrics.Noise2VoidLoss`), and PSNR and SSIM are left out.
            Defaults to False.
        name: str or None. Model name. Defaults to "unet1d", "unet2d" or "unet3d".

    Returns:
        A `keras.Model` whose output has the input's shape, compiled unless `compile=False`.

    Example:
    >>> model = build_unet((64, 64, 1), depth=2, filters=16)
    >>> spectra = build_unet((250, 1), depth=2, filters=8, loss="mae")  # padded to 252, says so
    >>> cells = build_unet((32, 32, 1), 3, task="segmentation", depth=2, filters=8, loss="crossentropy+dice")
    >>> volume = build_unet((8, 16, 16, 1), depth=2, filters=4)
    >>> volume.output_shape, volume.get_layer("down1_conv1").__class__.__name__
    ((None, 8, 16, 16, 1), 'Conv3D')
    """
    family = _family()
    input_shape = check_input_shape(input_shape, registry.family(family).ranks, "build_unet")
    rank = len(input_shape) - 1
    task = registry.family(family).tasks[0] if task is None else task
    registry.check_family_task(family, task)
    depth = check_depth(depth, input_shape)
    widths = _widths(filters, depth)
    kernel_size = spatial_tuple("kernel_size", kernel_size, rank)
    check_conv(conv, rank, input_shape)
    check_argument("block", block)
    units, residual, class_weight = _check_task_settings(task, input_shape, num_classes, residual, class_weight,
                                                         class_frequencies)
    check_common(activation=activation, dropout=dropout, l1=l1, l2=l2, batch_norm=batch_norm,
                 batch_norm_momentum=batch_norm_momentum, compile=compile)
    training = check_compile(task, locals(), input_rank=len(input_shape), max_val=check_max_val(max_val),
                             num_classes=units if num_classes is not None else None, class_weight=class_weight)
    _check_model_augmentation(augmentation, input_shape)
    augmentation = resolve_augmentation(augmentation, input_shape)
    multiple = POOL_SIZE**depth
    if any(size % multiple for size in input_shape[:-1]):
        padded = tuple(size + (-size) % multiple for size in input_shape[:-1])
        warnings.warn(
            f"build_unet: input_shape={input_shape} is not a multiple of 2^depth={multiple}; each input is "
            f"padded to {padded} and the output cropped back.", UserWarning, stacklevel=2)

    act = resolve_activation(activation)
    settings = dict(rank=rank, kernel_size=kernel_size, padding="same", conv=conv, activation=act,
                    batch_norm=batch_norm, batch_norm_momentum=batch_norm_momentum,
                    regularizer=kernel_penalty(l1, l2), convs=2, strides=(1,) * rank, dilation_rate=1)

    def level_block(x, width, prefix, level):
        x = BLOCKS[block](x, width, block=level, prefix=prefix, **settings)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"{prefix}{level}_dropout")(x)
        return x

    inputs = keras.Input(shape=input_shape, name="input")
    source = inputs if augmentation is None else augmentation(inputs)
    x = PadToMultiple(multiple, name="pad")(source)
    skips = []
    for level in range(1, depth + 1):
        x = level_block(x, widths[level - 1], "down", level)
        skips.append(x)
        x = POOL["max"][rank](pool_size=POOL_SIZE, name=f"down{level}_pool")(x)
    x = level_block(x, widths[depth], "bottom", "")
    for level in range(depth, 0, -1):
        x = _TRANSPOSE[rank](widths[level - 1], POOL_SIZE, strides=POOL_SIZE, padding="same",
                             kernel_regularizer=settings["regularizer"], name=f"up{level}_upconv")(x)
        x = keras.layers.Concatenate(name=f"up{level}_concat")([x, skips[level - 1]])
        x = level_block(x, widths[level - 1], "up", level)
    outputs = _head(x, source, task, units, residual, settings["regularizer"])
    model = keras.Model(inputs, outputs, name=name or f"{family}{rank}d")
    return compile_model(model, training)
