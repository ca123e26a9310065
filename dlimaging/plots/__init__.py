"""Plots: matplotlib figures (object API; the global backend is never switched), each importing nothing above it.

Every `*_figure` function returns a `matplotlib.figure.Figure`; every `plot_*` function draws the
same figure into a PNG file and returns its path.
"""

from dlimaging._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "history_figure": "training",
    "plot_history": "training",
    "regression_scores": "training",
    "parity_figure": "training",
    "plot_parity": "training",
    "residuals_figure": "training",
    "plot_residuals": "training",
    "confusion_counts": "training",
    "confusion_matrix_figure": "training",
    "plot_confusion_matrix": "training",
    "spectra_figure": "training",
    "plot_spectra": "training",
    "pareto_front": "trials",
    "objective_per_trial_figure": "trials",
    "plot_objective_per_trial": "trials",
    "pareto_figure": "trials",
    "plot_pareto": "trials",
    "hyperparameters_figure": "trials",
    "plot_hyperparameters": "trials",
    "learning_curves_figure": "trials",
    "plot_learning_curves": "trials",
    "feature_maps_figure": "explain",
    "filters_figure": "explain",
    "grad_cam_figure": "explain",
    "saliency_figure": "explain",
    "plot_feature_maps": "explain",
    "plot_filters": "explain",
    "plot_grad_cam": "explain",
    "plot_saliency": "explain",
    "psnr": "restoration",
    "restoration_figure": "restoration",
    "plot_restoration": "restoration",
    "draw_model_plots": "evaluation",
})
