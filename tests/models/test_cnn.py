"""build_cnn: ranks, layer names, blocks, pooling, strides, parameter counts, activations, bad input."""

import math

import keras
import numpy as np
import pytest

import dlimaging as dli
from dlimaging.models import conv_output_size


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


BAD_CNN = [
    ({"dropout": 1.0}, r"`dropout` must be a number in \[0.0, 1.0\). Received: dropout=1.0"),
    ({"dropout": -0.1}, "Received: dropout=-0.1"),
    ({"l1": -1}, "Received: l1=-1"),
    ({"l2": "big"}, "Received: l2='big'"),
    ({"activation": "relux"}, r"Received: activation='relux'.*Valid names:.*relu"),
    ({"pooling": "median"}, "`pooling` must be one of 'max', 'avg', None, 'none'. Received: pooling='median'"),
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


def _batch_norms(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


RANK_SHAPES = {1: (16, 3), 2: (8, 8, 3), 3: (4, 8, 8, 3)}


def _block_outputs(model, block, *names):
    return keras.Model(model.input, [model.get_layer(f"block{block}_{name}").output for name in names])


def _rates(model, steps):
    schedule = model.optimizer._learning_rate
    return np.array([float(schedule(step)) for step in steps])


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
    # "none", as an experiment file writes it (TOML has no null), is None.
    unpooled = dli.build_cnn((8, 8, 1), 2, filters=(4,), head="global_avg", dense_units=(), pooling=None)
    written = dli.build_cnn((8, 8, 1), 2, filters=(4,), head="global_avg", dense_units=(), pooling="none")
    assert [layer.name for layer in written.layers] == [layer.name for layer in unpooled.layers]
    assert written.count_params() == unpooled.count_params()
    with pytest.raises(ValueError, match="`pooling` must be one of"):
        dli.build_cnn((8, 8, 1), 2, filters=(4,), pooling="None")


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


@pytest.mark.parametrize("kwargs, match", BAD_CNN)
def test_cnn_bad_input(kwargs, match):
    kwargs.setdefault("task", "classification")
    num_classes = None if kwargs["task"] == "regression" else 10
    with pytest.raises(ValueError, match=match):
        dli.build_cnn((8, 8, 1), num_classes, **kwargs)


def test_separable_3d_refused():
    with pytest.raises(ValueError, match="no 3D depthwise convolution"):
        dli.build_cnn((8, 8, 8, 1), 2, conv="separable")


@pytest.mark.slow
def test_default_cnn_learns_the_digits():
    data = dli.load_dataset("digits", batch_size=32, seed=0)
    model = dli.build_cnn(data.input_shape, data.num_classes)
    model.fit(data.train, validation_data=data.validation, epochs=6, verbose=0, shuffle=False)
    metrics = model.evaluate(data.test, return_dict=True, verbose=0)
    assert metrics["accuracy"] > 0.93


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


def test_residual_layer_names():
    model = dli.build_cnn((16, 2), 3, filters=(4, 4), block="residual", batch_norm=True, dropout=0.1)
    names = [layer.name for layer in model.layers]
    expected = ["block1_conv1", "block1_bn1", "block1_act1", "block1_conv2", "block1_bn2", "block1_skip",
                "block1_skip_bn", "block1_add", "block1_act", "block1_pool", "block1_dropout",
                "block2_conv1", "block2_conv2", "block2_add", "block2_act"]
    assert set(expected) <= set(names)
    assert "block1_act2" not in names  # the activation comes after the sum
    assert "block2_skip" not in names  # same channels, stride 1: the identity


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
