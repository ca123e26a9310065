"""`build_mlp`: a multilayer perceptron from plain values (image and signal inputs are flattened).

Nothing here knows about hyperparameter search: `dlimaging.tuning.hypermodels`
translates a Keras Tuner `hp` into these arguments.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras

from dlimaging import registry
from dlimaging.models.augmentation import resolve_augmentation
from dlimaging.models.blocks import (
    check_common,
    dense_block,
    kernel_penalty,
    standardize_layer,
)
from dlimaging.models.compile import check_compile, compile_model
from dlimaging.models.heads import (
    check_scale_targets,
    output_layer,
    output_units,
    target_scaling_layer,
)
from dlimaging.validation import check_argument, check_input_shape, resolve_activation


def build_mlp(
    input_shape: Sequence[int],
    num_classes: int | None = None,
    *,
    task: str = registry.DEFAULT_TASK,
    num_outputs: int = 1,
    hidden_units: Sequence[int] = (256, 256),
    activation: Any = "relu",
    dropout: float | None = None,
    l1: float = 0.0,
    l2: float = 0.0,
    batch_norm: bool | None = None,
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

    The defaults (two layers of 256, batch norm, dropout 0.3) are chosen to
    generalise when trained as `dlimaging train` trains (50 epochs, early
    stopping on the validation loss): the former (128, 64) without batch
    norm or dropout reached 58.8% on MNIST-1D, below the paper's MLP (68%);
    these reach 68.5-68.9% (docs/benchmarks.md, `benchmarks/accuracy.py`).
    For regression the defaults are no batch norm and no dropout: both blur
    the numbers a regression predicts (docs/builders.md).

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
            plain logistic or linear regression. Defaults to (256, 256).
        activation: str, callable or None. Any Keras activation name.
            Defaults to "relu".
        dropout: float in [0, 1) or None. Fraction of units dropped after
            every hidden layer, in training only. Defaults to None: 0.3, and
            0.0 for regression (the task table's `builder_defaults`).
        l1: float >= 0. L1 penalty l1·Σ|w| on every kernel, the output layer
            included. Defaults to 0.0.
        l2: float >= 0. L2 penalty l2·Σw² on every kernel. Defaults to 0.0.
        batch_norm: bool or None. Batch normalization before each activation.
            Defaults to None: True, and False for regression.
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
            split through `dlimaging.models.standardization.adapt`, and it stays in the model,
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
    dropout = registry.builder_default(task, "dropout", dropout, 0.3)
    batch_norm = registry.builder_default(task, "batch_norm", batch_norm, True)
    check_common(activation=activation, dropout=dropout, l1=l1, l2=l2, batch_norm=batch_norm,
                  batch_norm_momentum=batch_norm_momentum, compile=compile)
    registry.check_builder_task(build_mlp, task)  # a segmentation or restoration task needs a U-Net
    training = check_compile(task, locals())
    augmentation = resolve_augmentation(augmentation, input_shape)
    check_argument("standardize", standardize)
    scale_targets = check_scale_targets(task, scale_targets)
    regularizer = kernel_penalty(l1, l2)

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    if augmentation is not None:
        x = augmentation(x)
    x = standardize_layer(x, standardize, len(input_shape))
    if len(input_shape) > 1:
        x = keras.layers.Flatten(name="flatten")(x)
    for index, units in enumerate(hidden_units, start=1):
        x = dense_block(
            x, units, prefix=f"dense{index}", activation=resolve_activation(activation),
            dropout=dropout, regularizer=regularizer, batch_norm=batch_norm,
            batch_norm_momentum=batch_norm_momentum,
        )
    outputs = output_layer(x, task, out_units, regularizer)
    if scale_targets:
        outputs = target_scaling_layer(outputs)
    model = keras.Model(inputs, outputs, name=name or "multilayer_perceptron")
    return compile_model(model, training)
