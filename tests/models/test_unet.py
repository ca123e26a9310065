"""build_unet: shapes round-trip in 1D, 2D and 3D for any channels and sizes, the residual output,
the layer names, inputs of other sizes, and strict argument checks."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.models.unet import build_unet

TINY = dict(depth=2, filters=4, compile=False)


@pytest.mark.parametrize("input_shape, depth, padded", [
    ((16, 16, 1), 2, False),
    ((18, 13, 3), 2, True),   # not a multiple of 4: padded and cropped back
    ((32, 2), 3, False),
    ((37, 1), 3, True),
])
def test_shapes_round_trip_and_padding_is_said_once(input_shape, depth, padded):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = build_unet(input_shape, depth=depth, filters=4, compile=False)
    said = [w for w in caught if "padded" in str(w.message)]
    assert len(said) == (1 if padded else 0)
    if padded:
        assert f"2^depth={2 ** depth}" in str(said[0].message)
    x = np.random.default_rng(0).random((2,) + input_shape).astype("float32")
    assert model(x).shape == x.shape
    assert model.output_shape == (None,) + input_shape


def test_layer_names_are_readable():
    model = build_unet((16, 16, 1), depth=2, filters=4, batch_norm=True, dropout=0.1, compile=False)
    names = {layer.name for layer in model.layers}
    assert {"down1_conv1", "down1_bn1", "down1_act2", "down1_pool", "down2_conv2", "bottom_conv1",
            "up2_upconv", "up2_concat", "up1_concat", "up1_conv2", "head_conv", "output"} <= names
    assert model.layers[-1].name == "output"
    # Widths double at each level down; the bottom has 4·2² filters.
    assert model.get_layer("down2_conv1").filters == 8 and model.get_layer("bottom_conv1").filters == 16
    explicit = build_unet((16, 16, 1), depth=2, filters=(3, 5, 7), compile=False)
    assert [explicit.get_layer(n).filters for n in ("down1_conv1", "down2_conv1", "bottom_conv1")] == [3, 5, 7]


def _zero_head(model):
    head = model.get_layer("head_conv")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])


@pytest.mark.parametrize("input_shape", [(12, 16, 2), (20, 1)])
def test_residual_adds_the_predicted_correction_to_the_input(input_shape):
    x = np.random.default_rng(1).random((3,) + input_shape).astype("float32")
    residual = build_unet(input_shape, **TINY)
    plain = build_unet(input_shape, residual=False, **TINY)
    correction = plain(x).numpy()
    plain_head = plain.get_layer("head_conv").get_weights()
    residual.get_layer("head_conv").set_weights(plain_head)
    for name in ("down1_conv1", "down1_conv2", "down2_conv1", "down2_conv2", "bottom_conv1", "bottom_conv2",
                 "up2_upconv", "up2_conv1", "up2_conv2", "up1_upconv", "up1_conv1", "up1_conv2"):
        residual.get_layer(name).set_weights(plain.get_layer(name).get_weights())
    np.testing.assert_allclose(residual(x).numpy(), x + correction, atol=1e-5)
    _zero_head(residual)
    np.testing.assert_array_equal(residual(x).numpy(), x)  # no correction: the input itself


def test_the_model_takes_other_spatial_sizes():
    model = build_unet((16, 16, 3), **TINY)
    forward = tf.function(lambda t: model(t, training=False),
                          input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    for shape in ((1, 13, 21, 3), (2, 40, 8, 3)):
        assert tuple(forward(tf.zeros(shape)).shape) == shape


def test_compiled_metrics_follow_the_rank_and_take_max_val():
    image = build_unet((16, 16, 1), depth=2, filters=4, max_val=255.0)
    signal = build_unet((16, 1), depth=2, filters=4)
    _zero_head(image)
    clean = np.full((2, 16, 16, 1), 100.0, "float32")
    noisy = clean + 25.5  # MSE 650.25 on a scale of 255: PSNR 20 dB
    scores = image.evaluate(noisy, clean, return_dict=True, verbose=0)
    assert set(scores) == {"loss", "psnr", "ssim"}
    assert scores["psnr"] == pytest.approx(20.0, abs=1e-3)
    assert scores["loss"] == pytest.approx(650.25, rel=1e-4)
    assert set(signal.evaluate(np.zeros((2, 16, 1)), np.zeros((2, 16, 1)), return_dict=True, verbose=0)) == {
        "loss", "psnr"}


def test_trains_and_reloads_with_the_ssim_loss(tmp_path):
    rng = np.random.default_rng(0)
    clean = rng.random((8, 16, 16, 1)).astype("float32")
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype("float32")
    model = build_unet((16, 16, 1), depth=1, filters=4, loss="ssim")
    model.fit(noisy, clean, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert reloaded.loss.max_val == 1.0
    np.testing.assert_allclose(reloaded.predict(noisy, verbose=0), model.predict(noisy, verbose=0), atol=1e-6)
    np.testing.assert_allclose(reloaded.evaluate(noisy, clean, verbose=0), model.evaluate(noisy, clean, verbose=0),
                               rtol=1e-5)


@pytest.mark.parametrize("input_shape, kwargs, match", [
    ((16, 16, 1), {"depth": 5}, r"`depth` is deeper than the input allows.*smallest side 16.*at most depth=4.*"
                                r"Received: depth=5"),
    ((12, 40, 1), {"depth": 4}, r"at most depth=3.*Received: depth=4"),
    ((1, 1), {"depth": 1}, r"a side of at least 2.*Received: depth=1"),
    ((16, 1), {"depth": 0}, r"`depth` must be a positive integer. Received: depth=0"),
    ((16, 1), {"filters": (4, 8)}, r"`filters` must be an int .* \(4 for depth=3\). Received: filters=\(4, 8\)"),
    ((16, 1), {"filters": 0}, r"`filters` must be a positive integer"),
    ((16, 1), {"dropout": 1.5}, r"`dropout` must be a number in \[0.0, 1.0\). Received: dropout=1.5"),
    ((16, 1), {"residual": "yes"}, r"`residual` must be True or False. Received: residual='yes'"),
    ((16, 1), {"loss": "ssim"}, r"loss='ssim' is defined on 2D inputs, not on 1D inputs: use one of 'mse', 'mae'"),
    ((16, 16, 1), {"loss": "huber"}, r"`loss` must be one of 'mse', 'mae', 'ssim'. Received: loss='huber'"),
    ((16, 16, 1), {"max_val": 0}, r"`max_val` must be a positive finite number .*Received: max_val=0"),
    ((16, 16, 1), {"block": "dense"}, r"`block` must be one of 'plain', 'residual'"),
    ((2, 4, 16, 16, 1), {}, r"`input_shape` must have 2 or 3 or 4 dimensions .*build_unet takes \(length, "
                            r"channels\), \(height, width, channels\), \(depth, height, width, channels\)"),
    ((16, 16, 1), {"momentum": 0.9}, r"`momentum` does not apply to optimizer='adam'"),
])
def test_bad_arguments_are_refused_before_building(input_shape, kwargs, match):
    with pytest.raises(InputError, match=match):
        build_unet(input_shape, **kwargs)


def test_tasks_other_than_the_familys_are_refused():
    other = next(name for name, entry in registry.TASKS.items() if entry.units == "num_classes")
    with pytest.raises(InputError, match=rf"task={other!r} needs model 'cnn' or 'mlp'"):
        build_unet((16, 16, 1), task=other)


def test_hypermodel_default_space_builds_and_depth_is_cut_to_the_input():
    import keras_tuner

    from dlimaging.tuning.hypermodels import UNetHyperModel, default_space

    space = default_space(next(n for n, e in registry.FAMILIES.items() if e.builder.endswith(":build_unet")),
                          (16, 16, 1))
    assert {"depth", "filters", "learning_rate"} <= set(space)
    assert "augmentation" not in space and "standardize" not in space  # the target would not follow
    hypermodel = UNetHyperModel((8, 8, 1), fixed={"max_val": 255.0},
                                space={"depth": {"min": 1, "max": 6, "default": 5}, "filters": {"choice": [4, 8]}})
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    assert hp.values == {"depth": 3, "filters": 4}  # 8x8 halves 3 times at most
    assert hp.get_config()["space"][0]["config"]["max_value"] == 3
    assert model.get_layer("bottom_conv1").filters == 32 and model.output_shape == (None, 8, 8, 1)
    psnr = next(m for m in model.metrics[1].metrics if m.name == "psnr")
    assert psnr.max_val == 255.0  # the data's value range, through `fixed`


def test_the_other_builders_refuse_the_restoration_task():
    import dlimaging as dli

    task = next(name for name, entry in registry.TASKS.items() if entry.units == "channels")
    for build in (dli.build_cnn, dli.build_mlp):
        with pytest.raises(InputError, match=rf"task={task!r} is not built by this builder .*use model 'unet'"):
            build((8, 8, 1), task=task)


def test_keras_model_checks_input_shape_as_the_docstring_says():
    # The graph takes any size (see above), the Keras model's own call checks `input_shape`: the
    # docstring and README say so; a change to this behaviour must update them.
    model = build_unet((16, 16, 1), **TINY)
    with pytest.raises(ValueError, match="expected shape"):
        model(np.zeros((1, 12, 12, 1), "float32"))


@pytest.mark.parametrize("options", [{"flip": "horizontal"}, {"rotation": 0.1}, {"translation": 0.1}])
def test_augmentation_that_moves_pixels_is_refused_since_the_target_does_not_move(options):
    with pytest.raises(InputError, match=r"`augmentation` of a U-Net.*Allowed: .*noise"):
        build_unet((16, 16, 1), depth=1, filters=4, augmentation=options)


def test_augmentation_that_changes_values_is_kept_and_acts_only_in_training():
    model = build_unet((16, 1), depth=1, filters=4, augmentation={"noise": 0.5}, compile=False)
    x = np.ones((2, 16, 1), "float32")
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=False))


# ---------------------------------------------------------------- volumes (3D)


@pytest.mark.parametrize("task, kwargs, channels", [
    ("restoration", {"block": "residual", "dropout": 0.1, "batch_norm": True}, 2),
    ("segmentation", {"num_classes": 3, "l2": 1e-4, "loss": "crossentropy+dice"}, 1),
])
def test_volumes_get_a_3d_unet_for_both_tasks(task, kwargs, channels):
    shape = (8, 12, 16, channels)  # 12 is not a multiple of 4: padded and cropped back
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_unet(shape, task=task, depth=2, filters=4, **kwargs)
    kinds = {type(model.get_layer(name)).__name__ for name in ("down1_conv1", "down1_pool", "up1_upconv")}
    assert kinds == {"Conv3D", "MaxPooling3D", "Conv3DTranspose"} and model.name == "unet3d"
    x = np.random.default_rng(0).random((2,) + shape).astype("float32")
    out = model(x).numpy()
    assert out.shape == ((2,) + shape if task == "restoration" else (2,) + shape[:-1] + (3,))
    if task == "segmentation":
        np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)  # a softmax per voxel
        scores = model.evaluate(x, np.zeros((2,) + shape[:-1], "int32"), return_dict=True, verbose=0)
        assert {"mean_iou", "dice"} <= set(scores)
    else:
        scores = model.evaluate(x, x, return_dict=True, verbose=0)
        assert set(scores) == {"loss", "psnr"}  # SSIM is 2D only


def test_a_residual_3d_unet_with_a_zero_head_returns_the_volume():
    model = build_unet((4, 8, 8, 1), **TINY)
    _zero_head(model)
    x = np.random.default_rng(2).random((1, 4, 8, 8, 1)).astype("float32")
    np.testing.assert_array_equal(model(x).numpy(), x)


@pytest.mark.parametrize("kwargs, match", [
    ({"conv": "separable"}, r"conv='separable' .* Keras has no 3D depthwise convolution"),
    ({"loss": "ssim"}, r"loss='ssim' is defined on 2D inputs, not on 3D inputs: use one of 'mse', 'mae'"),
    ({"augmentation": {"contrast": 0.1}}, r"`augmentation` as a dict has no layers for volumes.*give flips and "
                                          r"rotate90 to the data.*Received: augmentation=\{'contrast': 0.1\}"),
    ({"depth": 3}, r"`depth` is deeper than the input allows.*smallest side 4.*at most depth=2.*Received: depth=3"),
    ({"kernel_size": (3, 3)}, r"`kernel_size` must be an int or a tuple of 3 ints for 3D inputs"),
])
def test_options_that_do_not_apply_to_volumes_are_refused(kwargs, match):
    with pytest.raises(InputError, match=match):
        build_unet((4, 16, 16, 1), **{"filters": 4, "depth": 2, **kwargs})


def test_a_3d_unet_takes_volumes_of_other_sizes():
    model = build_unet((8, 8, 8, 1), **TINY)
    forward = tf.function(lambda t: model(t, training=False),
                          input_signature=[tf.TensorSpec((None, None, None, None, 1), tf.float32)])
    assert tuple(forward(tf.zeros((1, 5, 9, 6, 1))).shape) == (1, 5, 9, 6, 1)
