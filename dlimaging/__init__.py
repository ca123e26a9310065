"""dlimaging: deep learning for imaging and spectroscopy on Keras 3.

The public API is imported lazily, so `dlimaging --help` answers at once and
the command line can quieten TensorFlow's logs before TensorFlow loads. The
package is one folder per concept: `models`, `data`, `tuning`, `serving`,
`explain` and `plots`, over the core modules `registry`, `validation`,
`errors` and `files`.

dlimaging's custom layers, losses and metrics are registered with Keras as soon
as Keras itself is imported, so a saved model loads after `import dlimaging`
alone, without TensorFlow loading at `import dlimaging`.
"""

from __future__ import annotations

import sys

from dlimaging._lazy import lazy_exports

__version__ = "0.2.0"

__getattr__, __dir__, _names = lazy_exports(__name__, {
    "build_mlp": "dlimaging.models.mlp",
    "build_cnn": "dlimaging.models.cnn",
    "build_unet": "dlimaging.models.unet",
    "conv_output_size": "dlimaging.models.blocks",
    "adapt": "dlimaging.models.standardization",
    "image_augmentation": "dlimaging.models.augmentation",
    "signal_augmentation": "dlimaging.models.augmentation",
    "load_dataset": "dlimaging.data.dataset",
    "list_datasets": "dlimaging.data.dataset",
    "DatasetBundle": "dlimaging.data.bundle",
    "export_saved_model": "dlimaging.serving.export",
    "predict_tiled": "dlimaging.serving.tiling",
    "train": "dlimaging.training",
    "BuilderHyperModel": "dlimaging.tuning.hypermodels",
    "CNNHyperModel": "dlimaging.tuning.hypermodels",
    "MLPHyperModel": "dlimaging.tuning.hypermodels",
    "UNetHyperModel": "dlimaging.tuning.hypermodels",
    "load_experiment": "dlimaging.tuning.experiment",
    "run_search": "dlimaging.tuning.search",
    "feature_maps": "dlimaging.explain.methods",
    "filters": "dlimaging.explain.methods",
    "grad_cam": "dlimaging.explain.methods",
    "saliency": "dlimaging.explain.methods",
})
__all__ = _names + ["__version__"]


def _register_custom_objects(_keras=None) -> None:
    from dlimaging.models import register_custom_objects

    register_custom_objects()


def _register_when_keras_loads() -> None:
    """Registers the custom objects now if Keras is loaded, else right after it is (a post-import
    hook: `import dlimaging` itself stays free of TensorFlow)."""
    if "keras" in sys.modules:
        _register_custom_objects()
        return
    try:
        import wrapt  # installed with TensorFlow
    except ImportError:  # pragma: no cover - TensorFlow always brings it
        return
    wrapt.register_post_import_hook(_register_custom_objects, "keras")


_register_when_keras_loads()
