import math

import keras
import numpy as np
import pytest

import dlimaging as dli
from dlimaging import registry
from dlimaging.models import conv_output_size
from dlimaging.models.heads import ScaledTargetLoss
from dlimaging.models.standardization import adapt

# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("input_shape", [(40, 1), (8, 8, 1), (8, 8, 8, 2)])
def test_cnn_rank_picks_convolution(input_shape):
    model = dli.build_cnn(input_shape, 3, filters=(4, 8), dense_units=(8,))
    assert model.output_shape == (None, 3)
    # A full (not separable) convolution over every spatial axis: its kernel is
    # kernel_size per spatial axis × input channels × filters.
    rank, channels = len(input_shape) - 1, input_shape[-1]
    assert tuple(model.get_layer("block1_conv1").kernel.shape) == (3,) * rank + (channels, 4)
    assert tuple(model.get_layer("block2_conv1").kernel.shape) == (3,) * rank + (4, 8)
    assert len(model.get_layer("block1_conv1").output.shape) == rank + 2
    x = np.zeros((2,) + input_shape, "float32")
    assert model.predict(x, verbose=0).shape == (2, 3)


@pytest.mark.parametrize("input_shape", [(10,), (40, 1), (8, 8, 1), (4, 4, 4, 1)])
def test_mlp_accepts_every_rank(input_shape):
    model = dli.build_mlp(input_shape, 4, hidden_units=(8,))
    x = np.ones((3,) + input_shape, "float32")
    probs = model.predict(x, verbose=0)
    assert probs.shape == (3, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_layer_names_are_stable_and_readable():
    model = dli.build_cnn((8, 8, 1), 10, filters=(4, 8), convs_per_block=2, batch_norm=True, dropout=0.1)
    names = [layer.name for layer in model.layers]
    for name in ["block1_conv1", "block1_bn1", "block1_act1", "block1_conv2", "block1_pool",
                 "block1_dropout", "block2_conv2", "head_flatten", "head_dense1", "output"]:
        assert name in names


def test_one_block_per_filter_entry():
    model = dli.build_cnn((16, 16, 1), 2, filters=(2, 3, 4))
    convs = [layer for layer in model.layers if layer.name.endswith("_conv1")]
    assert [c.filters for c in convs] == [2, 3, 4]


def test_global_heads_and_no_pooling():
    for head in ("global_avg", "global_max"):
        model = dli.build_cnn((8, 8, 1), 2, filters=(4,), head=head, dense_units=(), pooling=None)
        assert model.get_layer("head_pool").output.shape == (None, 4)
        assert not any(layer.name.endswith("_pool") and layer.name != "head_pool" for layer in model.layers)


@pytest.mark.parametrize("pooling, reduce", [("max", np.max), ("avg", np.mean)])
def test_pooling_reduces_2x2_windows(pooling, reduce, rng):
    model = dli.build_cnn((8, 8, 1), 2, filters=(4,), pooling=pooling, compile=False)
    probe = keras.Model(model.input, [model.get_layer("block1_act1").output, model.get_layer("block1_pool").output])
    x = rng.normal(size=(2, 8, 8, 1)).astype("float32")
    act, pooled = (np.asarray(t) for t in probe(x))
    windows = act.reshape(2, 4, 2, 4, 2, 4)  # batch, rows/2, 2, columns/2, 2, filters
    np.testing.assert_allclose(pooled, reduce(windows, axis=(2, 4)), rtol=1e-6, atol=1e-7)


def test_strides_follow_the_formula():
    model = dli.build_cnn((32, 32, 1), 2, filters=(4,), kernel_size=5, strides=2, padding="valid", pooling=None)
    size = conv_output_size(32, 5, stride=2, padding=0)
    assert model.get_layer("block1_conv1").output.shape[1:3] == (size, size)


# ---------------------------------------------------------------- parameter counts


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


def test_cnn_parameter_count_table():
    # conv 3x3x1x4 + 4, dense (4*4*4)x8 + 8, output 8x2 + 2
    plain = dli.build_cnn((8, 8, 1), 2, filters=(4,), dense_units=(8,), batch_norm=False)
    assert plain.count_params() == (9 * 4 + 4) + (64 * 8 + 8) + (8 * 2 + 2)
    # the default adds batch norm: gamma, beta, moving mean and variance per filter
    # The default adds batch norm (gamma, beta, moving mean and variance per unit) after the conv
    # and the hidden Dense layer, which then drop their biases.
    default = dli.build_cnn((8, 8, 1), 2, filters=(4,), dense_units=(8,))
    assert default.count_params() == (9 * 4 + 4 * 4) + (64 * 8 + 4 * 8) + (8 * 2 + 2)


def test_separable_uses_fewer_parameters():
    common = dict(filters=(16, 32), dense_units=(), head="global_avg", batch_norm=False)
    standard = dli.build_cnn((16, 16, 8), 2, conv="standard", **common).count_params()
    separable = dli.build_cnn((16, 16, 8), 2, conv="separable", **common).count_params()
    assert separable < standard / 3
    # depthwise 3x3 per input channel + pointwise 1x1 + bias, per block
    block1 = 9 * 8 + 8 * 16 + 16
    block2 = 9 * 16 + 16 * 32 + 32
    assert separable == block1 + block2 + (32 * 2 + 2)


def test_separable_1d():
    model = dli.build_cnn((40, 3), 2, filters=(4,), conv="separable", batch_norm=False)
    # depthwise 3 per input channel + pointwise 3x4 + bias; a standard conv has 3*3*4 + 4.
    assert model.get_layer("block1_conv1").count_params() == 3 * 3 + 3 * 4 + 4
    assert model.get_layer("block1_conv1").output.shape == (None, 40, 4)


# ---------------------------------------------------------------- penalties


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


# ---------------------------------------------------------------- inference vs training


@pytest.mark.parametrize(
    "builder, input_shape, augmentation",
    [
        (dli.build_cnn, (16, 16, 1), {"flip": "horizontal", "rotation": 0.2, "noise": 0.3}),
        (dli.build_cnn, (40, 1), {"shift": 0.2, "scale": 0.3, "noise": 0.3}),
        (dli.build_mlp, (16, 16, 1), {"zoom": 0.2, "translation": 0.2, "contrast": 0.3, "brightness": 0.3}),
    ],
)
def test_dropout_and_augmentation_inactive_at_inference(builder, input_shape, augmentation, rng):
    model = builder(input_shape, 4, dropout=0.5, augmentation=augmentation)
    x = rng.uniform(0, 1, (6,) + input_shape).astype("float32")
    first = model.predict(x, verbose=0)
    second = model.predict(x, verbose=0)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(model(x, training=False), first, rtol=1e-5, atol=1e-6)
    a = model(x, training=True).numpy()
    b = model(x, training=True).numpy()
    assert not np.allclose(a, b)


def test_augmentation_layers_act_only_in_training(rng):
    x = rng.uniform(0, 1, (4, 16, 16, 1)).astype("float32")
    aug = dli.image_augmentation(flip="horizontal_and_vertical", rotation=0.25, noise=0.1)
    np.testing.assert_array_equal(aug(x, training=False), x)
    assert not np.allclose(aug(x, training=True), x)
    s = rng.normal(size=(4, 40, 2)).astype("float32")
    saug = dli.signal_augmentation(shift=0.25, scale=0.5)
    np.testing.assert_array_equal(saug(s, training=False), s)
    out = saug(s, training=True).numpy()
    assert out.shape == s.shape and not np.allclose(out, s)


def test_signal_shift_is_a_circular_roll():
    from dlimaging.models.augmentation import RandomShift1D

    signal = np.arange(40, dtype="float32")
    x = np.tile(signal[None, :, None], (16, 1, 2))  # 16 samples, 2 channels
    out = RandomShift1D(0.25, seed=1)(x, training=True).numpy()
    shifts = []
    for sample in out:
        shift = int(-sample[0, 0]) % 40  # out[t] = x[t - shift], so out[0] = x[-shift]
        np.testing.assert_array_equal(sample[:, 0], np.roll(signal, shift))
        np.testing.assert_array_equal(sample[:, 1], sample[:, 0])  # one shift for all channels
        shifts.append(shift if shift <= 20 else shift - 40)
    assert max(abs(s) for s in shifts) <= 10  # at most 0.25 of the length
    assert len(set(shifts)) > 1  # a new shift for each sample


def test_augmentation_accepts_a_keras_layer():
    layer = keras.layers.GaussianNoise(0.1, name="my_noise")
    model = dli.build_cnn((8, 8, 1), 2, filters=(4,), augmentation=layer)
    assert model.get_layer("my_noise") is layer


# ---------------------------------------------------------------- tasks


@pytest.mark.parametrize(
    "task, num_classes, kwargs, units, activation, loss",
    [
        ("classification", 5, {}, 5, "softmax", "sparse_categorical_crossentropy"),
        ("binary", None, {}, 1, "sigmoid", "binary_crossentropy"),
        ("multilabel", 4, {}, 4, "sigmoid", "binary_crossentropy"),
        ("regression", None, {"num_outputs": 3}, 3, "linear", "mean_squared_error"),
        ("regression", None, {"loss": "mae"}, 1, "linear", "mean_absolute_error"),
    ],
)
@pytest.mark.parametrize("builder", [dli.build_mlp, dli.build_cnn])
def test_task_heads_and_losses(builder, task, num_classes, kwargs, units, activation, loss):
    model = builder((8, 8, 1), num_classes, task=task, **kwargs)
    output = model.get_layer("output")
    assert output.units == units
    assert output.activation is keras.activations.get(activation)
    if task == "regression":  # targets scaled by default: the loss is computed on standardised targets
        assert isinstance(model.loss, ScaledTargetLoss) and model.loss.loss == loss
        assert model.layers[-1].name == "target_scaling"
    else:
        assert model.loss == loss and model.layers[-1] is output


def test_huber_regression_and_metrics():
    model = dli.build_mlp((4,), task="regression", loss="huber", scale_targets=False)
    assert isinstance(model.loss, keras.losses.Huber)
    assert isinstance(dli.build_mlp((4,), task="regression", loss="huber").loss._fn.__self__, keras.losses.Huber)
    x = np.ones((8, 4), "float32")
    metrics = model.evaluate(x, np.zeros((8, 1)), return_dict=True, verbose=0)
    assert "mae" in metrics


@pytest.mark.parametrize(
    "optimizer, cls, extra",
    [("adam", keras.optimizers.Adam, {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}),
     ("adamw", keras.optimizers.AdamW, {"weight_decay": 0.01}),
     ("sgd", keras.optimizers.SGD, {"momentum": 0.5}),
     ("rmsprop", keras.optimizers.RMSprop, {})],
)
def test_optimizers(optimizer, cls, extra):
    model = dli.build_mlp((4,), 2, optimizer=optimizer, learning_rate=0.05, **extra)
    assert isinstance(model.optimizer, cls)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)
    for key, value in extra.items():
        assert float(getattr(model.optimizer, key)) == pytest.approx(value)


