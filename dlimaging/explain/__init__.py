"""Explain: feature maps, filters, Grad-CAM and saliency as arrays, and `dlimaging explain` on files."""

from dlimaging._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "feature_maps": "methods",
    "filters": "methods",
    "grad_cam": "methods",
    "saliency": "methods",
    "saliency_exported": "methods",
    "explain_file": "files",
})
