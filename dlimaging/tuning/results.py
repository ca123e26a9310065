"""Trial records, ranking, results files, the leaderboard and the report of a search.

Everything here reads and writes files in a run folder (`runs/<name>/`), so it
works the same on a finished search, an interrupted one, and one run by
distributed workers.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import pathlib
from typing import Any

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.files import read_json, write_atomically
from dlimaging.plots._base import better
from dlimaging.plots.trials import (
    pareto_front,
    plot_hyperparameters,
    plot_learning_curves,
    plot_objective_per_trial,
    plot_pareto,
)
from dlimaging.tuning.pruning import STATE_KEY as PRUNING_STATE
from dlimaging.validation import check_choice, parse_export_choice

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
TRIAL_LOGS = "trial_logs"
# The numbers a trial log holds besides its curves; each may be missing (older logs) or None.
LOG_NUMBERS = ("epochs", "seconds", "params", "latency_ms")
FINGERPRINT = "experiment.json"
ORACLE_JSON = "oracle.json"  # Keras Tuner's oracle state; pruning's record under PRUNING_STATE
PLOTS = "plots"


COMPLETED, FAILED = "COMPLETED", "FAILED"


@dataclasses.dataclass
class TrialRecord:
    """One trial as the leaderboard shows it.

    Attributes:
        trial: its number, from 1.
        trial_id: Keras Tuner's id ("0", "1", ...).
        status: Keras Tuner's status: "COMPLETED", "FAILED", "RUNNING", ...
        score: the objective at its best epoch; None unless completed.
        best_epoch: that epoch, from 1.
        epochs, seconds: what the trial ran.
        reason: why it failed.
        hyperparameters: its values.
        params: the model's parameter count (`count_params()`: trainable and not).
        latency_ms: its batch-1 inference time in milliseconds, measured after training
            (see `dlimaging.tuning.progress.measure_latency`).
        pruned_at: the epoch (from 1) at which pruning stopped it, or None. A pruned trial is
            completed, with its best objective as its score; it is never exported while
            another completed trial was not pruned.
    """

    trial: int
    trial_id: str
    status: str
    score: float | None = None
    best_epoch: int | None = None
    epochs: int | None = None
    seconds: float | None = None
    reason: str | None = None
    hyperparameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    params: int | None = None
    latency_ms: float | None = None
    pruned_at: int | None = None


@dataclasses.dataclass
class BestTrial:
    """The trial chosen for export (the best one unless `choice` says otherwise), evaluated on
    the test split, and where it was exported.

    Attributes:
        choice: the export choice that picked it: "best", "smallest-within=T" or "ensemble=K".
        why: how the choice picked it, in words.
        members: for an ensemble, the trial numbers of its members, best first (`trial` is the
            first); None for one trial.
    """

    trial: int
    trial_id: str
    score: float
    best_epoch: int | None
    hyperparameters: dict[str, Any]
    test_metrics: dict[str, float]
    export_path: str | None = None
    params: int | None = None
    latency_ms: float | None = None
    choice: str = "best"
    why: str | None = None
    members: list[int] | None = None


def failure_reason(message: str | None) -> str | None:
    """The last line of a trial's traceback: the error itself."""
    if not message:
        return None
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    reason = lines[-1] if lines else message
    for prefix in ("keras_tuner.src.errors.FailedTrialError: ", "keras_tuner.errors.FailedTrialError: "):
        reason = reason.replace(prefix, "")
    return reason[:300]


def hp_text(values: dict[str, Any], limit: int = 8) -> str:
    """`key=value` pairs of a trial's hyperparameters, for one line."""
    items = [(k, v) for k, v in values.items() if not k.startswith("tuner/")]
    parts = [f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}" for key, value in items[:limit]]
    if len(items) > limit:
        parts.append(f"+{len(items) - limit} more")
    return " ".join(parts)