def test_optimizers_keep_keras_defaults():
    # Arguments left out are not passed: each optimizer keeps Keras's own defaults.
    assert float(dli.build_mlp((4,), 2, optimizer="sgd").optimizer.momentum) == 0.0
    assert float(dli.build_mlp((4,), 2, optimizer="rmsprop").optimizer.momentum) == 0.0
    adam = dli.build_mlp((4,), 2).optimizer
    assert (float(adam.beta_1), float(adam.beta_2), float(adam.epsilon)) == (0.9, 0.999, 1e-7)
    assert float(dli.build_mlp((4,), 2, optimizer="adamw").optimizer.weight_decay) == pytest.approx(0.004)


def test_uncompiled_model():
    model = dli.build_mlp((4,), 2, compile=False)
    assert not model.compiled


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805
# Each activation written out in NumPy, independently of Keras.
ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.2 * z),  # Keras's default negative_slope
    "elu": lambda z: np.where(z > 0, z, np.expm1(z)),
    "selu": lambda z: _SELU_SCALE * np.where(z > 0, z, _SELU_ALPHA * np.expm1(z)),
    "gelu": lambda z: 0.5 * z * (1 + np.vectorize(math.erf)(z / math.sqrt(2))),  # exact, not tanh
    "swish": lambda z: z * _sigmoid(z),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "softplus": lambda z: np.log1p(np.exp(z)),
    "linear": lambda z: z,
    keras.activations.relu6: lambda z: np.clip(z, 0, 6),
    None: lambda z: z,  # None means linear
}


