"""Models: the builders (MLP, CNN, U-Net), their blocks, heads, compile path, augmentation and standardisation."""

import importlib
import sys

from dlimaging._lazy import lazy_exports

# The modules that define what a saved model may name: layers, losses, metrics, schedules.
SERIALIZABLE_MODULES = ("augmentation", "heads", "compile", "metrics", "unet", "segmentation")


def register_custom_objects() -> None:
    """Registers every custom layer, loss, metric and schedule of dlimaging with Keras, so that
    `keras.saving.load_model` finds them. `import dlimaging` calls it as soon as Keras is imported
    (see `dlimaging/__init__.py`); calling it again costs nothing.

    A module of dlimaging that is being imported at that moment (it imported Keras first) is left
    to finish on its own, and so is one that cannot be imported before it has finished.
    """
    for module in SERIALIZABLE_MODULES:
        name = f"{__name__}.{module}"
        loading = sys.modules.get(name)
        if loading is not None and getattr(getattr(loading, "__spec__", None), "_initializing", False):
            continue
        try:
            importlib.import_module(name)
        except ImportError:  # it imports a module that is still half-initialised: not now
            sys.modules.pop(name, None)


__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "build_mlp": "mlp",
    "build_cnn": "cnn",
    "build_unet": "unet",
    "conv_output_size": "blocks",
    "compile_model": "compile",
    "check_compile": "compile",
    "loss_and_metrics": "compile",
    "adapt": "standardization",
    "image_augmentation": "augmentation",
    "signal_augmentation": "augmentation",
    "PSNR": "metrics",
    "SSIM": "metrics",
    "SSIMLoss": "metrics",
    "psnr": "metrics",
    "ssim": "metrics",
    "MeanIoU": "segmentation",
    "MeanDice": "segmentation",
    "DiceLoss": "segmentation",
})
