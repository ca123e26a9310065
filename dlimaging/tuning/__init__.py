"""Tuning: the experiment schema, default spaces, hypermodels, tuner hooks, progress, results and run_search."""

from dlimaging._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "load_experiment": "experiment",
    "parse_experiment": "experiment",
    "Experiment": "experiment",
    "ExperimentError": "experiment",
    "BuilderHyperModel": "hypermodels",
    "CNNHyperModel": "hypermodels",
    "MLPHyperModel": "hypermodels",
    "UNetHyperModel": "hypermodels",
    "DEFAULT_CNN_SPACE": "spaces",
    "DEFAULT_MLP_SPACE": "spaces",
    "DEFAULT_UNET_SPACE": "spaces",
    "run_search": "search",
    "SearchResult": "search",
    "TuningError": "search",
    "report": "results",
    "format_leaderboard": "results",
})