@pytest.mark.parametrize(
    "builder, layers",
    [(dli.build_mlp, ["dense1_act"]), (dli.build_cnn, ["block1_act1", "head_dense1_act"])],
    ids=["mlp", "cnn"],
)
@pytest.mark.parametrize("activation", list(ACTIVATIONS), ids=lambda a: getattr(a, "__name__", str(a)))
def test_activations(activation, builder, layers):
    model = builder((8, 8, 1), 2, activation=activation, compile=False)
    z = np.linspace(-7, 7, 57, dtype="float32").reshape(1, -1)  # both signs, past relu6's cap
    for name in layers:
        layer = model.get_layer(name)
        assert layer.activation is keras.activations.get(activation)
        np.testing.assert_allclose(np.asarray(layer(z)), ACTIVATIONS[activation](z), rtol=1e-5, atol=1e-6)


def test_seed_reproducible():
    keras.utils.set_random_seed(42)
    a = dli.build_cnn((8, 8, 1), 3, filters=(4,)).get_weights()
    keras.utils.set_random_seed(42)
    b = dli.build_cnn((8, 8, 1), 3, filters=(4,)).get_weights()
    keras.utils.set_random_seed(43)
    c = dli.build_cnn((8, 8, 1), 3, filters=(4,)).get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
    assert not np.allclose(a[0], c[0])


# ---------------------------------------------------------------- conv_output_size


@pytest.mark.parametrize(
    "args, expected",
    [((5, 3), 3), ((5, 3, 1, 1), 5), ((32, 5, 2, 2), 16), ((28, 2, 2), 14), ((7, 3, 2), 3)],
)
def test_conv_output_size(args, expected):
    assert conv_output_size(*args) == expected


def test_lecture_example_5x5_input_3x3_kernel():
    # The slide's 5x5 input and 3x3 kernel give the 3x3 output shown.
    assert conv_output_size(5, 3) == 3


# ---------------------------------------------------------------- bad input


BAD_CNN = [
    ({"dropout": 1.0}, r"`dropout` must be a number in \[0.0, 1.0\). Received: dropout=1.0"),
    ({"dropout": -0.1}, "Received: dropout=-0.1"),
    ({"l1": -1}, "Received: l1=-1"),
    ({"l2": "big"}, "Received: l2='big'"),
    ({"activation": "relux"}, r"Received: activation='relux'.*Valid names:.*relu"),
    ({"pooling": "median"}, "`pooling` must be one of 'max', 'avg', None. Received: pooling='median'"),
    ({"conv": "dilated"}, "Received: conv='dilated'"),
    ({"head": "dense"}, "Received: head='dense'"),
    ({"padding": "full"}, "Received: padding='full'"),
    ({"filters": ()}, r"Received: filters=\(\)"),
    ({"filters": (8, 0)}, r"Received: filters=\(8, 0\)"),
    ({"kernel_size": 0}, "Received: kernel_size=0"),
    ({"kernel_size": (3, 3, 3)}, "tuple of 2 ints"),
    ({"strides": -1}, "Received: strides=-1"),
    ({"convs_per_block": 0}, "Received: convs_per_block=0"),
    ({"dense_units": (8, -1)}, "Received: dense_units"),
    ({"optimizer": "adagrad"}, "Received: optimizer='adagrad'"),
    ({"learning_rate": 0}, "Received: learning_rate=0"),
    ({"beta_1": 1.0}, "Received: beta_1=1.0"),
    ({"beta_2": -0.5}, "Received: beta_2=-0.5"),
    ({"epsilon": 0}, "Received: epsilon=0"),
    ({"optimizer": "sgd", "momentum": 1.5}, "Received: momentum=1.5"),
    ({"momentum": 0.9}, r"`momentum` does not apply to optimizer='adam' \(it applies to sgd, rmsprop\)"),
    ({"optimizer": "sgd", "beta_1": 0.9}, r"`beta_1` does not apply to optimizer='sgd' \(it applies to adam, adamw\)"),
    ({"weight_decay": 0.01}, "`weight_decay` does not apply to optimizer='adam'"),
    ({"learning_rate": float("inf")}, "`learning_rate` must be a finite number. Received: learning_rate=inf"),
    ({"optimizer": "adamw", "weight_decay": float("inf")}, "must be a finite number. Received: weight_decay=inf"),
    ({"compile": "no"}, "`compile` must be True or False. Received: compile='no'"),
    ({"num_outputs": 5}, r"`num_outputs` is for tasks with numeric outputs, not task='classification'"),
    ({"batch_norm": "yes"}, "Received: batch_norm='yes'"),
    ({"task": "segmentation"}, "Received: task='segmentation'"),
    ({"loss": "mae"}, "`loss` cannot be chosen for task='classification'"),
    ({"task": "regression", "loss": "hinge"}, "Received: loss='hinge'"),
    ({"augmentation": {"rotation": 2.0}}, "Received: rotation=2.0"),
    ({"augmentation": {"flip": "diagonal"}}, "Received: flip='diagonal'"),
    ({"augmentation": {"shift": 0.1}}, r"Unknown `augmentation` option\(s\) \['shift'\]"),
    ({"augmentation": "strong"}, "Received: augmentation='strong'"),
    # issue 11: residual and dilated blocks, schedules, label smoothing, batch-norm momentum
    ({"block": "dense"}, "`block` must be one of 'plain', 'residual'. Received: block='dense'"),
    ({"block": "residual", "convs_per_block": 1}, r"block='residual' needs at least 2 convs per block"),
    ({"block": "residual", "padding": "valid"}, r"block='residual' needs padding='same'"),
    ({"dilation_rate": 0}, "Received: dilation_rate=0"),
    ({"dilation_rate": (1, 2, 4)}, r"`dilation_rate` must be an int or one per block \(2 for filters=\(32, 64\)\)"),
    ({"dilation_rate": 2, "strides": 2}, r"`strides` > 1 and `dilation_rate` > 1 cannot go together"),
    ({"batch_norm_momentum": 1.0}, r"`batch_norm_momentum` must be a number in \[0.0, 1.0\)"),
    ({"schedule": "step"}, "`schedule` must be one of 'constant', 'cosine', 'exponential'. Received: schedule='step'"),
    ({"schedule": "cosine"}, r"schedule='cosine' needs the length of the training: `epochs` and `steps_per_epoch` "
                             r"\(`dlimaging train` and `dlimaging tune` pass them"),
    ({"warmup_epochs": 2, "steps_per_epoch": 10}, r"schedule='constant' with warmup_epochs=2 needs the length"),
    ({"schedule": "cosine", "epochs": 5, "steps_per_epoch": 0}, "Received: steps_per_epoch=0"),
    ({"schedule": "cosine", "epochs": 5, "steps_per_epoch": 3, "warmup_epochs": 5},
     r"`warmup_epochs` must be smaller than `epochs`.*warmup_epochs=5, epochs=5"),
    ({"warmup_epochs": -1}, "Received: warmup_epochs=-1"),
    ({"schedule": "exponential", "epochs": 5, "steps_per_epoch": 3, "optimizer": keras.optimizers.SGD()},
     r"schedule='exponential' applies to an optimizer given by name"),
    ({"label_smoothing": 1.0}, r"`label_smoothing` must be a number in \[0.0, 1.0\)"),
    ({"task": "regression", "label_smoothing": 0.1}, r"`label_smoothing` is for tasks with classes, not task='regression'"),
]


