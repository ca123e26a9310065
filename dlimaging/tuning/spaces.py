"""The default search spaces, as data: one dict per model family, plus the augmentation and
standardisation searched by kind of input. `dlimaging.registry.FAMILIES` names them; the
hypermodels (`dlimaging.tuning.hypermodels`) read them; the format of a space is described there.

This module is plain data: it imports no TensorFlow and no Keras Tuner.
"""

from __future__ import annotations

from typing import Any

# The default spaces, in one place; `dlimaging.registry.FAMILIES` names them. The depth
# and width keys (`num_blocks` and `filters_<i>`) become one builder argument (`filters`).
DEFAULT_CNN_SPACE: dict[str, Any] = {
    "num_blocks": {"min": 1, "max": 3, "default": 2},
    "filters_i": {"choice": [16, 32, 64], "default": 32},
    "kernel_size": {"choice": [3, 5]},
    "conv": {"choice": ["standard", "separable"]},
    "activation": {"choice": ["relu", "elu", "gelu", "swish", "tanh"]},
    "dropout": {"min": 0.0, "max": 0.5, "step": 0.1},
    "l1": {"min": 1e-8, "max": 1e-4, "sampling": "log"},
    "l2": {"min": 1e-8, "max": 1e-2, "sampling": "log"},
    "batch_norm": {"choice": [False, True]},
    "pooling": {"choice": ["max", "avg"]},
    "head": {"choice": ["flatten", "global_avg"]},
    "dense_units": {"choice": [[64], [128]], "default": [128]},
    # Residual blocks and dilation: what the best 1D models (ResNet1D, TCN) use (issue 11).
    "block": {"choice": ["plain", "residual"]},
    "dilation_rate": {"choice": [1, 2]},
    "learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log", "default": 1e-3},
    "beta_1": {"min": 0.8, "max": 0.95, "step": 0.05, "default": 0.9},
    "beta_2": {"choice": [0.99, 0.999], "default": 0.999},
    # A schedule needs the training length: see `training_length`.
    "schedule": {"choice": ["constant", "cosine"]},
    # Dropped for tasks without classes (their registry entry has no `smoothed_loss`).
    "label_smoothing": {"min": 0.0, "max": 0.1, "default": 0.0},
}


DEFAULT_MLP_SPACE: dict[str, Any] = {
    "num_layers": {"min": 1, "max": 3, "default": 2},
    "units_i": {"choice": [32, 64, 128, 256], "default": 128},
    "activation": {"choice": ["relu", "elu", "gelu", "swish", "tanh"]},
    "dropout": {"min": 0.0, "max": 0.5, "step": 0.1},
    "l1": {"min": 1e-8, "max": 1e-4, "sampling": "log"},
    "l2": {"min": 1e-8, "max": 1e-2, "sampling": "log"},
    "batch_norm": {"choice": [False, True]},
    "learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log", "default": 1e-3},
    "beta_1": {"min": 0.8, "max": 0.95, "step": 0.05, "default": 0.9},
    "beta_2": {"choice": [0.99, 0.999], "default": 0.999},
}


# The U-Net's `depth` and `filters` (the first level's width, doubled at each level down) are its
# builder's own arguments. Batch norm is searched, off by default: in the calibration a
# residual U-Net without it denoised best in a short training.
DEFAULT_UNET_SPACE: dict[str, Any] = {
    "depth": {"min": 1, "max": 3, "default": 2},
    "filters": {"choice": [16, 32, 64], "default": 32},
    "kernel_size": {"choice": [3, 5], "default": 3},
    "activation": {"choice": ["relu", "elu", "gelu", "swish"], "default": "relu"},
    "batch_norm": {"choice": [False, True], "default": False},
    "block": {"choice": ["plain", "residual"], "default": "plain"},
    "loss": {"choice": ["mse", "mae"], "default": "mse"},
    "learning_rate": {"min": 1e-4, "max": 3e-3, "sampling": "log", "default": 1e-3},
}


DEFAULT_AUGMENTATION_SPACE = {
    "image": {"rotation": {"min": 0.0, "max": 0.1, "step": 0.05},
              "zoom": {"min": 0.0, "max": 0.1, "step": 0.05}},
    "signal": {"shift": {"min": 0.0, "max": 0.1, "step": 0.05},
               "scatter": {"min": 0.0, "max": 0.2, "step": 0.1},
               "baseline": {"min": 0.0, "max": 0.2, "step": 0.1},
               "noise": {"min": 0.0, "max": 0.1, "step": 0.05}},
}


# Standardisation searched by kind of input. Signals and spectra arrive in their instrument's
# units: one scale for the whole signal ("global") keeps the shape of a spectrum, one per
# wavelength ("per_feature", chemometrics' autoscaling) evens out weak and strong bands. Images
# arrive in [0, 1] already and are not searched (the builder's "none").
DEFAULT_STANDARDIZE_SPACE = {
    "signal": {"choice": ["global", "per_feature"], "default": "global"},
}