def _trial_record(path: pathlib.Path, run_dir: pathlib.Path, pruned: dict[str, int]) -> TrialRecord:
    trial = read_json(path, "trial record")
    try:
        trial_id, status = str(trial["trial_id"]), trial["status"]
    except (KeyError, TypeError) as error:
        raise InputError(f"{path}: not a complete Keras Tuner trial record (missing or bad {error}).") from None
    log = _trial_log(run_dir, trial_id)
    try:
        score = trial.get("score") if status == COMPLETED else None
        score = float(score) if score is not None and math.isfinite(score) else None
        best_step = trial.get("best_step")
        return TrialRecord(
            trial=int(trial_id) + 1, trial_id=trial_id, status=status, score=score,
            best_epoch=best_step + 1 if score is not None and best_step is not None else None,
            epochs=log.get("epochs"), seconds=log.get("seconds"),
            params=log.get("params"), latency_ms=log.get("latency_ms"),
            reason=failure_reason(trial.get("message")) if status != COMPLETED else None,
            hyperparameters=dict(trial["hyperparameters"]["values"]),
            pruned_at=pruned.get(trial_id, log.get("pruned_at")) if status == COMPLETED else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputError(f"{path}: not a complete Keras Tuner trial record (missing or bad {error}).") from None


def _trial_log(run_dir: pathlib.Path, trial_id) -> dict[str, Any]:
    """dlimaging's log of a trial (`trial_logs/<id>.json`), {} when there is none."""
    path = run_dir / TRIAL_LOGS / f"{trial_id}.json"
    if not path.is_file():
        return {}
    log = read_json(path, "trial log")
    numbers = tuple(log.get(key) for key in LOG_NUMBERS) if isinstance(log, dict) else ()
    if (not isinstance(log, dict) or not isinstance(log.get("history", {}), dict)
            or not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in numbers)):
        raise InputError(f"{path}: not a dlimaging trial log (expected an object with numbers "
                         f"{', '.join(LOG_NUMBERS)} and a history).")
    return log


def pruned_epochs(run_dir: pathlib.Path) -> dict[str, int]:
    """The trials that pruning stopped, and the epoch at which: the oracle's record (`oracle.json`,
    the chief's under `--chief`), {} when there is none."""
    path = run_dir / ORACLE_JSON
    state = read_json(path, "oracle state") if path.is_file() else {}
    pruned = ((state.get(PRUNING_STATE) or {}) if isinstance(state, dict) else {}).get("pruned") or {}
    try:
        return {str(k): int(v) for k, v in dict(pruned).items()}
    except (TypeError, ValueError):
        raise InputError(f"{path}: its {PRUNING_STATE} record is not trial ids and epochs.") from None


def collect_trials(run_dir: pathlib.Path) -> list[TrialRecord]:
    """Every trial Keras Tuner recorded (`trial_*/trial.json`), with dlimaging's log of it."""
    paths = [p for p in run_dir.glob("trial_*/trial.json") if p.parent.name[len("trial_"):].isdigit()]
    paths.sort(key=lambda p: int(p.parent.name[len("trial_"):]))
    pruned = pruned_epochs(run_dir)
    return [_trial_record(path, run_dir, pruned) for path in paths]


def rank_trials(trials: list[TrialRecord], direction: str) -> list[TrialRecord]:
    """The completed trials, best first; `direction` is "min" or "max"."""
    check_choice("direction", direction, ("min", "max"))
    done = [t for t in trials if t.score is not None]
    return sorted(done, key=lambda t: t.score, reverse=direction == "max")


def _exportable(trials: list[TrialRecord], direction: str) -> list[TrialRecord]:
    """The ranked trials an export may take: those that ran to their end, or, when none did, the pruned."""
    ranked = rank_trials(trials, direction)
    if not ranked:
        raise InputError("No completed trial to choose from.")
    # A pruned trial stopped before its end: exported only when no trial ran to its end.
    return [t for t in ranked if t.pruned_at is None] or ranked


def ensemble_members(trials: list[TrialRecord], direction: str, size: int) -> list[TrialRecord]:
    """The `size` best trials that `choose_export(..., "ensemble=SIZE")` averages, best first (fewer
    when fewer completed; a pruned trial only when none ran to its end)."""
    return _exportable(trials, direction)[:size]