@pytest.mark.parametrize("kwargs, match", BAD_CNN)
def test_cnn_bad_input(kwargs, match):
    kwargs.setdefault("task", "classification")
    num_classes = None if kwargs["task"] == "regression" else 10
    with pytest.raises(ValueError, match=match):
        dli.build_cnn((8, 8, 1), num_classes, **kwargs)


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


def test_separable_3d_refused():
    with pytest.raises(ValueError, match="no 3D depthwise convolution"):
        dli.build_cnn((8, 8, 8, 1), 2, conv="separable")


def test_conv_output_size_bad_input():
    with pytest.raises(ValueError, match="Received: stride=0"):
        conv_output_size(5, 3, stride=0)
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv_output_size(2, 5)


# ---------------------------------------------------------------- learning


@pytest.mark.slow
def test_default_cnn_learns_the_digits():
    data = dli.load_dataset("digits", batch_size=32, seed=0)
    model = dli.build_cnn(data.input_shape, data.num_classes)
    model.fit(data.train, validation_data=data.validation, epochs=6, verbose=0, shuffle=False)
    metrics = model.evaluate(data.test, return_dict=True, verbose=0)
    assert metrics["accuracy"] > 0.93


@pytest.mark.parametrize("task", list(registry.TASKS))
def test_training_models_in_a_loop_leaks_no_tensorflow_functions(task):
    # Optimizer slots, and metrics that size themselves on their first batch (AUC, F1, R²),
    # created inside the first traced step leave tf.cond branch functions registered for
    # good; the builders create them eagerly instead.
    from tensorflow.python.eager import context

    entry = registry.task(task)
    kwargs = {"num_outputs": 2} if entry.units == "num_outputs" else {}
    if entry.units == "num_classes":
        kwargs["num_classes"] = 3
    x = np.zeros((16, 8, 8, 1), "float32")
    units = 2 if entry.units == "num_outputs" else (1 if isinstance(entry.units, int) else 3)
    y = np.zeros(16, entry.label_dtype) if entry.label_rank == 1 else np.zeros((16, units), entry.label_dtype)
    build, kwargs = dli.build_cnn, dict(kwargs, dense_units=(4,))
    if entry.units == "channels":  # an output of the input's shape: the U-Net's task
        build, kwargs, y = dli.build_unet, {"depth": 1}, x
    counts = []
    for _ in range(3):
        keras.backend.clear_session()
        model = build((8, 8, 1), task=task, filters=(4,), **kwargs)
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        del model
        counts.append(len(context.context().list_function_names()))
    assert counts[2] == counts[1]
    names = [n for n in context.context().list_function_names() if "_cond_" in n]
    assert not names, names[:5]


# ---------------------------------------------------------------- augmentation refused or identity up front (issue 9, class 3)


@pytest.mark.parametrize("factory, shape", [(dli.image_augmentation, (2, 8, 8, 1)), (dli.signal_augmentation, (2, 40, 1))])
def test_all_default_augmentation_is_an_identity_layer(factory, shape, rng):
    layer = factory()
    assert isinstance(layer, keras.layers.Identity) and not isinstance(layer, keras.Sequential)
    x = rng.uniform(0, 1, shape).astype("float32")
    np.testing.assert_array_equal(layer(x, training=True), x)
    # a builder takes it (and, being the identity, adds nothing to the model)
    builder = dli.build_cnn if len(shape) == 4 else dli.build_mlp
    assert builder(shape[1:], 2, augmentation=layer, compile=False).count_params() > 0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: dli.image_augmentation(noise=2.0), r"^`noise` must be a number in \[0.0, 1.0\]. Received: noise=2.0$"),
        (lambda: dli.signal_augmentation(noise=2.0), r"^`noise` must be a number in \[0.0, 1.0\]. Received: noise=2.0$"),
        (lambda: dli.signal_augmentation(scale=1.0), r"^`scale` must be a number in \[0.0, 1.0\). Received: scale=1.0$"),
        (lambda: dli.image_augmentation(rotation=float("inf")), r"^`rotation` must be a finite number"),
        (lambda: dli.build_cnn((40, 1), 2, augmentation={"noise": 2.0}), r"^`noise` must be a number in \[0.0, 1.0\]"),
    ],
)
def test_augmentation_values_get_dlimagings_own_message(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "stddev" not in str(info.value)


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


# ---------------------------------------------------------------- standardisation inside the model (issue 10)


@pytest.mark.parametrize("builder", [dli.build_mlp, dli.build_cnn])
@pytest.mark.parametrize("mode, stat_shape", [("global", ()), ("per_feature", (40, 2))])
def test_standardize_is_adapted_on_the_training_inputs(builder, mode, stat_shape, rng):
    model = builder((40, 2), 3, standardize=mode, compile=False)
    assert model.layers[1].name == "standardize"  # right after the input
    x = rng.normal(300.0, 50.0, (64, 40, 2)).astype("float32")
    adapt(model, x)
    layer = model.get_layer("standardize")
    axis = None if mode == "global" else 0
    mean, std = x.mean(axis=axis), x.std(axis=axis)
    np.testing.assert_allclose(np.squeeze(layer.mean), mean, rtol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.squeeze(layer.variance)), std, rtol=1e-3)
    standardized = np.asarray(layer(x))
    assert abs(standardized.mean()) < 1e-3 and standardized.std() == pytest.approx(1.0, rel=1e-3)


