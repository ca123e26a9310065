"""Data the plot tests share: a training history, regression and class results, spectra, trial records."""

import numpy as np

from dlimaging.tuning.results import TrialRecord

HISTORY = {"loss": [1.0, 0.6, 0.5], "val_loss": [1.1, 0.8, 0.7], "accuracy": [0.5, 0.7, 0.8],
           "val_accuracy": [0.4, 0.6, 0.7], "learning_rate": [1e-3, 1e-3, 1e-4]}


# Two regression targets, three classes, and twelve spectra of length 50 on a wavenumber axis.
_RNG = np.random.default_rng(3)
Y_TRUE = _RNG.normal(5.0, 1.0, (40, 2))
Y_PRED = Y_TRUE + _RNG.normal(0.0, [0.3, 0.8], (40, 2))
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
PREDICTED = np.array([0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 0, 2])
AXIS = np.linspace(4000.0, 400.0, 50)
SPECTRA = _RNG.normal(0.0, 1.0, (12, 50, 1)) + LABELS[:, None, None]


def trial(trial, score, hyperparameters):
    status = "COMPLETED" if score is not None else "RUNNING"
    return TrialRecord(trial=trial, trial_id=str(trial - 1), status=status, score=score,
                       hyperparameters=hyperparameters)


def trials(learning_rates=(1e-4, 1e-3, 1e-2)):
    return [trial(i + 1, 0.5 + 0.1 * i,
                   {"learning_rate": lr, "activation": ("relu", "tanh")[i % 2], "units": 16 * (i + 1),
                    "dropout": 0.2, "tuner/epochs": 2})
            for i, lr in enumerate(learning_rates)] + [trial(9, None, {"units": 1})]


def sized_trials():
    """Trials with parameter counts: (score, params); 2, 4 and 5 are the Pareto front (higher is better)."""
    sized = [(0.90, 12_000), (0.95, 3_000), (0.93, 40_000), (0.97, 150_000), (0.80, 900), (0.96, 400_000)]
    return [TrialRecord(trial=i, trial_id=str(i - 1), status="COMPLETED", score=score, params=params)
            for i, (score, params) in enumerate(sized, start=1)] + [trial(9, None, {})]
