"""PSNR and SSIM against known values and against scikit-image; the SSIM loss; serialisation."""

import keras
import numpy as np
import pytest
from skimage import data as samples
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dlimaging.errors import InputError
from dlimaging.models import metrics as restoration


@pytest.mark.parametrize("max_val", [1.0, 255.0])
def test_psnr_of_a_known_mse(max_val):
    clean = np.zeros((2, 8, 8, 1), "float32")
    for offset, expected in ((0.1, 20.0), (0.01, 40.0), (0.3162278, 10.0)):
        value = restoration.psnr(clean, clean + offset * max_val, max_val).numpy()
        np.testing.assert_allclose(value, [expected, expected], atol=1e-3)


def test_psnr_of_signals_and_the_cap_for_identical_samples():
    rng = np.random.default_rng(0)
    signal = rng.random((3, 40, 2)).astype("float32")
    noisy = signal + rng.normal(0, 0.05, signal.shape).astype("float32")
    expected = [10 * np.log10(1 / np.mean((noisy[i] - signal[i]) ** 2)) for i in range(3)]
    np.testing.assert_allclose(restoration.psnr(signal, noisy).numpy(), expected, rtol=1e-5)
    np.testing.assert_array_equal(restoration.psnr(signal, signal).numpy(), [restoration.PSNR_CAP] * 3)


def _crops():
    rng = np.random.default_rng(0)
    for image, (rows, cols) in ((samples.camera(), (slice(100, 164), slice(200, 264))),
                                (samples.moon(), (slice(0, 48), slice(0, 40))),
                                (samples.coins(), (slice(50, 82), slice(60, 92)))):
        clean = image[rows, cols].astype("float32") / 255
        noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype("float32")
        yield clean, noisy


@pytest.mark.parametrize("max_val", [1.0, 255.0])
def test_ssim_and_psnr_match_scikit_image(max_val):
    for clean, noisy in _crops():
        a, b = clean * max_val, noisy * max_val
        expected = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                         data_range=max_val)
        got = float(restoration.ssim(a[None, ..., None], b[None, ..., None], max_val)[0])
        assert got == pytest.approx(expected, abs=1e-4)
        assert got < 0.9  # a real difference, not two near-identical images
        psnr = float(restoration.psnr(a[None, ..., None], b[None, ..., None], max_val)[0])
        assert psnr == pytest.approx(peak_signal_noise_ratio(a, b, data_range=max_val), abs=1e-3)