def test_standardize_comes_after_augmentation_and_none_adds_no_layer():
    model = dli.build_cnn((40, 1), 2, filters=(4,), augmentation={"scale": 0.1}, standardize="global")
    assert [layer.name for layer in model.layers[:3]] == ["input", "augmentation", "standardize"]
    assert "standardize" not in [layer.name for layer in dli.build_cnn((40, 1), 2, filters=(4,)).layers]


def test_adapt_reads_a_dataset_of_batches_and_uses_the_training_split_only(rng):
    import tensorflow as tf

    model = dli.build_mlp((3,), task="regression", standardize="per_feature", hidden_units=(4,))
    x = rng.normal([10.0, -5.0, 1000.0], [1.0, 3.0, 100.0], (96, 3)).astype("float32")
    y = (1000 + 500 * x[:, 0]).astype("float32")  # shape (N,): one output
    adapt(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(32))
    np.testing.assert_allclose(np.squeeze(model.get_layer("standardize").mean), x.mean(0), rtol=1e-4)
    np.testing.assert_allclose(np.squeeze(model.get_layer("target_scaling").mean), y.mean(), rtol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.squeeze(model.get_layer("target_scaling").variance)), y.std(), rtol=1e-3)


def test_a_constant_feature_is_not_divided_by_zero(rng):
    model = dli.build_mlp((3,), task="regression", standardize="per_feature", hidden_units=(4,))
    x = rng.normal(0.0, 1.0, (64, 3)).astype("float32")
    x[:, 1] = 7.0  # a constant column (a dead detector pixel)
    y = np.full((64, 1), 3.0, "float32")  # and a constant target
    adapt(model, x, y)
    np.testing.assert_array_equal(np.squeeze(model.get_layer("standardize").variance)[1], 1.0)
    np.testing.assert_array_equal(np.squeeze(model.get_layer("target_scaling").variance), 1.0)
    probe = x.copy()
    probe[:, 1] = 7.5  # a new value of the constant feature is not blown up by 1/sqrt(epsilon)
    standardized = np.asarray(model.get_layer("standardize")(probe))
    np.testing.assert_allclose(standardized[:, 1], 0.5, rtol=1e-5)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(model.predict(probe, verbose=0)).all()
    assert np.isfinite(model.get_weights()[0]).all()


def test_adapt_refuses_non_finite_training_values(rng):
    model = dli.build_mlp((3,), 2, standardize="global")
    x = rng.normal(size=(8, 3)).astype("float32")
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match="training inputs hold NaN or infinite values"):
        adapt(model, x)


def test_an_exported_standardized_model_takes_raw_values(rng, tmp_path):
    model = dli.build_mlp((5,), 2, standardize="per_feature", hidden_units=(8,))
    x = rng.normal(2000.0, 300.0, (32, 5)).astype("float32")
    adapt(model, x)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded.get_layer("standardize").mean, model.get_layer("standardize").mean)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)


def test_target_scaling_lets_regression_on_targets_in_the_thousands_learn_fast(rng):
    x = rng.uniform(-1, 1, (256, 2)).astype("float32")
    y = 1000 + 500 * x[:, :1] - 200 * x[:, 1:]
    errors = {}
    for scale in (True, False):
        keras.utils.set_random_seed(0)
        model = dli.build_mlp((2,), task="regression", hidden_units=(16,), learning_rate=0.01, scale_targets=scale,
                              batch_norm=False, dropout=0.0)
        adapt(model, x, y)
        model.fit(x, y, epochs=10, batch_size=32, verbose=0)
        predictions = model.predict(x, verbose=0)
        errors[scale] = np.sqrt(np.mean((predictions - y) ** 2)) / y.std()
        if scale:
            # The model outputs real units: around 1000, not around 0.
            assert abs(predictions.mean() - 1000) < 30
            metrics = model.evaluate(x, y, return_dict=True, verbose=0)
            assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean((predictions - y) ** 2)), rel=1e-3)
    assert errors[True] < 0.15  # a low error relative to the targets' spread, in 10 epochs
    assert errors[False] > 1.0  # the same network without the scaling is still far off


def test_scaled_loss_weighs_outputs_on_their_own_scale_and_survives_a_reload(rng, tmp_path):
    model = dli.build_mlp((2,), task="regression", num_outputs=2, hidden_units=(4,))
    x = rng.normal(size=(64, 2)).astype("float32")
    y = np.stack([1000 + 500 * x[:, 0], 0.01 * x[:, 1]], axis=1)  # units a million times apart
    adapt(model, x, y)
    mean, std = y.mean(0), y.std(0)
    guess = y + std * np.array([0.5, 0.5])  # half a standard deviation off on each output
    assert float(model.loss(y, guess)) == pytest.approx(0.25, rel=1e-3)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert float(reloaded.loss(y, guess)) == pytest.approx(0.25, rel=1e-3)
    np.testing.assert_allclose(np.squeeze(reloaded.get_layer("target_scaling").mean), mean, rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"standardize": "minmax"}, "`standardize` must be one of 'none', 'global', 'per_feature'. "
                                    "Received: standardize='minmax'"),
        ({"scale_targets": True}, r"`scale_targets` is for tasks with numeric outputs, not task='classification'"),
        ({"scale_targets": "yes"}, "`scale_targets` must be True, False or None. Received: scale_targets='yes'"),
    ],
)
def test_standardize_and_scale_targets_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dli.build_cnn((40, 1), 3, **kwargs)


def test_scale_targets_false_keeps_the_plain_output_and_classification_is_untouched():
    plain = dli.build_mlp((4,), task="regression", scale_targets=False)
    assert plain.layers[-1].name == "output" and plain.loss == "mean_squared_error"
    assert dli.build_mlp((4,), 3, scale_targets=False).layers[-1].name == "output"


