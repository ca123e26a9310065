"""dlimaging.explain: shapes, a planted feature found by Grad-CAM and saliency, refused layers, figures, CLI."""


import keras
import numpy as np
import pytest
from PIL import Image

import dlimaging as dli
from dlimaging import plots
from dlimaging.cli import main
from dlimaging.errors import InputError
from dlimaging.explain import methods as explain


def _cnn(input_shape, **kwargs):
    # The lecture's plain network (the builder's defaults add batch norm and dropout).
    return dli.build_cnn(input_shape, 3, filters=(4, 8), **{"batch_norm": False, "dropout": 0.0, **kwargs})


def _signals(position, n=256, length=64, seed=0):
    """Noise; class 1 adds a peak at `position` (random height), class 0 nothing."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.arange(length)
    x = rng.normal(0, 0.3, (n, length)) + y[:, None] * rng.uniform(1, 2, (n, 1)) * np.exp(
        -0.5 * ((t - position) / 2.0) ** 2)
    return x[..., None].astype("float32"), y


def _images(corner, n=256, size=16, seed=0):
    """Uniform noise in [0, 0.5]; class 1 adds a brighter 3x3 square centred on `corner`."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.uniform(0, 0.5, (n, size, size))
    r, c = corner
    x[y == 1, r - 1:r + 2, c - 1:c + 2] += 0.5
    return x[..., None].astype("float32"), y


def _heat_near(cam, corner):
    """How many times hotter the 5x5 window around `corner` is than the whole map (about 1 for a map
    that ignores the square, below 1 for one that looks elsewhere)."""
    r, c = corner
    return cam[max(r - 2, 0):r + 3, max(c - 2, 0):c + 3].mean() / cam.mean()


