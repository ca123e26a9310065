"""What restoration means for a model: PSNR and SSIM, as metrics and as a loss.

Both are computed per sample with `tf.image` and averaged over the batch. Their
value range, `max_val`, is the data's (the dataset bundle's `max_val`: 1.0 for
images in [0, 1]), not assumed.

SSIM is defined on 2D images: a model of 1D signals (spectra) is compiled with
PSNR alone, and its loss is MSE or MAE (`loss="ssim"` is refused for signals).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from dlimaging.errors import InputError
from dlimaging.plots.restoration import PSNR_CAP
from dlimaging.validation import check_max_val, check_same_shape

# tf.image.ssim's Gaussian window: 11 taps, σ = 1.5 (Wang et al. 2004); smaller images use a
# window as large as they are.
SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5


def _pair(y_true, y_pred, what: str):
    """`y_true` and `y_pred` as float32 tensors of one shape (refused otherwise: no broadcasting)."""
    y_pred = tf.convert_to_tensor(y_pred, "float32")
    y_true = tf.cast(y_true, y_pred.dtype)
    check_same_shape(("y_true", "y_pred"), (y_true.shape, y_pred.shape), f"{what} compares them sample by sample")
    return y_true, y_pred


def _as_images(x):
    """1D signals (batch, length, channels) as images (batch, length, 1, channels)."""
    return x[:, :, None, :] if x.shape.rank == 3 else x


def psnr(y_true, y_pred, max_val: float = 1.0):
    """Peak signal-to-noise ratio per sample, in dB: 10·log10(max_val² / MSE), capped at `PSNR_CAP`.

    Args:
        y_true, y_pred: tensors (batch, length, channels) or (batch, height, width, channels).
        max_val: float > 0. The data's value range. Defaults to 1.0.

    Returns:
        A tensor (batch,).

    Raises:
        InputError: if the shapes differ (no broadcasting) or `max_val` is not a positive number.

    Example:
    >>> float(psnr(np.zeros((1, 8, 8, 1)), np.full((1, 8, 8, 1), 0.1))[0])  # MSE 0.01 → 20 dB
    20.0...
    """
    max_val = check_max_val(max_val)
    y_true, y_pred = _pair(y_true, y_pred, "PSNR")
    value = tf.image.psnr(_as_images(y_true), _as_images(y_pred), max_val=max_val)
    return tf.minimum(value, PSNR_CAP)


def ssim(y_true, y_pred, max_val: float = 1.0):
    """Structural similarity per image (`tf.image.ssim`: Gaussian window of 11, σ = 1.5; smaller
    images use a window of their own size), averaged over the channels.

    Args:
        y_true, y_pred: tensors (batch, height, width, channels).
        max_val: float > 0. The data's value range. Defaults to 1.0.

    Returns:
        A tensor (batch,).

    Raises:
        InputError: as `psnr`, and for tensors that are not images.
    """
    max_val = check_max_val(max_val)
    y_true, y_pred = _pair(y_true, y_pred, "SSIM")
    if y_pred.shape.rank != 4:
        raise InputError(
            "SSIM is defined on 2D images (batch, height, width, channels); for 1D signals use PSNR, "
            f"and the loss 'mse' or 'mae'. Received: a tensor of shape {tuple(y_pred.shape)}"
        )
    size = SSIM_FILTER_SIZE
    known = [d for d in y_pred.shape[1:3] if d is not None]
    if known:
        size = min(size, *known)
    return tf.image.ssim(y_true, y_pred, max_val=max_val, filter_size=size, filter_sigma=SSIM_FILTER_SIGMA)


class _RangeMetric(keras.metrics.MeanMetricWrapper):
    """The mean over the samples of a per-sample score (`score`) that takes the data's `max_val`."""

    score = None  # set by the subclasses: a function (y_true, y_pred, max_val) -> (batch,)

    def __init__(self, max_val: float = 1.0, name: str | None = None, dtype=None):
        max_val = check_max_val(max_val)
        super().__init__(fn=type(self).score, name=name, dtype=dtype, max_val=max_val)
        self.max_val = max_val

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "max_val": self.max_val}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="dlimaging")
class PSNR(_RangeMetric):
    """Mean PSNR over the samples, in dB (see `psnr`). Works on 1D and 2D data.

    Args:
        max_val: float > 0. The data's value range. Defaults to 1.0.
        name: str. Defaults to "psnr".
    """

    score = staticmethod(psnr)

    def __init__(self, max_val: float = 1.0, name: str = "psnr", dtype=None):
        super().__init__(max_val=max_val, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="dlimaging")
class SSIM(_RangeMetric):
    """Mean SSIM over the images (see `ssim`). 2D only.

    Args:
        max_val: float > 0. The data's value range. Defaults to 1.0.
        name: str. Defaults to "ssim".
    """

    score = staticmethod(ssim)

    def __init__(self, max_val: float = 1.0, name: str = "ssim", dtype=None):
        super().__init__(max_val=max_val, name=name, dtype=dtype)


@keras.saving.register_keras_serializable(package="dlimaging")
class SSIMLoss(keras.losses.Loss):
    """1 − SSIM per image (see `ssim`): 0 for a perfect restoration. 2D only.

    Args:
        max_val: float > 0. The data's value range. Defaults to 1.0.
    """

    def __init__(self, max_val: float = 1.0, name: str = "ssim_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.max_val = check_max_val(max_val)

    def call(self, y_true, y_pred):
        return 1.0 - ssim(y_true, y_pred, self.max_val)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "max_val": self.max_val}


# Noise2Void's losses: the squared or absolute error, at the masked pixels only.
MASKED_ERRORS = {"mse": tf.math.squared_difference, "mae": lambda a, b: tf.abs(a - b)}


@keras.saving.register_keras_serializable(package="dlimaging")
class Noise2VoidLoss(keras.losses.Loss):
    """The mean error at the masked pixels of Noise2Void's target (`dlimaging.data.n2v`): the target
    is the noisy sample with one more channel, 1 at the pixels whose input was replaced by a
    neighbour; the prediction is scored there only, against the noisy value (per sample, the mean
    over its masked pixels and the channels).

    Args:
        error: str. "mse" (Noise2Void's) or "mae". Defaults to "mse".
    """

    def __init__(self, error: str = "mse", name: str = "n2v_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if error not in MASKED_ERRORS:
            raise InputError(f"`error` must be one of {', '.join(MASKED_ERRORS)}. Received: error={error!r}")
        self.error = error

    def call(self, y_true, y_pred):
        y_pred = tf.convert_to_tensor(y_pred, "float32")
        y_true = tf.cast(y_true, y_pred.dtype)
        channels = y_pred.shape[-1]
        target, mask = y_true[..., :channels], y_true[..., channels:channels + 1]
        error = tf.reduce_mean(MASKED_ERRORS[self.error](target, y_pred), axis=-1, keepdims=True) * mask
        axes = list(range(1, y_pred.shape.rank))
        return tf.reduce_sum(error, axes) / tf.maximum(tf.reduce_sum(mask, axes), 1.0)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "error": self.error}