# ---------------------------------------------------------------- spectra augmentation (issue 10)


@pytest.mark.parametrize("options", [{"baseline": 0.5}, {"scatter": 0.3}, {"shift": 0.2, "shift_mode": "edge"}])
def test_spectra_augmentation_acts_only_in_training(options, rng):
    layer = dli.signal_augmentation(**options, seed=3)
    x = (1000 + 100 * rng.normal(size=(8, 40, 2))).astype("float32")
    np.testing.assert_array_equal(layer(x, training=False), x)
    assert not np.allclose(layer(x, training=True), x)
    model = dli.build_cnn((40, 2), 2, filters=(4,), augmentation=options)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_edge_shift_repeats_the_edge_value_and_does_not_wrap():
    from dlimaging.models.augmentation import RandomShift1D

    signal = np.arange(40, dtype="float32") + 100
    x = np.tile(signal[None, :, None], (32, 1, 2))
    out = RandomShift1D(0.25, seed=1, mode="edge")(x, training=True).numpy()
    shifts = set()
    for sample in out:
        # out[t] = x[clip(t - s)]: nondecreasing, within the signal's values, never a wrap (a drop).
        assert (np.diff(sample[:, 0]) >= 0).all()
        first, last = sample[0, 0], sample[-1, 0]
        if first > signal[0]:  # shifted left: the right end repeats the last value
            s = int(first - signal[0])
            np.testing.assert_array_equal(sample[:, 0], np.concatenate([signal[s:], np.full(s, signal[-1])]))
            shifts.add(-s)
        else:  # shifted right (or not): the left end repeats the first value
            s = int(signal[-1] - last)
            np.testing.assert_array_equal(sample[:, 0], np.concatenate([np.full(s, signal[0]), signal[:40 - s]]))
            shifts.add(s)
        np.testing.assert_array_equal(sample[:, 1], sample[:, 0])
    assert max(abs(s) for s in shifts) <= 10 and len(shifts) > 3
    assert any(s < 0 for s in shifts) and any(s > 0 for s in shifts)


def test_baseline_adds_a_straight_line_scaled_by_the_samples_spread(rng):
    from dlimaging.models.augmentation import RandomBaseline

    x = (500 + 20 * rng.normal(size=(64, 50, 2))).astype("float32")
    out = RandomBaseline(0.5, seed=2)(x, training=True).numpy()
    added = out - x
    np.testing.assert_allclose(added[:, :, 0], added[:, :, 1], atol=1e-3)  # one curve for all channels
    t = np.linspace(-1, 1, 50)
    std = x.std(axis=(1, 2))
    slopes, offsets = [], []
    for curve, s in zip(added[:, :, 0], std):
        slope, offset = np.polyfit(t, curve, 1)
        np.testing.assert_allclose(curve, offset + slope * t, atol=2e-3 * s)  # a line, nothing else
        slopes.append(slope / s)
        offsets.append(offset / s)
    assert max(map(abs, slopes)) <= 0.5 + 1e-4 and max(map(abs, offsets)) <= 0.5 + 1e-4
    assert max(map(abs, slopes)) > 0.3 and max(map(abs, offsets)) > 0.3  # the whole range is used


def test_scatter_gain_and_offset_stay_in_their_bounds(rng):
    from dlimaging.models.augmentation import RandomScatter

    # Two values per sample recover its gain g and offset o: out = g·x + o.
    x = np.zeros((2000, 2, 1), "float32")
    x[:, 0, 0], x[:, 1, 0] = 1000.0, 1200.0
    out = RandomScatter(0.2, seed=4)(x, training=True).numpy()[:, :, 0]
    gain = (out[:, 1] - out[:, 0]) / 200.0
    offset = out[:, 0] - gain * 1000.0
    std = 100.0  # each sample's standard deviation
    assert gain.min() >= 0.8 - 1e-4 and gain.max() <= 1.2 + 1e-4
    assert np.abs(offset).max() <= 0.2 * std + 0.1
    assert gain.min() < 0.82 and gain.max() > 1.18 and np.abs(offset).max() > 0.18 * std
    assert np.corrcoef(gain, offset)[0, 1] ** 2 < 0.01  # drawn independently


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shift_mode": "reflect"}, "`shift_mode` must be one of 'circular', 'edge'. Received: shift_mode='reflect'"),
        ({"scatter": 1.0}, r"`scatter` must be a number in \[0.0, 1.0\). Received: scatter=1.0"),
        ({"baseline": -0.1}, r"`baseline` must be a number in \[0.0, 1.0\]. Received: baseline=-0.1"),
    ],
)
def test_spectra_augmentation_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dli.signal_augmentation(**kwargs)
    with pytest.raises(ValueError, match=match):
        dli.build_cnn((40, 1), 2, augmentation=kwargs)


# ---------------------------------------------------------------- batch-norm momentum (issue 11)