def _trained(x, y, **kwargs):
    keras.utils.set_random_seed(0)
    kwargs = {"batch_norm": False, "dropout": 0.0, **kwargs}  # the plain network, which learns in 3 epochs
    model = dli.build_cnn(x.shape[1:], 2, filters=(8, 16), learning_rate=kwargs.pop("learning_rate", 3e-3), **kwargs)
    model.fit(x, y, epochs=kwargs.pop("epochs", 3), batch_size=32, verbose=0)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] > 0.95  # it learned the feature
    return model


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("input_shape", [(40, 1), (8, 8, 1), (12, 10, 3)])
def test_shapes(input_shape):
    model = _cnn(input_shape)
    x = np.random.default_rng(0).uniform(size=input_shape).astype("float32")
    spatial = input_shape[:-1]
    maps = explain.feature_maps(model, x)
    assert list(maps) == ["block1_act1", "block2_act1"]
    half = tuple(s // 2 for s in spatial)  # after block1_pool
    assert maps["block1_act1"].shape == spatial + (4,) and maps["block2_act1"].shape == half + (8,)
    assert explain.filters(model).shape == (4,) + (3,) * len(spatial) + (input_shape[-1],)
    assert explain.filters(model, "block2_conv1").shape == (8,) + (3,) * len(spatial) + (4,)
    for variant in explain.CAM_VARIANTS:
        heat = explain.grad_cam(model, x, variant=variant)
        assert heat.shape == spatial and 0.0 <= heat.min() and heat.max() <= 1.0
    assert explain.grad_cam(model, np.stack([x, x, x])).shape == (3,) + spatial
    assert explain.saliency(model, x).shape == spatial
    assert explain.saliency(model, np.stack([x, x]), class_index=2).shape == (2,) + spatial
    np.testing.assert_allclose(explain.saliency(model, x).max(), 1.0)


def test_feature_maps_are_the_layers_outputs_and_separable_filters_are_depthwise():
    model = _cnn((40, 1), conv="separable", block="residual", batch_norm=True)
    x = np.random.default_rng(1).normal(size=(40, 1)).astype("float32")
    maps = explain.feature_maps(model, x, layers=["block1_conv1", "block2_act"])
    probe = keras.Model(model.inputs[0], model.get_layer("block2_act").output)
    np.testing.assert_allclose(maps["block2_act"], probe(x[None], training=False)[0], rtol=1e-5, atol=1e-6)
    assert explain.block_outputs(model) == ["block1_act1", "block1_act", "block2_act1", "block2_act"]
    assert explain.filters(model).shape == (1, 3, 1)  # one input channel: one depthwise kernel
    assert explain.filters(model, "block2_conv1").shape == (4, 3, 1)


def test_saliency_of_a_vector_input_has_one_value_per_feature(tmp_path):
    # No hidden layer: the first output is w·x + b, its saliency |w| / max |w|, one value per feature.
    model = dli.build_mlp((6,), task="regression", num_outputs=2, hidden_units=())
    x = np.random.default_rng(0).normal(size=(3, 6)).astype("float32")
    weights = np.abs(model.get_layer("output").kernel.numpy()[:, 0])
    np.testing.assert_allclose(explain.saliency(model, x[0]), weights / weights.max(), rtol=1e-5)
    assert explain.saliency(model, x).shape == (3, 6)
    version = dli.export_saved_model(model, tmp_path / "vector")
    np.testing.assert_allclose(explain.saliency_exported(version, x), explain.saliency(model, x), atol=1e-5)


def test_regression_explains_the_first_output_by_default():
    model = dli.build_cnn((32, 1), task="regression", num_outputs=2, filters=(4,))
    x = np.random.default_rng(2).normal(size=(32, 1)).astype("float32")
    np.testing.assert_allclose(explain.saliency(model, x), explain.saliency(model, x, class_index=0))
    assert not np.allclose(explain.saliency(model, x), explain.saliency(model, x, class_index=1))


# ---------------------------------------------------------------- a planted feature


@pytest.mark.parametrize("position", [16, 44])
def test_grad_cam_and_saliency_peak_at_a_planted_peak(position):
    x, y = _signals(position)
    model = _trained(x, y)
    test_x, test_y = _signals(position, n=64, seed=1)
    hits = test_x[test_y == 1]
    cam = explain.grad_cam(model, hits, class_index=1).mean(axis=0)
    curve = explain.saliency(model, hits, class_index=1).mean(axis=0)
    assert abs(int(cam.argmax()) - position) <= 4, cam.round(2)
    assert abs(int(curve.argmax()) - position) <= 3, curve.round(2)
    assert cam[position] > 2 * np.median(cam)


def test_grad_cam_finds_a_planted_square_behind_global_pooling():
    corner = (4, 11)
    x, y = _images(corner)
    test_x, test_y = _images(corner, n=64, seed=1)
    # Grad-CAM's home: a head that pools the maps globally.
    model = _trained(x, y, head="global_max", dense_units=(), learning_rate=1e-2, epochs=4)
    cam = explain.grad_cam(model, test_x[test_y == 1], class_index=1).mean(axis=0)
    # Measured over training seeds 0-4: 2.0 to 4.9 times hotter; the map is as coarse as block2 (8x8).
    assert _heat_near(cam, corner) > 1.8, cam.round(2)


def test_hires_cam_finds_a_planted_square_behind_a_flatten_head():
    corner = (12, 3)
    x, y = _images(corner)
    test_x, test_y = _images(corner, n=64, seed=1)
    model = _trained(x, y)  # the default head: flatten, then a dense layer
    cam = explain.grad_cam(model, test_x[test_y == 1], class_index=1, variant="hires").mean(axis=0)
    # Measured over training seeds 0-4: 5.8 to 7.9 times hotter, the peak at most 3 pixels away.
    assert _heat_near(cam, corner) > 4, cam.round(2)
    assert np.abs(np.subtract(np.unravel_index(cam.argmax(), cam.shape), corner)).max() <= 3, cam.round(2)


def _quadrants(n, seed, size=16, bar=4):
    """Noise, and in each quadrant a bar, vertical or horizontal, at a random place. The class is the
    top-left bar's: 1 vertical, 0 horizontal; the other three bars are random, of the same two kinds."""
    rng = np.random.default_rng(seed)
    half = size // 2
    x = rng.uniform(0, 0.3, (n, size, size)).astype("float32")
    y = rng.integers(0, 2, n)
    for i in range(n):
        for q, (top, left) in enumerate([(0, 0), (0, half), (half, 0), (half, half)]):
            vertical = bool(y[i]) if q == 0 else bool(rng.integers(0, 2))
            along, across = rng.integers(1, half - bar), rng.integers(1, half - 1)
            if vertical:
                x[i, top + along:top + along + bar, left + across] += 1.0
            else:
                x[i, top + across, left + along:left + along + bar] += 1.0
    return x[..., None], y


def test_grad_cam_points_at_the_quadrant_that_decides():
    # The builder's defaults (batch norm, dropout, a flatten head), smaller. Averaging the gradient over
    # positions (variant "grad-cam", the default before) lit the bars of every quadrant: on 32x32 images
    # and the default build_cnn, the top-left quadrant held the most mass for 19 of 40 images, at every
    # layer, with or without batch norm, before or after the upsampling; weighing each position by its
    # own gradient ("hires", the default now), 40 of 40. Here, over training seeds 0-5: 32 to 40 of 40
    # (10 to 24 with "grad-cam").
    keras.utils.set_random_seed(0)
    x, y = _quadrants(1024, seed=0)
    test_x, test_y = _quadrants(40, seed=1)
    model = dli.build_cnn(x.shape[1:], 2, filters=(8, 16), dense_units=(32,))
    model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    assert np.mean(model.predict(test_x, verbose=0).argmax(-1) == test_y) >= 0.95  # it reads the top left
    cam = explain.grad_cam(model, test_x)
    mass = np.stack([cam[:, :8, :8], cam[:, :8, 8:], cam[:, 8:, :8], cam[:, 8:, 8:]], 1).sum(axis=(2, 3))
    hits = int(np.sum(mass.argmax(axis=1) == 0))
    assert hits >= 30, f"{hits}/40: {mass.round(1)}"


def test_a_binary_model_explains_the_class_it_answers():
    # One sigmoid unit scores class 1; where the model answers 0, the evidence for 0 is the logit's
    # opposite: the map of a copy of the model whose output layer is negated (which answers 1 there).
    model = dli.build_cnn((8, 8, 1), task="binary", filters=(4, 8), batch_norm=False, dropout=0.0)
    x = np.random.default_rng(0).uniform(size=(16, 8, 8, 1)).astype("float32")
    p = model.predict(x, verbose=0)[:, 0]
    model.layers[-1].bias.assign(model.layers[-1].bias - np.median(np.log(p / (1 - p))))  # answers 0 and 1
    answers = model.predict(x, verbose=0)[:, 0] >= 0.5
    assert 0 < answers.sum() < len(x)
    flipped = keras.models.clone_model(model)
    flipped.set_weights(model.get_weights()[:-2] + [-w for w in model.get_weights()[-2:]])
    for variant in explain.CAM_VARIANTS:
        cam = explain.grad_cam(model, x, variant=variant)
        np.testing.assert_allclose(cam[answers], explain.grad_cam(model, x[answers], class_index=0, variant=variant),
                                   atol=1e-6)
        np.testing.assert_allclose(cam[~answers], explain.grad_cam(flipped, x[~answers], class_index=0,
                                                                   variant=variant), atol=1e-6)


# ---------------------------------------------------------------- refused


def test_bad_layers_are_refused_with_the_valid_names():
    model = _cnn((8, 8, 1))
    x = np.zeros((8, 8, 1), "float32")
    valid = "block1_conv1, block1_act1, block1_pool, block2_conv1, block2_act1, block2_pool"
    with pytest.raises(InputError, match=f"feature-map layers: {valid}. Received: layer='conv9'"):
        explain.grad_cam(model, x, layer="conv9")
    with pytest.raises(InputError, match="Received: layer='head_dense1'"):
        explain.feature_maps(model, x, layers=["head_dense1"])
    with pytest.raises(InputError, match=r"convolution layers: block1_conv1, block2_conv1. Received: layer='block1_pool'"):
        explain.filters(model, "block1_pool")
    mlp = dli.build_mlp((8,), 3)
    for call in (lambda: explain.filters(mlp, None), lambda: explain.feature_maps(mlp, np.zeros(8)),
                 lambda: explain.feature_maps(mlp, np.zeros(8), layers=["dense1"])):
        with pytest.raises(InputError, match="'multilayer_perceptron' has no convolution layer: .* for CNNs"):
            call()
    with pytest.raises(InputError, match="has no convolution layer"):  # an MLP on images passes the rank check
        explain.grad_cam(dli.build_mlp((8, 8, 1), 3), np.zeros((8, 8, 1)))


@pytest.mark.parametrize("call, message", [
    (lambda m: explain.grad_cam(m, np.zeros((8, 8, 1)), class_index=3), r"class_index.*\[0, 2\].*class_index=3"),
    (lambda m: explain.saliency(m, np.zeros((8, 8, 1)), class_index=True), r"class_index=True"),
    (lambda m: explain.grad_cam(m, np.zeros((8, 8))), r"shape \(8, 8, 1\).*Received: x of shape \(8, 8\)"),
    (lambda m: explain.feature_maps(m, np.zeros((2, 8, 8, 1))), r"one input.*Received: x of shape \(2, 8, 8, 1\)"),
    (lambda m: explain.grad_cam(m, np.full((8, 8, 1), np.nan)), "NaN"),
    (lambda m: explain.grad_cam(m, np.zeros((8, 8, 1)), variant="cam++"), "variant"),
])
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(InputError, match=message):
        call(_cnn((8, 8, 1)))


def test_grad_cam_refuses_3d_models_whose_feature_maps_and_filters_still_work():
    model = dli.build_cnn((8, 8, 8, 1), 2, filters=(2,))
    with pytest.raises(InputError, match="1D and 2D CNNs"):
        explain.grad_cam(model, np.zeros((8, 8, 8, 1)))
    assert explain.feature_maps(model, np.zeros((8, 8, 8, 1)))["block1_act1"].shape == (8, 8, 8, 2)
    assert explain.filters(model).shape == (2, 3, 3, 3, 1)


def test_saliency_of_an_export_equals_the_keras_models_for_regression(tmp_path):
    # Linear outputs (and a positive target scale): the served output's gradient is the score's.
    model = dli.build_cnn((32, 1), task="regression", num_outputs=2, filters=(4,))
    x = np.random.default_rng(3).normal(size=(3, 32, 1)).astype("float32")
    version = dli.export_saved_model(model, tmp_path / "reg")
    for unit in (0, 1):
        np.testing.assert_allclose(explain.saliency_exported(version, x, class_index=unit),
                                   explain.saliency(model, x, class_index=unit), atol=1e-5)
    with pytest.raises(InputError, match=r"class_index.*\[0, 1\].*Received: class_index=2"):
        explain.saliency_exported(version, x, class_index=2)
    with pytest.raises(InputError, match="NaN"):
        explain.saliency_exported(version, np.full((32, 1), np.nan))
    with pytest.raises(InputError, match="array of numbers"):
        explain.saliency_exported(version, [["a"] * 32])


# ---------------------------------------------------------------- figures and the command line


def test_figures(tmp_path):
    image_model, signal_model = _cnn((8, 8, 1)), _cnn((40, 1))
    image, signal = np.random.default_rng(0).uniform(size=(8, 8, 1)), np.sin(np.linspace(0, 6, 40))[:, None]
    fig = plots.feature_maps_figure(explain.feature_maps(image_model, image), channels=3)
    assert len([ax for ax in fig.axes if ax.get_images()]) == 2 * 3
    fig = plots.filters_figure(explain.filters(signal_model, "block2_conv1"))
    assert len([ax for ax in fig.axes if ax.lines]) == 8
    fig = plots.grad_cam_figure(image, explain.grad_cam(image_model, image),
                                saliency=explain.saliency(image_model, image))
    assert len(fig.axes) == 5  # the input, and each map alone and over the input
    axis = np.linspace(4000, 400, 40)
    path = plots.plot_grad_cam(signal, explain.grad_cam(signal_model, signal), tmp_path / "cam.png",
                               saliency=explain.saliency(signal_model, signal), axis=axis)
    assert Image.open(path).size == (800, 460)
    assert plots.grad_cam_figure(signal, np.zeros(40), axis=axis).axes[0].get_xlim() == (4000.0, 400.0)


def test_cli_explain_keras_model_and_export(tmp_path, capsys):
    x, _ = _signals(20, n=4)
    model = _cnn((64, 1))
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", x[:4])
    for method in ("grad-cam", "saliency", "feature-maps", "filters"):
        out = tmp_path / f"{method}.png"
        assert main(["explain", str(tmp_path / "model.keras"), str(tmp_path / "x.npy"), "--out", str(out),
                     "--method", method, "--sample", "1"]) == 0, capsys.readouterr().err
        assert Image.open(out).size[0] > 300
    assert "hires of block2_act1 for class " in capsys.readouterr().out

    dli.export_saved_model(model, tmp_path / "saved" / "peaks")
    out = tmp_path / "exported.png"
    assert main(["explain", str(tmp_path / "saved" / "peaks"), str(tmp_path / "x.npy"), "--out", str(out)]) == 0
    assert "saliency of class" in capsys.readouterr().out and out.is_file()

    out = tmp_path / "refused.png"  # not written: each of these is refused first
    assert main(["explain", str(tmp_path / "saved" / "peaks"), str(tmp_path / "x.npy"), "--out", str(out),
                 "--method", "grad-cam"]) == 2
    err = capsys.readouterr().err
    assert "grad-cam needs the Keras model" in err and len(err.strip().splitlines()) == 1
    assert main(["explain", str(tmp_path / "model.keras"), str(tmp_path / "x.npy"), "--out", str(out),
                 "--layer", "nope"]) == 2
    err = capsys.readouterr().err
    assert "Received: layer='nope'" in err and "block2_act1" in err and len(err.strip().splitlines()) == 1
    assert main(["explain", str(tmp_path / "model.keras"), str(tmp_path / "x.npy"), "--out", str(out),
                 "--sample", "9"]) == 2
    assert "holds 4 sample(s)" in capsys.readouterr().err


def test_the_command_line_names_the_same_variants_and_methods():
    from dlimaging.explain import files as explain_files

    assert explain_files.CAM_VARIANTS == tuple(explain.CAM_VARIANTS)
    assert set(explain_files.EXPORT_METHODS) <= set(explain_files.METHODS)


@pytest.mark.parametrize("method, class_index", [("feature-maps", "7"), ("filters", "-1"), ("grad-cam", "-1")])
def test_cli_explain_refuses_a_class_the_model_lacks_for_every_method(tmp_path, capsys, method, class_index):
    _cnn((8, 8, 1)).save(tmp_path / "model.keras")
    np.save(tmp_path / "x.npy", np.zeros((8, 8, 1), "float32"))
    assert main(["explain", str(tmp_path / "model.keras"), str(tmp_path / "x.npy"), "--out",
                 str(tmp_path / "o.png"), "--method", method, "--class", class_index]) == 2
    err = capsys.readouterr().err
    assert f"Received: class_index={class_index}" in err and len(err.strip().splitlines()) == 1


def test_restoration_models_show_feature_maps_and_refuse_grad_cam_in_one_line(tmp_path, capsys):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unet = dli.build_unet((8, 8, 1), depth=1, filters=4)
    x = np.random.default_rng(0).random((8, 8, 1)).astype("float32")
    for call in (explain.grad_cam, explain.saliency):
        with pytest.raises(InputError, match=r"answers with shape \(None, 8, 8, 1\).*feature maps or filters"):
            call(unet, x)
    unet.save(tmp_path / "unet.keras")
    np.save(tmp_path / "x.npy", x)
    args = ["explain", str(tmp_path / "unet.keras"), str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.png")]
    for method in (None, "grad-cam", "saliency"):
        assert main(args + (["--method", method] if method else [])) == 2
        err = capsys.readouterr().err
        assert "answers with an image or signal" in err and len(err.strip().splitlines()) == 1
    for method in ("feature-maps", "filters"):
        assert main(args[:3] + ["--out", str(tmp_path / f"{method}.png"), "--method", method]) == 0, \
            capsys.readouterr().err
        assert Image.open(tmp_path / f"{method}.png").size[0] > 300
    version = dli.export_saved_model(unet, tmp_path / "saved" / "denoise")
    with pytest.raises(InputError, match="'restored' has shape"):
        explain.saliency_exported(version, x)
    assert main(["explain", str(tmp_path / "saved" / "denoise")] + args[2:]) == 2
    assert "answers with an image or signal" in capsys.readouterr().err
