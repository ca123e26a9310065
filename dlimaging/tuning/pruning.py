"""Pruning inside random and Bayesian searches: the `[tuner] pruning*` settings, the two stopping
rules, and the oracle that applies them.

At the end of each epoch the tuner reports the trial's objective to the oracle (`REPORT` marks
such a report); the oracle, which holds every trial's curve, answers "STOPPED" when the rule says
the trial cannot win, and the tuner stops its training. The oracle lives with the chief under
`--chief`/`--worker`, so the rule sees every worker's trials; its curves and decisions are part of
the oracle's state (`oracle.json`, written atomically), so a resumed search keeps them.

- "median" (Vizier's median stopping rule, Optuna's `MedianPruner`): after the warm-up, a trial
  stops when its best objective so far is worse than the median of the completed trials'
  objectives at the same epoch (with at least `pruning_min_trials` of them).
- "successive_halving" (asynchronous, ASHA, Li et al. 2020): rungs at `min_epochs * eta**k`;
  at a rung a trial goes on only if its best objective so far is in the top 1/eta of the trials
  that reached that rung (the best one always goes on), once `pruning_min_trials` have.

A leaf like `experiment`: nothing here imports TensorFlow, Keras or Keras Tuner at import time.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import threading
from typing import Any, Sequence

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.validation import (
    at_least_two,
    check_positive_int,
    choice_of,
    non_negative_int,
    optional_positive_int,
)

RULES = ("none", "median", "successive_halving")
# The metric name that marks an epoch's report to the oracle (not a metric of the trial's).
REPORT = "dlimaging_pruning_report"
STATE_KEY = "dlimaging_pruning"  # the oracle state's entry: {"curves": {...}, "pruned": {...}}
# The Keras Tuner oracle behind each algorithm that can prune (Hyperband prunes by its own schedule).
ORACLES = {name: entry.oracle for name, entry in registry.TUNERS.items() if entry.oracle}
# [tuner] settings added after run folders existed: left out of a run's fingerprint while at these
# values, so that a run folder made before them still resumes.
LATER_SETTINGS = {"bayesian_initial_points": None, "pruning": "none", "pruning_warmup_epochs": 2,
                  "pruning_min_trials": 3, "pruning_min_epochs": None, "pruning_eta": 3}


def _field(default, check):
    return dataclasses.field(default=default, metadata={"check": check})


@dataclasses.dataclass(frozen=True)
class PruningSettings:
    """The `[tuner]` keys of pruning (a base of `experiment.TunerSettings`)."""

    pruning: str = _field("none", choice_of(RULES))
    pruning_warmup_epochs: int = _field(2, non_negative_int)
    pruning_min_trials: int = _field(3, check_positive_int)
    pruning_min_epochs: int | None = _field(None, optional_positive_int)  # None: the warm-up (at least 1)
    pruning_eta: int = _field(3, at_least_two)


def unchanged_later_setting(key: str, value: Any) -> bool:
    """Whether `key` is a setting added later that still has the value runs before it had."""
    return key in LATER_SETTINGS and value == LATER_SETTINGS[key]


def first_rung(settings) -> int:
    """The first epoch at which successive halving decides: `pruning_min_epochs`, else the warm-up."""
    return settings.pruning_min_epochs or max(1, settings.pruning_warmup_epochs)


def check_pruning(where: str, tuner, error: type[InputError] = InputError):
    """The rules between the pruning keys and the rest of `[tuner]`; returns `tuner`.

    Raises:
        error (an `InputError`): pruning with Hyperband, a warm-up or first rung at or past `max_epochs`,
            or a key of one rule set for another.
    """
    def fail(key, message, value):
        raise error(f"{where}: [tuner] {key}: {message}. Received: {key} = {value!r}".replace("'", '"'))

    rule = tuner.pruning
    if rule == "none":
        for key in ("pruning_warmup_epochs", "pruning_min_trials", "pruning_min_epochs", "pruning_eta"):
            if not unchanged_later_setting(key, getattr(tuner, key)):
                fail(key, 'applies only with pruning = "median" or "successive_halving"', getattr(tuner, key))
        return tuner
    if tuner.algorithm not in ORACLES:
        fail("pruning", f'algorithm "{tuner.algorithm}" stops trials by its own schedule; use pruning = "none" '
             f"with it, or algorithm = {' or '.join(map(repr, ORACLES))}", rule)
    if tuner.pruning_warmup_epochs >= tuner.max_epochs:
        fail("pruning_warmup_epochs", f"must be below max_epochs ({tuner.max_epochs}), or no trial is ever "
             "stopped", tuner.pruning_warmup_epochs)
    if rule != "successive_halving":
        for key in ("pruning_min_epochs", "pruning_eta"):
            if not unchanged_later_setting(key, getattr(tuner, key)):
                fail(key, 'applies only with pruning = "successive_halving"', getattr(tuner, key))
    elif first_rung(tuner) >= tuner.max_epochs:
        fail("pruning_min_epochs", f"the first rung must be below max_epochs ({tuner.max_epochs})",
             first_rung(tuner))
    return tuner


def _best(values: Sequence[float], direction: str) -> float:
    return max(values) if direction == "max" else min(values)


def _worse(a: float, b: float, direction: str) -> bool:
    return a < b if direction == "max" else a > b


def median_stops(own: Sequence[float], completed: Sequence[Sequence[float]], *, direction: str,
                 warmup: int, min_trials: int) -> bool:
    """Whether a trial with curve `own` (its objective per epoch so far) stops under the median rule.

    `completed` holds the curves of the trials that completed (not pruned); only those that
    reached this epoch count, and at least `min_trials` must have.
    """
    epoch = len(own)
    if epoch <= warmup:
        return False
    at_epoch = [curve[epoch - 1] for curve in completed if len(curve) >= epoch]
    if len(at_epoch) < min_trials:
        return False
    return _worse(_best(own, direction), statistics.median(at_epoch), direction)


def rungs(first: int, eta: int, max_epochs: int) -> list[int]:
    """The epochs (from 1) at which successive halving decides: first * eta**k below `max_epochs`."""
    found, epoch = [], first
    while epoch < max_epochs:
        found.append(epoch)
        epoch *= eta
    return found


def halving_stops(own: Sequence[float], others: Sequence[Sequence[float]], *, direction: str, first: int,
                  eta: int, min_trials: int) -> bool:
    """Whether a trial with curve `own` stops at this epoch under asynchronous successive halving.

    `others` holds the curves of every other trial (running, completed or pruned); those that
    reached this rung compete with it, each by its best objective up to the rung.
    """
    epoch = len(own)
    if epoch < first or not _is_rung(epoch, first, eta):
        return False
    mine = _best(own, direction)
    reached = [_best(curve[:epoch], direction) for curve in others if len(curve) >= epoch] + [mine]
    if len(reached) < min_trials:
        return False
    keep = max(1, len(reached) // eta)
    threshold = sorted(reached, reverse=direction == "max")[keep - 1]
    return _worse(mine, threshold, direction)


def _is_rung(epoch: int, first: int, eta: int) -> bool:
    ratio = epoch / first
    if ratio != int(ratio):
        return False
    power = round(math.log(ratio, eta)) if ratio >= 1 else -1
    return power >= 0 and first * eta**power == epoch


class PruningOracle:
    """Mixed into a Keras Tuner oracle (`pruning_oracle`): answers "STOPPED" to an epoch's report
    (`REPORT` in the metrics) when the rule stops the trial; everything else is the oracle's own."""

    def __init__(self, *args, pruning=None, **kwargs):
        self.pruning_settings = pruning
        self.pruning_lock = threading.RLock()
        self.curves: dict[str, list[float]] = {}
        self.pruned: dict[str, int] = {}  # trial id -> the epoch (from 1) at which it was stopped
        super().__init__(*args, **kwargs)

    def update_trial(self, trial_id, metrics, step=0):
        if REPORT not in metrics:
            return super().update_trial(trial_id, metrics, step=step)
        from keras_tuner.engine.trial import Trial

        value = float(metrics.get(self.objective.name, math.nan))
        with self.pruning_lock:
            stop = trial_id in self.pruned or self._decide(trial_id, int(step), value)
        status = "STOPPED" if stop else "RUNNING"
        return Trial(self.get_space(), trial_id=trial_id, status=status)

    def _decide(self, trial_id: str, step: int, value: float) -> bool:
        curve = self.curves.setdefault(trial_id, [])
        del curve[step:]  # a trial run again (another execution, or after a kill) starts its curve again
        if not math.isfinite(value) or len(curve) != step:
            return False
        curve.append(value)
        settings, direction = self.pruning_settings, self.objective.direction
        if len(curve) >= getattr(settings, "max_epochs", math.inf):  # its last epoch: it ran to its end
            return False
        ended = {tid for tid, trial in self.trials.items() if trial.status in ("FAILED", "INVALID")}
        if settings.pruning == "median":
            completed = [c for tid, c in self.curves.items() if tid != trial_id and tid not in self.pruned
                         and self.trials.get(tid) is not None and self.trials[tid].status == "COMPLETED"]
            stop = median_stops(curve, completed, direction=direction, warmup=settings.pruning_warmup_epochs,
                                min_trials=settings.pruning_min_trials)
        else:
            others = [c for tid, c in self.curves.items() if tid != trial_id and tid not in ended]
            stop = halving_stops(curve, others, direction=direction, first=first_rung(settings),
                                 eta=settings.pruning_eta, min_trials=settings.pruning_min_trials)
        if stop:
            self.pruned[trial_id] = len(curve)
            self.save()  # the decision survives a kill
        return stop

    def get_state(self):
        state = super().get_state()
        with self.pruning_lock:
            state[STATE_KEY] = {"curves": {k: list(v) for k, v in self.curves.items()}, "pruned": dict(self.pruned)}
        return state

    def set_state(self, state):
        super().set_state(state)
        saved = state.get(STATE_KEY) or {}
        self.curves = {str(k): [float(x) for x in v] for k, v in (saved.get("curves") or {}).items()}
        self.pruned = {str(k): int(v) for k, v in (saved.get("pruned") or {}).items()}


def pruning_oracle(algorithm: str, settings, **arguments):
    """A Keras Tuner oracle for `algorithm` ("random", "bayesian", "grid") that prunes by `settings`."""

    base = registry.resolve(ORACLES[algorithm])
    cls = type(f"Pruning{base.__name__}", (PruningOracle, base), {})
    return cls(pruning=settings, **arguments)

