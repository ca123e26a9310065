"""Models: the builders (MLP, CNN, U-Net), their blocks, heads, compile path, augmentation and standardisation."""

import importlib

from dlimaging import registry
from dlimaging._lazy import lazy_exports

# The modules that define what a saved model may name: layers, losses, metrics, schedules.
SERIALIZABLE_MODULES = ("augmentation", "heads", "compile", "metrics", "unet")


def register_custom_objects() -> None:
    """Registers every custom layer, loss, metric and schedule of dlimaging with Keras, so that
    `keras.saving.load_model` finds them; also those of families added to the registry at run time.
    `import dlimaging` calls it as soon as Keras is imported (see `dlimaging/__init__.py`)."""
    for module in SERIALIZABLE_MODULES:
        importlib.import_module(f"{__name__}.{module}")
    for entry in registry.FAMILIES.values():
        entry.load_builder()


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
})