def choose_export(trials: list[TrialRecord], direction: str, choice: str = "best") -> tuple[TrialRecord, str]:
    """The trial to export, and why, under an export choice.

    Args:
        trials: `TrialRecord`s; at least one completed.
        direction: "min" or "max": how the objective improves.
        choice: "best" (the best objective), "smallest-within=T": the fewest
            parameters among the trials whose objective is within T of the best
            (ties: the better objective, then the earlier trial), or "ensemble=K":
            the best trial, first of the K best (`ensemble_members`). Defaults to "best".

    Returns:
        (the chosen `TrialRecord`, a sentence saying why).
    """
    kind, tolerance = parse_export_choice(choice)
    ranked = _exportable(trials, direction)
    best = ranked[0]
    if kind == "ensemble":
        members = ranked[:tolerance]
        if len(members) < 2:
            return best, f"the best objective: trial {best.trial} ({best.score:.4f}), alone: no other trial ran to its end"
        return best, (f"the mean of the {len(members)} best trials' outputs: "
                      + ", ".join(f"trial {t.trial} ({t.score:.4f})" for t in members)
                      + (f"; {tolerance} were asked for, {len(members)} ran to their end" if len(members) < tolerance else ""))
    if kind == "best":
        return best, f"the best objective: trial {best.trial} ({best.score:.4f})"
    sign = 1 if direction == "max" else -1
    # A hair of slack so that a tolerance of exactly the difference, written in decimal, counts.
    close = [t for t in ranked if sign * (best.score - t.score) <= tolerance + 1e-12 and t.params is not None]
    if not close:
        return best, f"the best objective: trial {best.trial} ({best.score:.4f}); no trial has a parameter count"
    chosen = min(close, key=lambda t: (t.params, ranked.index(t)))
    size = f"{best.params:,}" if best.params is not None else "?"
    return chosen, (f"the fewest parameters among the {len(close)} trial(s) within {tolerance:g} of the best "
                    f"objective (trial {best.trial}: {best.score:.4f}, {size} parameters): trial {chosen.trial} "
                    f"({chosen.score:.4f}, {chosen.params:,} parameters)")


def summary(trials: list[TrialRecord]) -> dict[str, int]:
    completed = sum(t.status == COMPLETED for t in trials)
    failed = sum(t.status == FAILED for t in trials)
    return {"trials": len(trials), "completed": completed, "failed": failed,
            "unfinished": len(trials) - completed - failed, "pruned": sum(t.pruned_at is not None for t in trials)}


def write_results(run_dir: pathlib.Path, experiment, trials: list[TrialRecord], best: BestTrial | None) -> None:
    """`results.json` (everything) and `results.csv` (one row per trial), written atomically."""
    payload = {
        "name": experiment.name,
        "objective": experiment.objective,
        "direction": experiment.direction,
        "summary": summary(trials),
        "best": dataclasses.asdict(best) if best else None,
        "pareto": [t.trial for t in pareto_front(trials, experiment.direction)],
        "trials": [dataclasses.asdict(t) for t in trials],
        "experiment": experiment.to_dict(),
    }
    write_atomically(run_dir / RESULTS_JSON, json.dumps(payload, indent=2, default=str))
    hp_names = sorted({k for t in trials for k in t.hyperparameters})
    columns = ["trial", "status", "score", "best_epoch", "epochs", "pruned_at", "seconds", "params", "latency_ms",
               "reason"]
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(columns + hp_names)
    for t in trials:
        writer.writerow([getattr(t, c) for c in columns] + [t.hyperparameters.get(k) for k in hp_names])
    write_atomically(run_dir / RESULTS_CSV, table.getvalue())


def read_best(run_dir: pathlib.Path) -> BestTrial | None:
    """The best trial recorded by an earlier run's `results.json`, if it is readable."""
    path = run_dir / RESULTS_JSON
    if not path.is_file():
        return None
    try:
        best = json.loads(path.read_text()).get("best")
        best = BestTrial(**best) if best else None
        if best is not None and not all(isinstance(v, (int, float)) for v in dict(best.test_metrics).values()):
            return None
        return best
    except (OSError, ValueError, TypeError, AttributeError):
        return None  # an unreadable results.json is rewritten at the end of the next run


def draw_plots(run_dir: pathlib.Path, trials: list[TrialRecord], objective: str, direction: str,
               top: int = 3) -> list[pathlib.Path]:
    """The objective per trial, each hyperparameter against it, the best trials' curves, and the
    objective against the parameter count with the Pareto front (`pareto.png`)."""
    plots = run_dir / PLOTS
    paths = [
        plot_objective_per_trial(trials, objective, plots / "objective_per_trial.png", direction=direction),
        plot_hyperparameters(trials, objective, plots / "hyperparameters.png"),
    ]
    curves = {}
    for trial in rank_trials(trials, direction)[:top]:
        history = _trial_log(run_dir, trial.trial_id).get("history")
        if history:
            curves[f"trial {trial.trial}"] = history
    metric = objective[4:] if objective.startswith("val_") else objective
    paths.append(plot_learning_curves(curves, plots / "learning_curves.png", metric=metric))
    paths.append(plot_pareto(trials, objective, plots / "pareto.png", direction=direction))
    return paths


