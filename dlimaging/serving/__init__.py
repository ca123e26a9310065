"""Serving: versioned SavedModel export, reading exports, predict, REST bodies, models.config,
tiled prediction of large images."""

from dlimaging._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "export_saved_model": "export",
    "ExportError": "export",
    "list_versions": "export",
    "resolve_version_dir": "exports",
    "read_metadata": "exports",
    "predict_exported": "exports",
    "load_inputs": "inputs",
    "read_csv_inputs": "inputs",
    "rest_request": "rest",
    "serving_response": "rest",
    "serving_config": "rest",
    "restore_files": "restoration",
    "predict_tiled": "tiling",
})
