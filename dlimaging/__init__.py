"""dlimaging: deep learning for imaging and spectroscopy on Keras 3."""

__version__ = "0.1.0"

from dlimaging.augment import image_augmentation, signal_augmentation
from dlimaging.models import build_cnn, build_mlp, conv_output_size
from dlimaging.data import DatasetBundle, list_datasets, load_dataset
from dlimaging.export import export_saved_model
