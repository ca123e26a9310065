"""What restoration means for a model: PSNR and SSIM, as metrics and as a loss.

Both are computed per sample with `tf.image` and averaged over the batch. Their
value range, `max_val`, is the data's (the dataset bundle's `max_val`: 1.0 for
images in [0, 1]), not assumed.

SSIM is defined on 2D images: a model of 1D signals (spectra) is compiled with
PSNR alone, and its loss is MSE or MAE (`loss="ssim"` is refused for signals).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.validation import check_number

# PSNR of two identical samples is infinite; metrics and reports cap it here (dB).
PSNR_CAP = 100.0
# tf.image.ssim's Gaussian window: 11 taps, σ = 1.5 (Wang et al. 2004); smaller images use a
# window as large as they are.
SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5


def check_max_val(max_val) -> float:
    """`max_val`, the data's value range (the white of an image): a number > 0."""
    return float(check_number("max_val", max_val, low=0.0, low_inclusive=False))


def _as_images(x):
    """1D signals (batch, length, channels) as images (batch, length, 1, channels)."""
    return x[:, :, None, :] if x.shape.rank == 3 else x


def psnr(y_true, y_pred, max_val: float = 1.0):
    """Peak signal-to-noise ratio per sample, in dB: 10·log10(max_val² / MSE), capped at `PSNR_CAP`.

    Args:
        y_true, y_pred: tensors (batch, length, channels) or (batch, height, width, channels).
        max_val: float. The data's value range. Defaults to 1.0.

    Returns:
        A tensor (batch,).

    Example:
    >>> float(psnr(np.zeros((1, 8, 8, 1)), np.full((1, 8, 8, 1), 0.1))[0])  # MSE 0.01 → 20 dB
    20.0...
    """
    y_pred = tf.convert_to_tensor(y_pred, "float32")
    y_true = tf.cast(y_true, y_pred.dtype)
    value = tf.image.psnr(_as_images(y_true), _as_images(y_pred), max_val=max_val)
    return tf.minimum(value, PSNR_CAP)


def ssim(y_true, y_pred, max_val: float = 1.0):
    """Structural similarity per image (`tf.image.ssim`: Gaussian window of 11, σ = 1.5; smaller
    images use a window of their own size), averaged over the channels.

    Args:
        y_true, y_pred: tensors (batch, height, width, channels).
        max_val: float. The data's value range. Defaults to 1.0.

    Returns:
        A tensor (batch,).
    """
    y_pred = tf.convert_to_tensor(y_pred, "float32")
    y_true = tf.cast(y_true, y_pred.dtype)
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


@keras.saving.register_keras_serializable(package="dlimaging")
class PSNR(keras.metrics.MeanMetricWrapper):
    """Mean PSNR over the samples, in dB (see `psnr`). Works on 1D and 2D data.

    Args:
        max_val: float > 0. The data's value range. Defaults to 1.0.
        name: str. Defaults to "psnr".
    """

    ranks = (1, 2)  # spatial ranks it applies to

    def __init__(self, max_val: float = 1.0, name: str = "psnr", dtype=None):
        super().__init__(fn=psnr, name=name, dtype=dtype, max_val=float(max_val))
        self.max_val = float(max_val)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "max_val": self.max_val}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="dlimaging")
class SSIM(keras.metrics.MeanMetricWrapper):
    """Mean SSIM over the images (see `ssim`). 2D only.

    Args:
        max_val: float > 0. The data's value range. Defaults to 1.0.
        name: str. Defaults to "ssim".
    """

    ranks = (2,)

    def __init__(self, max_val: float = 1.0, name: str = "ssim", dtype=None):
        super().__init__(fn=ssim, name=name, dtype=dtype, max_val=float(max_val))
        self.max_val = float(max_val)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "max_val": self.max_val}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="dlimaging")
class SSIMLoss(keras.losses.Loss):
    """1 − SSIM per image (see `ssim`): 0 for a perfect restoration. 2D only.

    Args:
        max_val: float > 0. The data's value range. Defaults to 1.0.
    """

    ranks = (2,)

    def __init__(self, max_val: float = 1.0, name: str = "ssim_loss", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.max_val = float(max_val)

    def call(self, y_true, y_pred):
        return 1.0 - ssim(y_true, y_pred, self.max_val)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "max_val": self.max_val}


def _supports(reference: str, rank: int) -> bool:
    return rank in getattr(registry.resolve(reference), "ranks", (rank,))


def check_loss(task: str, loss: str | None, rank: int) -> None:
    """Refuses a loss of the task that the input rank does not support (SSIM on signals)."""
    entry = registry.task(task)
    name = loss or next(iter(entry.losses))
    reference = entry.losses[name]
    if ":" in reference and not _supports(reference, rank):
        usable = [key for key, ref in entry.losses.items() if ":" not in ref or _supports(ref, rank)]
        raise InputError(
            f"loss={name!r} is defined on 2D images, not on {rank}D inputs: use one of "
            f"{', '.join(map(repr, usable))}. Received: loss={name!r}"
        )


def loss_and_metrics(task: str, loss: str | None, max_val: float, rank: int) -> tuple[Any, list]:
    """The task's loss (its default when `loss` is None) and metrics for inputs of spatial rank
    `rank`, each given the data's `max_val`; metrics that the rank lacks (SSIM in 1D) are left out."""
    entry = registry.task(task)
    reference = entry.losses[loss or next(iter(entry.losses))]
    loss_fn = registry.resolve(reference)(max_val=max_val) if ":" in reference else reference
    metrics = []
    for cls, name, kwargs in entry.metrics:
        if ":" in cls and not _supports(cls, rank):
            continue
        factory = registry.resolve(cls) if ":" in cls else getattr(keras.metrics, cls)
        metrics.append(factory(name=name, max_val=max_val, **kwargs) if ":" in cls else factory(name=name, **kwargs))
    return loss_fn, metrics


def build_metrics(model) -> None:
    """Creates the compiled metrics' variables now, eagerly (as `dlimaging.heads` does for the
    other tasks): one update on a zero sample, then a reset."""
    x = np.zeros((1,) + tuple(int(d) for d in model.inputs[0].shape[1:]), "float32")
    y_pred = model(x, training=False)
    model.compute_metrics(x, np.zeros(tuple(y_pred.shape), "float32"), y_pred)
    model.reset_metrics()
