"""dlimaging: deep learning for imaging and spectroscopy on Keras 3.

The public API is imported lazily, so `dlimaging --help` answers at once and
the command line can quieten TensorFlow's logs before TensorFlow loads.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "build_mlp": "dlimaging.models",
    "build_cnn": "dlimaging.models",
    "build_unet": "dlimaging.unet",
    "conv_output_size": "dlimaging.models",
    "adapt": "dlimaging.standardization",
    "image_augmentation": "dlimaging.augment",
    "signal_augmentation": "dlimaging.augment",
    "load_dataset": "dlimaging.data",
    "list_datasets": "dlimaging.data",
    "DatasetBundle": "dlimaging.data",
    "export_saved_model": "dlimaging.export",
    "train": "dlimaging.training",
    "CNNHyperModel": "dlimaging.hypermodels",
    "MLPHyperModel": "dlimaging.hypermodels",
    "UNetHyperModel": "dlimaging.hypermodels",
    "load_experiment": "dlimaging.experiment",
    "run_search": "dlimaging.tuning",
    "feature_maps": "dlimaging.explain",
    "filters": "dlimaging.explain",
    "grad_cam": "dlimaging.explain",
    "saliency": "dlimaging.explain",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dlimaging' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
