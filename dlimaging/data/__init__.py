"""Data: the dataset bundle, load_dataset, the sources, labels, spectra, restoration data and corruption."""

from dlimaging._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "DatasetBundle": "bundle",
    "find_source": "bundle",
    "load_dataset": "dataset",
    "list_datasets": "dataset",
    "make_spectra": "spectra",
    "check_corruption": "corruption",
    "corrupt": "degrade",
})