def test_ssim_of_identical_images_is_one_and_the_loss_zero():
    clean, noisy = next(_crops())
    x, y = clean[None, ..., None], noisy[None, ..., None]
    assert float(restoration.ssim(x, x)[0]) == pytest.approx(1.0, abs=1e-6)
    loss = restoration.SSIMLoss()
    assert float(loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(loss(x, y)) == pytest.approx(1 - float(restoration.ssim(x, y)[0]), abs=1e-6)


def test_ssim_refuses_signals():
    with pytest.raises(InputError, match=r"SSIM is defined on 2D images .* Received: a tensor of shape \(2, 40, 1\)"):
        restoration.ssim(np.zeros((2, 40, 1)), np.zeros((2, 40, 1)))


def test_small_images_use_a_window_of_their_size():
    rng = np.random.default_rng(0)
    x = rng.random((2, 8, 8, 1)).astype("float32")
    value = restoration.ssim(x, x + 0.05).numpy()
    assert value.shape == (2,) and np.all((value > 0.5) & (value < 1.0))


def test_metrics_average_over_samples_and_keep_max_val_through_their_config():
    metric = restoration.PSNR(max_val=255.0)
    clean = np.zeros((2, 8, 8, 1), "float32")
    noisy = np.stack([clean[0] + 25.5, clean[1] + 2.55])  # 20 dB and 40 dB
    metric.update_state(clean, noisy)
    assert float(metric.result()) == pytest.approx(30.0, abs=1e-3)
    again = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(again, restoration.PSNR) and again.max_val == 255.0 and again.name == "psnr"
    ssim = restoration.SSIM.from_config(restoration.SSIM(max_val=2.0, name="s").get_config())
    assert ssim.max_val == 2.0 and ssim.name == "s"


def test_restoration_figure_shows_each_sample_with_its_psnr(tmp_path):
    from dlimaging.plots.restoration import plot_restoration, restoration_figure

    rng = np.random.default_rng(0)
    clean = rng.random((5, 12, 12, 1))
    noisy, restored = clean + 0.1, clean + 0.01  # 20 dB and 40 dB
    fig = restoration_figure(noisy, restored, clean, title="t")
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 12 and titles[:3] == ["noisy: 20.00 dB", "restored: 40.00 dB", "clean"]
    signals = restoration_figure(noisy[:2, :, 0], restored[:2, :, 0], clean[:2, :, 0], max_val=2.0)
    labels = [t.get_text() for t in signals.axes[0].get_legend().get_texts()]
    assert len(signals.axes) == 2 and labels == ["noisy (26.02 dB)", "clean", "restored (46.02 dB)"]
    assert plot_restoration(noisy, restored, clean, tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("channels", [2, 4])
def test_restoration_figure_draws_images_of_any_channel_count(tmp_path, channels):
    from dlimaging.plots.restoration import plot_restoration

    clean = np.random.default_rng(0).random((2, 8, 8, channels))
    path = plot_restoration(clean + 0.1, clean + 0.01, clean, tmp_path / "r.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def _max_val_users():
    """Everything that takes the data's range: each must refuse a bad one through one check."""
    from dlimaging import build_unet
    from dlimaging.plots import restoration as figures

    x = np.zeros((2, 8, 8, 1), "float32")
    return {
        "psnr": lambda v: restoration.psnr(x, x, v), "ssim": lambda v: restoration.ssim(x, x, v),
        "PSNR": lambda v: restoration.PSNR(max_val=v), "SSIM": lambda v: restoration.SSIM(max_val=v),
        "SSIMLoss": lambda v: restoration.SSIMLoss(max_val=v), "numpy psnr": lambda v: figures.psnr(x[0], x[0], v),
        "figure": lambda v: figures.restoration_figure(x, x, x, max_val=v),
        "build_unet": lambda v: build_unet((8, 8, 1), depth=1, filters=2, max_val=v),
    }


@pytest.mark.parametrize("max_val", [0, -1, 0.0, float("nan"), float("inf"), True, "1"])
def test_every_user_of_max_val_refuses_one_that_is_not_a_positive_number(max_val):
    # 0 gave -inf dB and -1 NaN; SSIM and the PSNR metric took a negative one.
    for name, call in _max_val_users().items():
        with pytest.raises(InputError, match=r"`max_val` must be a positive finite number .* Received: max_val="):
            call(max_val)
            pytest.fail(f"{name} took max_val={max_val!r}")


@pytest.mark.parametrize("true_shape, pred_shape", [
    ((1, 8, 8, 1), (2, 8, 8, 1)),  # broadcast before: the one clean image scored twice
    ((2, 8, 8, 1), (1, 8, 8, 1)),
    ((2, 8, 9, 1), (2, 8, 8, 1)),  # TensorFlow's InvalidArgumentError before
    ((2, 8, 8), (2, 8, 8, 1)),
    ((2, 40, 1), (2, 40, 2)),
])
def test_scores_refuse_two_shapes_naming_both(true_shape, pred_shape):
    from dlimaging.plots.restoration import psnr as numpy_psnr

    y_true, y_pred = np.zeros(true_shape, "float32"), np.full(pred_shape, 0.1, "float32")
    shapes = rf"y_true of shape \({', '.join(map(str, true_shape))}\) and y_pred of shape \({', '.join(map(str, pred_shape))}\)"
    calls = [restoration.psnr, restoration.PSNR().update_state]
    calls += [restoration.ssim, restoration.SSIMLoss()] if len(pred_shape) == 4 else []
    for call in calls:
        with pytest.raises(InputError, match=rf"`y_true` and `y_pred` must have the same shape .*{shapes}"):
            call(y_true, y_pred)
    with pytest.raises(InputError, match=r"`clean` and `other` must have the same shape"):
        numpy_psnr(y_true, y_pred)


def test_noise2void_loss_scores_the_masked_pixels_only():
    from dlimaging.models.metrics import Noise2VoidLoss

    noisy = np.zeros((2, 4, 4, 1), "float32")
    mask = np.zeros((2, 4, 4, 1), "float32")
    mask[0, 1, 1], mask[1, 2, 3], mask[1, 0, 0] = 1, 1, 1
    prediction = np.full((2, 4, 4, 1), 0.5, "float32")
    prediction[0, 1, 1] = 0.1  # the masked pixels: errors 0.1, then 0.5 and 0.5
    target = np.concatenate([noisy, mask], -1)
    assert float(Noise2VoidLoss()(target, prediction)) == pytest.approx((0.01 + 0.25) / 2, rel=1e-5)
    assert float(Noise2VoidLoss("mae")(target, prediction)) == pytest.approx((0.1 + 0.5) / 2, rel=1e-5)
    with pytest.raises(InputError, match="`error` must be one of mse, mae"):
        Noise2VoidLoss("ssim")