def _batch_norms(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


@pytest.mark.parametrize("builder, kwargs", [
    (dli.build_mlp, dict(hidden_units=(4, 4))),
    (dli.build_cnn, dict(filters=(4, 8), block="residual", dense_units=(4,))),
])
def test_every_batch_norm_takes_the_momentum(builder, kwargs):
    default = builder((8, 8, 1), 3, batch_norm=True, **kwargs)
    assert len(_batch_norms(default)) >= 2 and {bn.momentum for bn in _batch_norms(default)} == {0.9}
    chosen = builder((8, 8, 1), 3, batch_norm=True, batch_norm_momentum=0.5, **kwargs)
    assert {bn.momentum for bn in _batch_norms(chosen)} == {0.5}


def test_batch_norm_default_generalises_after_a_few_epochs_on_the_digits():
    # With Keras's momentum 0.99 the moving statistics still hold their initial values after 45
    # steps, and this model scored 0.10-0.17 at inference (0.94 in training mode); with 0.9, 0.81-0.85.
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = (digits.images / 16.0).astype("float32")[..., None], digits.target
    half = len(x) // 2
    model = dli.build_cnn((8, 8, 1), 10, batch_norm=True, dropout=0.0)
    model.fit(x[:half], y[:half], epochs=3, batch_size=64, verbose=0)
    accuracy = np.mean(model.predict(x[half:], verbose=0).argmax(-1) == y[half:])
    assert accuracy > 0.7


# ---------------------------------------------------------------- residual blocks (issue 11)

RANK_SHAPES = {1: (16, 3), 2: (8, 8, 3), 3: (4, 8, 8, 3)}


def test_residual_layer_names():
    model = dli.build_cnn((16, 2), 3, filters=(4, 4), block="residual", batch_norm=True, dropout=0.1)
    names = [layer.name for layer in model.layers]
    expected = ["block1_conv1", "block1_bn1", "block1_act1", "block1_conv2", "block1_bn2", "block1_skip",
                "block1_skip_bn", "block1_add", "block1_act", "block1_pool", "block1_dropout",
                "block2_conv1", "block2_conv2", "block2_add", "block2_act"]
    assert set(expected) <= set(names)
    assert "block1_act2" not in names  # the activation comes after the sum
    assert "block2_skip" not in names  # same channels, stride 1: the identity


def _block_outputs(model, block, *names):
    return keras.Model(model.input, [model.get_layer(f"block{block}_{name}").output for name in names])


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("strides", [1, 2])
def test_residual_block_adds_the_skip_then_activates(rank, strides, rng):
    shape = RANK_SHAPES[rank]
    model = dli.build_cnn(shape, 2, filters=(5,), block="residual", strides=strides, pooling=None,
                          activation="relu", batch_norm=False, compile=False)
    x = rng.normal(size=(2,) + shape).astype("float32")
    main, skip, out = (t.numpy() for t in _block_outputs(model, 1, "conv2", "skip", "act")(x))
    np.testing.assert_allclose(out, np.maximum(main + skip, 0.0), rtol=1e-5, atol=1e-6)
    # The projection: a 1x1 conv with the block's stride.
    assert model.get_layer("block1_skip").kernel.shape == (1,) * rank + (3, 5)
    assert out.shape[1:-1] == tuple(math.ceil(n / strides) for n in shape[:-1])

    # With the main path zeroed, the block is the activation of the projected input.
    for name in ("block1_conv1", "block1_conv2"):
        layer = model.get_layer(name)
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    kernel, bias = model.get_layer("block1_skip").get_weights()
    sub = x[(slice(None),) + (slice(None, None, strides),) * rank]
    projected = np.tensordot(sub, kernel.reshape(3, 5), axes=1) + bias
    out = _block_outputs(model, 1, "act")(x).numpy()
    np.testing.assert_allclose(out, np.maximum(projected, 0.0), rtol=1e-5, atol=1e-5)


def test_identity_skip_passes_the_input_through(rng):
    model = dli.build_cnn((16, 4), 2, filters=(4,), block="residual", pooling=None, activation="relu",
                          batch_norm=True, compile=False)
    for name in ("block1_conv1", "block1_conv2"):
        layer = model.get_layer(name)
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    x = rng.normal(size=(2, 16, 4)).astype("float32")
    # Batch norm of zeros at inference is its beta (0): the output is relu(x).
    np.testing.assert_allclose(_block_outputs(model, 1, "act")(x, training=False).numpy(), np.maximum(x, 0), atol=1e-6)


def test_residual_convs_per_block_and_parameters():
    # Two 3-tap convs 2->4 and 4->4 with biases, and a 1x1 projection 2->4 with its bias.
    model = dli.build_cnn((8, 2), 2, filters=(4,), block="residual", dense_units=(), head="global_avg",
                          batch_norm=False)
    assert model.count_params() == (3 * 2 * 4 + 4) + (3 * 4 * 4 + 4) + (2 * 4 + 4) + (4 * 2 + 2)
    three = dli.build_cnn((8, 2), 2, filters=(4,), block="residual", convs_per_block=3)
    assert "block1_conv3" in [layer.name for layer in three.layers] and "block1_act2" in [layer.name for layer in three.layers]


def test_residual_cnn_learns_a_tiny_problem(rng):
    x = rng.normal(size=(64, 16, 1)).astype("float32")
    y = (x[:, :8].sum(axis=(1, 2)) > x[:, 8:].sum(axis=(1, 2))).astype("int64")
    model = dli.build_cnn((16, 1), 2, filters=(8, 8), block="residual", batch_norm=True, head="global_avg",
                          dense_units=(), learning_rate=1e-2)
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.6 * history.history["loss"][0]


# ---------------------------------------------------------------- dilation (issue 11)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_dilation_spreads_the_kernel_at_no_cost_in_parameters(rank):
    shape = {1: (16, 1), 2: (12, 12, 1), 3: (10, 10, 10, 1)}[rank]
    common = dict(filters=(2,), padding="valid", pooling=None, dense_units=(), batch_norm=False, compile=False)
    plain = dli.build_cnn(shape, 2, **common)
    dilated = dli.build_cnn(shape, 2, dilation_rate=3, **common)
    # A 3-tap kernel dilated by 3 spans (3 - 1)·3 + 1 = 7 inputs: 'valid' output n - 6, not n - 2.
    assert plain.get_layer("block1_conv1").output.shape[1:-1] == tuple(n - 2 for n in shape[:-1])
    assert dilated.get_layer("block1_conv1").output.shape[1:-1] == tuple(n - 6 for n in shape[:-1])
    conv_params = lambda m: m.get_layer("block1_conv1").count_params()  # noqa: E731
    assert conv_params(plain) == conv_params(dilated) == 3**rank * 2 + 2


def test_dilation_receptive_field_follows_the_rates():
    # Linear, all-ones kernels, no bias: an impulse at the centre spreads over the receptive field,
    # 1 + Σ (k - 1)·d over the blocks: 1 + 2·(1 + 2 + 4) = 15 positions with rates (1, 2, 4).
    model = dli.build_cnn((41, 1), 2, filters=(1, 1, 1), dilation_rate=(1, 2, 4), activation=None,
                          pooling=None, compile=False)
    assert [model.get_layer(f"block{b}_conv1").dilation_rate for b in (1, 2, 3)] == [(1,), (2,), (4,)]
    for b in (1, 2, 3):
        layer = model.get_layer(f"block{b}_conv1")
        layer.set_weights([np.ones_like(w) if w.ndim > 1 else np.zeros_like(w) for w in layer.get_weights()])
    x = np.zeros((1, 41, 1), "float32")
    x[0, 20] = 1.0
    response = keras.Model(model.input, model.get_layer("block3_act1").output)(x).numpy().ravel()
    assert np.count_nonzero(response) == 15 and np.flatnonzero(response)[[0, -1]].tolist() == [13, 27]


def test_separable_and_residual_convs_take_the_dilation():
    model = dli.build_cnn((32, 1), 2, filters=(4, 4), conv="separable", block="residual", dilation_rate=(2, 4))
    assert model.get_layer("block2_conv2").dilation_rate == (4,)
    assert isinstance(model.get_layer("block2_conv2"), keras.layers.SeparableConv1D)


def test_spatial_check_uses_the_dilated_extent():
    dli.build_cnn((8, 1), 2, filters=(2,), kernel_size=3, dilation_rate=3, padding="valid", pooling=None)  # spans 7
    with pytest.raises(ValueError, match=r"block1_conv1: kernel_size=3 with dilation_rate=4 spans 9 inputs, is larger "
                                         r"than its input size 8"):
        dli.build_cnn((8, 1), 2, filters=(2,), kernel_size=3, dilation_rate=4, padding="valid", pooling=None)


# ---------------------------------------------------------------- learning-rate schedules (issue 11)


def _rates(model, steps):
    schedule = model.optimizer._learning_rate
    return np.array([float(schedule(step)) for step in steps])


def test_cosine_schedule_with_warmup_follows_the_formula():
    lr, warmup, total = 1e-2, 2 * 5, 10 * 5
    model = dli.build_mlp((4,), 2, hidden_units=(4,), learning_rate=lr, schedule="cosine", warmup_epochs=2,
                          epochs=10, steps_per_epoch=5)
    assert model.optimizer.built  # the slots exist before the first step
    steps = [0, 5, warmup, 30, total]
    expected = [0.0, lr / 2, lr, lr * 0.5 * (1 + math.cos(math.pi * (30 - warmup) / (total - warmup))), 0.0]
    np.testing.assert_allclose(_rates(model, steps), expected, rtol=1e-5, atol=1e-9)


def test_exponential_schedule_ends_at_one_percent():
    lr, total = 1e-3, 4 * 25
    model = dli.build_cnn((8, 1), 2, filters=(2,), learning_rate=lr, schedule="exponential", epochs=4,
                          steps_per_epoch=25)
    np.testing.assert_allclose(_rates(model, [0, total // 2, total]), [lr, lr * 0.1, lr * 0.01], rtol=1e-5)


def test_constant_schedule_with_warmup_and_without():
    model = dli.build_mlp((4,), 2, learning_rate=0.1, warmup_epochs=1, epochs=3, steps_per_epoch=4)
    np.testing.assert_allclose(_rates(model, [0, 2, 4, 12]), [0.0, 0.05, 0.1, 0.1], rtol=1e-6)
    plain = dli.build_mlp((4,), 2, learning_rate=0.1, epochs=3, steps_per_epoch=4)  # the length is ignored
    assert not isinstance(plain.optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule)


def test_a_schedule_steps_with_training_and_reloads(tmp_path, rng):
    x, y = rng.normal(size=(16, 4)).astype("float32"), np.arange(16) % 2
    model = dli.build_mlp((4,), 2, hidden_units=(4,), optimizer="adamw", learning_rate=1e-2, schedule="cosine",
                          warmup_epochs=1, epochs=4, steps_per_epoch=4)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert int(model.optimizer.iterations) == 8
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 1e-2 * 0.5 * (1 + math.cos(math.pi * 4 / 12)),
                               rtol=1e-5)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert int(reloaded.optimizer.iterations) == 8
    np.testing.assert_allclose(_rates(reloaded, range(0, 17, 2)), _rates(model, range(0, 17, 2)), rtol=1e-6)


# ---------------------------------------------------------------- label smoothing (issue 11)


def test_label_smoothing_loss_equals_the_formula(tmp_path):
    model = dli.build_mlp((2,), 3, hidden_units=(), label_smoothing=0.3)
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    labels = np.array([0, 1])
    # targets (1 - 0.3)·one_hot + 0.3 / 3: [0.8, 0.1, 0.1] and [0.1, 0.8, 0.1]
    expected = -np.mean([0.8 * np.log(0.7) + 0.1 * np.log(0.2) + 0.1 * np.log(0.1),
                         0.1 * np.log(0.1) + 0.8 * np.log(0.1) + 0.1 * np.log(0.8)])
    np.testing.assert_allclose(float(model.loss(labels, probabilities)), expected, rtol=1e-5)
    np.testing.assert_allclose(float(model.loss(labels[:, None], probabilities)), expected, rtol=1e-5)  # (N, 1) labels
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(float(reloaded.loss(labels, probabilities)), expected, rtol=1e-5)
    unsmoothed = dli.build_mlp((2,), 3, hidden_units=())
    loss = keras.losses.get(unsmoothed.loss)  # the task's plain loss, by name
    np.testing.assert_allclose(float(np.mean(loss(labels, probabilities))), -np.mean([np.log(0.7), np.log(0.1)]),
                               rtol=1e-5)


def test_binary_label_smoothing_moves_the_targets_towards_one_half():
    model = dli.build_cnn((8, 1), task="binary", filters=(2,), label_smoothing=0.2)
    p = np.array([[0.9]], "float32")
    # target 1 becomes 1 - 0.2 / 2 = 0.9
    expected = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))
    np.testing.assert_allclose(float(model.loss(np.array([[1.0]]), p)), expected, rtol=1e-4)


@pytest.mark.parametrize("kwargs", [{}, dict(schedule="cosine", warmup_epochs=1, epochs=2, steps_per_epoch=2)])
def test_training_with_a_schedule_leaks_no_tensorflow_functions(kwargs):
    # Keras's own CosineDecay warm-up is a tf.cond in the train step: 2 functions leaked per model.
    from tensorflow.python.eager import context

    x = np.zeros((16, 8, 8, 1), "float32")
    y = np.zeros(16, "int64")
    counts = []
    for _ in range(3):
        keras.backend.clear_session()
        model = dli.build_cnn((8, 8, 1), 2, filters=(4,), dense_units=(4,), label_smoothing=0.1, **kwargs)
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        del model
        counts.append(len(context.context().list_function_names()))
    assert counts[2] == counts[1]