def format_leaderboard(trials: list[TrialRecord], objective: str, direction: str, top: int = 10) -> str:
    """A short table a person can read: the best trials first, then the failures counted.

    The objective's column says which way it improves, e.g. `val_loss (lower is better)`.
    """
    header = f"{objective} ({better(direction)})"
    width = max(12, len(header))
    counts = summary(trials)
    pruning = counts["pruned"] > 0  # a column "pruned" (the epoch it was stopped at) when any was
    lines = [f"{'rank':>4}  {'trial':>5}  {header:>{width}}  {'epochs':>6}  " + ("pruned  " if pruning else "")
             + f"{'time':>7}  hyperparameters"]
    for rank, t in enumerate(rank_trials(trials, direction)[:top], start=1):
        seconds = f"{t.seconds:.1f}s" if t.seconds is not None else "-"
        stopped = f"{'@' + str(t.pruned_at) if t.pruned_at else '-':>6}  " if pruning else ""
        lines.append(f"{rank:>4}  {t.trial:>5}  {t.score:>{width}.4f}  {str(t.epochs or '-'):>6}  {stopped}"
                     f"{seconds:>7}  {hp_text(t.hyperparameters, limit=6)}")
    pruned = f" ({counts['pruned']} pruned: stopped early, never exported while a full trial exists)" if pruning else ""
    lines.append(f"{counts['trials']} trials: {counts['completed']} completed{pruned}, {counts['failed']} failed"
                 + (f", {counts['unfinished']} unfinished." if counts["unfinished"] else "."))
    failed = [t for t in trials if t.status == FAILED]
    lines.extend(f"  trial {t.trial} failed: {t.reason}" for t in failed[:5])
    return "\n".join(lines)


def format_pareto(trials: list[TrialRecord], objective: str, direction: str) -> str:
    """The Pareto front (`pareto_front`) as a short table: trial, objective, params, latency."""
    front = pareto_front(trials, direction)
    header = f"{objective} ({better(direction)})"
    width = max(12, len(header))
    lines = [f"{'trial':>5}  {header:>{width}}  {'params':>10}  {'latency_ms':>10}"]
    for t in front:
        latency = f"{t.latency_ms:.3f}" if t.latency_ms is not None else "-"
        lines.append(f"{t.trial:>5}  {t.score:>{width}.4f}  {t.params:>10,}  {latency:>10}")
    measured = sum(t.score is not None and t.params is not None for t in trials)
    lines.append(f"On the front: {len(front)} of {measured} completed trials with a parameter count "
                 f"(no other trial has a better {objective} with as few parameters).")
    return "\n".join(lines)


def report(run_dir: str | os.PathLike, pareto: bool = False) -> tuple[str, list[pathlib.Path]]:
    """The leaderboard of a finished or interrupted run, and its plots drawn again.

    The trials are read afresh from the run folder, so a search stopped half-way
    (before it wrote `results.json`) reports the trials it finished.

    Args:
        run_dir: the run folder, `runs/<name>`.
        pareto: bool. List the Pareto front on (objective, params) instead of the
            leaderboard. Defaults to False.
    """
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / FINGERPRINT).is_file():
        raise InputError(f"{run_dir}: not a `dlimaging tune` run folder (no {FINGERPRINT}).")
    started = read_json(run_dir / FINGERPRINT, "run fingerprint")
    try:
        name, objective = started["name"], started["tuner"]["objective"]
        direction = registry.task(started["model"]["task"]).direction(objective)
    except (KeyError, TypeError, InputError) as error:
        raise InputError(f"{run_dir / FINGERPRINT}: incomplete run fingerprint (missing or bad {error}).") from None
    trials = collect_trials(run_dir)
    paths = draw_plots(run_dir, trials, objective, direction)
    if pareto:
        return "\n".join([f"{name}: Pareto front of {objective} ({better(direction)}) and parameters",
                          format_pareto(trials, objective, direction)]), paths
    text = [f"{name}: {objective} ({better(direction)})", format_leaderboard(trials, objective, direction)]
    best = read_best(run_dir)
    if best:
        chosen = "Best" if best.choice == "best" else f"Chosen ({best.choice})"
        what = (f"the mean of trials {', '.join(map(str, best.members))}" if best.members
                else f"trial {best.trial} at epoch {best.best_epoch}")
        text.append(f"{chosen}: {what}, " + ", ".join(f"{k}={v:.4f}" for k, v in best.test_metrics.items()))
        if best.export_path:
            text.append(f"Exported: {best.export_path}")
    return "\n".join(text), paths
