"""Running a search: tuner factory, progress, failures, resume, results, best-model export."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import pathlib
import shutil
import time
import warnings
from typing import Any, Callable, Iterator

import keras
import keras_tuner

from dlimaging.experiment import Experiment, ExperimentError, check_against_data
from dlimaging.hypermodels import hypermodel_for

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
TRIAL_LOGS = "trial_logs"
FINGERPRINT = "experiment.json"
PLOTS = "plots"


class TuningError(RuntimeError):
    """The search produced no usable trial."""


class FailOnNaN(keras.callbacks.Callback):
    """Marks a trial failed (not retried) as soon as its loss is NaN or infinite."""

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise keras_tuner.errors.FailedTrialError(f"loss became {float(loss)} at epoch {epoch + 1}")


def write_atomically(path, text: str, *, sync: bool = False) -> None:
    """Writes `text` to a temporary file beside `path` and renames it into place: readers,
    and a run killed mid-write, see the old file or the new one, never half of one."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as handle:
        handle.write(text)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)


def _direction(objective: str) -> str:
    return "min" if objective.endswith("loss") else "max"


def _reason(message: str | None) -> str | None:
    """The last line of a trial's traceback: the error itself."""
    if not message:
        return None
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    reason = lines[-1] if lines else message
    for prefix in ("keras_tuner.src.errors.FailedTrialError: ", "keras_tuner.errors.FailedTrialError: "):
        reason = reason.replace(prefix, "")
    return reason[:300]


def _hp_text(values: dict[str, Any], limit: int = 8) -> str:
    items = [(k, v) for k, v in values.items() if not k.startswith("tuner/")]
    parts = []
    for key, value in items[:limit]:
        if isinstance(value, float):
            value = f"{value:.3g}"
        parts.append(f"{key}={value}")
    if len(items) > limit:
        parts.append(f"+{len(items) - limit} more")
    return " ".join(parts)


class _ProgressMixin:
    """One line per trial, and a log per trial (time, epochs, curves) on disk."""

    def __init__(self, *args, log_dir: pathlib.Path, total: int | None, printer: Callable[[str], None], **kwargs):
        self._log_dir = pathlib.Path(log_dir)
        self._total = total
        self._printer = printer
        self._started: dict[str, float] = {}
        self._curves: dict[str, dict[str, list[float]]] = {}
        super().__init__(*args, **kwargs)

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self._started[trial.trial_id] = time.perf_counter()
        self._curves[trial.trial_id] = {}

    def on_epoch_end(self, trial, model, epoch, logs=None):
        super().on_epoch_end(trial, model, epoch, logs=logs)
        curves = self._curves.setdefault(trial.trial_id, {})
        for key, value in (logs or {}).items():
            curves.setdefault(key, []).append(float(value))

    def on_trial_end(self, trial):
        super().on_trial_end(trial)  # the oracle records the trial and saves its state
        seconds = time.perf_counter() - self._started.pop(trial.trial_id, time.perf_counter())
        curves = self._curves.pop(trial.trial_id, {})
        ended = self.oracle.get_trial(trial.trial_id)
        record = {
            "trial_id": trial.trial_id,
            "seconds": round(seconds, 3),
            "epochs": len(curves.get("loss", [])),
            "history": curves,
            "tuner_id": getattr(self, "tuner_id", None),
        }
        self._log_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self._log_dir / f"{trial.trial_id}.json", json.dumps(record))
        number = int(trial.trial_id) + 1
        of = f"/{self._total}" if self._total else ""
        hps = _hp_text(ended.hyperparameters.values)
        if ended.status == "COMPLETED" and ended.score is not None:
            name = self.oracle.objective.name
            self._printer(f"[trial {number}{of}] {name}={ended.score:.4f} in {seconds:.1f}s "
                          f"({record['epochs']} epochs) | {hps}")
        else:
            self._printer(f"[trial {number}{of}] FAILED after {seconds:.1f}s: {_reason(ended.message)} | {hps}")


ALGORITHM_CLASSES = {
    "random": keras_tuner.RandomSearch,
    "hyperband": keras_tuner.Hyperband,
    "bayesian": keras_tuner.BayesianOptimization,
    "grid": keras_tuner.GridSearch,
}


def make_tuner(
    experiment: Experiment,
    hypermodel,
    *,
    runs_dir: pathlib.Path,
    printer: Callable[[str], None] = print,
):
    """A stock Keras Tuner tuner with dlimaging's progress lines and trial logs."""
    import tensorflow as tf

    settings = experiment.tuner
    objective = keras_tuner.Objective(experiment.objective, _direction(experiment.objective))
    base = ALGORITHM_CLASSES[settings["algorithm"]]
    cls = type(f"Dlimaging{base.__name__}", (_ProgressMixin, base), {})
    common = dict(
        objective=objective,
        seed=experiment.seed,
        directory=str(runs_dir),
        project_name=experiment.name,
        overwrite=False,  # run_search clears the run folder itself for --overwrite
        executions_per_trial=settings["executions_per_trial"],
        # A failed trial is recorded and the search goes on; never retried, never fatal.
        max_retries_per_trial=0,
        max_consecutive_failed_trials=10**9,
        log_dir=runs_dir / experiment.name / TRIAL_LOGS,
        printer=printer,
    )
    if settings["distribution"] == "mirrored":
        common["distribution_strategy"] = tf.distribute.MirroredStrategy()
    if settings["algorithm"] == "hyperband":
        return cls(hypermodel, max_epochs=settings["max_epochs"], factor=settings["hyperband_factor"],
                   hyperband_iterations=1, total=None, **common)
    return cls(hypermodel, max_trials=settings["max_trials"], total=settings["max_trials"], **common)


def parse_role(chief: str | None = None, worker: str | None = None, worker_id: str | None = None):
    """(role, host, port) for a chief or a worker, or (None, None, None) on one machine."""
    if chief and worker:
        raise ValueError("Use either `chief` or `worker`, not both.")
    address = chief or worker
    if not address:
        return None, None, None
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"The oracle address must be HOST:PORT. Received: {address!r}")
    if worker and not worker_id:
        raise ValueError("A worker needs a `worker_id`, e.g. tuner1.")
    if worker_id == "chief":
        raise ValueError("`worker_id` 'chief' is reserved for the chief.")
    return ("chief" if chief else worker_id), host, port


@contextlib.contextmanager
def distributed_role(role: str | None, host: str | None, port: str | None) -> Iterator[str | None]:
    """Sets Keras Tuner's KERASTUNER_* variables for a chief or a worker, then restores them."""
    keys = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
    saved = {key: os.environ.get(key) for key in keys}
    try:
        if role:
            os.environ.update({"KERASTUNER_TUNER_ID": role, "KERASTUNER_ORACLE_IP": host,
                               "KERASTUNER_ORACLE_PORT": port})
        yield role
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _atomic_save_json(path, obj):
    """Keras Tuner's `save_json`, written atomically: a killed run leaves no truncated state."""
    text = json.dumps(obj)
    write_atomically(path, text, sync=True)
    return text


@contextlib.contextmanager
def _atomic_tuner_state():
    from keras_tuner.src import utils as kt_utils

    saved = kt_utils.save_json
    kt_utils.save_json = _atomic_save_json
    try:
        yield
    finally:
        kt_utils.save_json = saved


@contextlib.contextmanager
def _quiet_trial_tracebacks():
    """Keras Tuner prints each failed trial's traceback; dlimaging prints one line per trial
    instead and keeps the traceback in the trial's record (runs/<name>/trial_*/trial.json)."""
    from keras_tuner.src import config as kt_config

    saved = kt_config.DEBUG
    kt_config.DEBUG = False
    try:
        yield
    finally:
        kt_config.DEBUG = saved


@dataclasses.dataclass
class SearchResult:
    run_dir: pathlib.Path
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    export_path: pathlib.Path | None
    objective: str


def _check_fingerprint(run_dir: pathlib.Path, experiment: Experiment) -> None:
    path = run_dir / FINGERPRINT
    if path.is_file() and path.read_text() != experiment.fingerprint():
        raise ExperimentError(
            f"{run_dir} holds a search started from a different experiment (its [data], [model], "
            "[search] or [tuner] changed). Pass --overwrite to start afresh, or change `name`."
        )


def collect_trials(run_dir: pathlib.Path) -> list[dict[str, Any]]:
    """The leaderboard's rows: every trial Keras Tuner recorded (`trial_*/trial.json`), with
    dlimaging's log of it. Reads files only, so it works on finished and interrupted runs alike."""
    rows = []
    for path in sorted(run_dir.glob("trial_*/trial.json"), key=lambda p: int(p.parent.name[len("trial_"):])):
        trial = json.loads(path.read_text())
        trial_id, status = trial["trial_id"], trial["status"]
        log_path = run_dir / TRIAL_LOGS / f"{trial_id}.json"
        log = json.loads(log_path.read_text()) if log_path.is_file() else {}
        score = trial.get("score") if status == "COMPLETED" else None
        score = float(score) if score is not None and math.isfinite(score) else None
        rows.append({
            "trial": int(trial_id) + 1,
            "trial_id": trial_id,
            "status": status,
            "score": score,
            "best_epoch": trial["best_step"] + 1 if score is not None and trial.get("best_step") is not None else None,
            "epochs": log.get("epochs"),
            "seconds": log.get("seconds"),
            "reason": _reason(trial.get("message")) if status != "COMPLETED" else None,
            "hyperparameters": dict(trial["hyperparameters"]["values"]),
        })
    return rows


def _write_results(run_dir: pathlib.Path, experiment: Experiment, trials, best, objective) -> None:
    payload = {
        "name": experiment.name,
        "objective": objective,
        "direction": _direction(objective),
        "summary": {
            "trials": len(trials),
            "completed": sum(t["status"] == "COMPLETED" for t in trials),
            "failed": sum(t["status"] == "FAILED" for t in trials),
            "unfinished": sum(t["status"] not in ("COMPLETED", "FAILED") for t in trials),
        },
        "best": best,
        "trials": trials,
        "experiment": experiment.to_dict(),
    }
    write_atomically(run_dir / RESULTS_JSON, json.dumps(payload, indent=2, default=str))
    hp_names = sorted({k for t in trials for k in t["hyperparameters"]})
    columns = ["trial", "status", "score", "best_epoch", "epochs", "seconds", "reason"]
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(columns + hp_names)
    for t in trials:
        writer.writerow([t[c] for c in columns] + [t["hyperparameters"].get(k) for k in hp_names])
    write_atomically(run_dir / RESULTS_CSV, table.getvalue())


def draw_plots(run_dir: pathlib.Path, trials, objective: str, top: int = 3) -> list[pathlib.Path]:
    """The objective per trial, each hyperparameter against it, and the best trials' curves."""
    from dlimaging.plots import plot_hyperparameters, plot_learning_curves, plot_objective_per_trial

    plots = run_dir / PLOTS
    paths = [
        plot_objective_per_trial(trials, objective, plots / "objective_per_trial.png"),
        plot_hyperparameters(trials, objective, plots / "hyperparameters.png"),
    ]
    ranked = rank_trials(trials, objective)[:top]
    curves = {}
    for trial in ranked:
        log_path = run_dir / TRIAL_LOGS / f"{trial['trial_id']}.json"
        if log_path.is_file():
            curves[f"trial {trial['trial']}"] = json.loads(log_path.read_text()).get("history", {})
    metric = objective[4:] if objective.startswith("val_") else objective
    paths.append(plot_learning_curves(curves, plots / "learning_curves.png", metric=metric))
    return paths


def rank_trials(trials, objective: str):
    done = [t for t in trials if t["score"] is not None]
    return sorted(done, key=lambda t: t["score"], reverse=_direction(objective) == "max")


def format_leaderboard(trials, objective: str, top: int = 10) -> str:
    """A short table a person can read: the best trials first, then the failures counted."""
    ranked = rank_trials(trials, objective)[:top]
    lines = [f"{'rank':>4}  {'trial':>5}  {objective:>12}  {'epochs':>6}  {'time':>7}  hyperparameters"]
    for rank, t in enumerate(ranked, start=1):
        seconds = f"{t['seconds']:.1f}s" if t.get("seconds") is not None else "-"
        lines.append(f"{rank:>4}  {t['trial']:>5}  {t['score']:>12.4f}  {str(t.get('epochs') or '-'):>6}  "
                     f"{seconds:>7}  {_hp_text(t['hyperparameters'], limit=6)}")
    failed = [t for t in trials if t["status"] == "FAILED"]
    done = sum(t["status"] == "COMPLETED" for t in trials)
    lines.append(f"{len(trials)} trials: {done} completed, {len(failed)} failed"
                 + (f", {len(trials) - done - len(failed)} unfinished." if len(trials) - done - len(failed) else "."))
    for t in failed[:5]:
        lines.append(f"  trial {t['trial']} failed: {t['reason']}")
    return "\n".join(lines)


def run_search(
    experiment: Experiment,
    *,
    runs_dir: str | os.PathLike = "runs",
    export_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    max_trials: int | None = None,
    max_epochs: int | None = None,
    chief: str | None = None,
    worker: str | None = None,
    worker_id: str | None = None,
    printer: Callable[[str], None] = print,
    export: bool | None = None,
) -> SearchResult:
    """Runs (or resumes) an experiment's search, writes its results and exports the best model.

    Args:
        experiment: an `Experiment` from `load_experiment`.
        runs_dir: folder of the runs; this one goes to `runs_dir/<name>/`.
            Defaults to "runs".
        export_dir: where the best model is exported. Defaults to the
            experiment's `[export] dir`.
        overwrite: bool. Start afresh instead of resuming. Defaults to False.
        max_trials, max_epochs: int or None. Override the experiment's budgets.
        chief, worker, worker_id: distributed search: the oracle's HOST:PORT
            for the chief, or for a worker with its id (e.g. "tuner1").
        printer: where progress lines go. Defaults to `print`.
        export: bool or None. Export the best model. Defaults to the
            experiment's `[export] enabled`.

    Returns:
        A `SearchResult` with the trials, the best one and the export path.

    Raises:
        TuningError: when no trial succeeded; it says why.
    """
    from dlimaging.data import load_dataset

    role, host, port = parse_role(chief, worker, worker_id)
    tuner_settings = dict(experiment.tuner)
    if max_trials is not None:
        tuner_settings["max_trials"] = int(max_trials)
    if max_epochs is not None:
        tuner_settings["max_epochs"] = int(max_epochs)
    for key in ("max_trials", "max_epochs"):
        if tuner_settings[key] < 1:
            raise ValueError(f"`{key}` must be a positive integer. Received: {key}={tuner_settings[key]}")
    experiment = dataclasses.replace(experiment, tuner=tuner_settings)
    runs_dir = pathlib.Path(runs_dir)
    run_dir = runs_dir / experiment.name
    export_dir = pathlib.Path(export_dir or experiment.export["dir"])
    export = experiment.export["enabled"] if export is None else export

    data_settings = experiment.data
    data = load_dataset(
        data_settings["source"], validation_split=data_settings["validation_split"],
        test_split=data_settings["test_split"], batch_size=data_settings["batch_size"],
        seed=experiment.seed, image_size=tuple(data_settings["image_size"]) if data_settings["image_size"] else None,
    )
    check_against_data(experiment, data.input_shape)
    hypermodel = hypermodel_for(experiment.model["family"], data.input_shape, data.num_classes,
                                task=experiment.model["task"], space=experiment.search)
    try:  # the space's default values must build a model, or no trial can be trusted
        hypermodel.build(keras_tuner.HyperParameters())
    except ValueError as error:
        raise ExperimentError(
            f"{experiment.path or experiment.name}: [search] its default values do not build a model: {error}"
        ) from None
    finally:
        keras.backend.clear_session()
    if not overwrite:
        _check_fingerprint(run_dir, experiment)

    with distributed_role(role, host, port), _atomic_tuner_state():
        if overwrite and role in (None, "chief") and run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        if role in (None, "chief"):
            (run_dir / FINGERPRINT).write_text(experiment.fingerprint())

        keras.utils.set_random_seed(experiment.seed)
        try:
            tuner = make_tuner(experiment, hypermodel, runs_dir=runs_dir, printer=printer)
        except json.JSONDecodeError as error:
            raise ExperimentError(
                f"{run_dir}: a saved search state is unreadable ({error}); pass --overwrite to start afresh."
            ) from None
        objective = experiment.objective
        callbacks = [
            keras.callbacks.EarlyStopping(monitor=objective, mode=_direction(objective),
                                          patience=experiment.tuner["early_stopping_patience"]),
            FailOnNaN(),
            keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), write_graph=False, profile_batch=0),
        ]
        already = len(tuner.oracle.trials) if role is None else 0
        if already:
            printer(f"Resuming {run_dir}: {already} trial(s) on record; completed trials are not redone.")
        with _quiet_trial_tracebacks():
            tuner.search(data.train, validation_data=data.validation, epochs=experiment.tuner["max_epochs"],
                         callbacks=callbacks, verbose=0, shuffle=False)
        if role not in (None, "chief"):
            printer(f"Worker {role} finished.")
            return SearchResult(run_dir, [], None, None, objective)

    # On the chief too: its oracle recorded every trial the workers ran.
    trials = collect_trials(run_dir)
    ranked = rank_trials(trials, objective)
    previous = _read_results(run_dir)
    if not ranked:
        _write_results(run_dir, experiment, trials, None, objective)
        reasons = sorted({t["reason"] for t in trials if t["reason"]})
        why = reasons[0] if reasons else "no trial ran"
        raise TuningError(f"No trial succeeded out of {len(trials)}; first reason: {why}. See {run_dir / RESULTS_JSON}.")

    best_row = ranked[0]
    best_trial = tuner.oracle.trials[best_row["trial_id"]]
    with warnings.catch_warnings():  # the checkpoint's optimizer state is not needed
        warnings.simplefilter("ignore", UserWarning)
        model = tuner.load_model(best_trial)  # the best trial's weights at its best epoch
    test_metrics = {}
    if data.test is not None:
        test_metrics = {f"test_{k}": float(v) for k, v in model.evaluate(data.test, return_dict=True, verbose=0).items()}
    best = {
        "trial": best_row["trial"],
        "trial_id": best_row["trial_id"],
        "score": best_row["score"],
        "best_epoch": best_row["best_epoch"],
        "hyperparameters": best_row["hyperparameters"],
        "test_metrics": test_metrics,
        "export_path": None,
    }
    exported_before = ((previous or {}).get("best") or {})
    export_path = None
    if exported_before.get("trial_id") == best["trial_id"] and exported_before.get("export_path") \
            and pathlib.Path(exported_before["export_path"]).is_dir():
        export_path = pathlib.Path(exported_before["export_path"])  # already exported: no new version
    elif export:
        from dlimaging.export import export_saved_model

        export_path = export_saved_model(
            model, export_dir / experiment.name, class_names=data.class_names, value_range=data.value_range,
            metadata={"hyperparameters": best["hyperparameters"],
                      "metrics": {objective: best["score"], **test_metrics},
                      "experiment": experiment.name, "trial_id": best["trial_id"],
                      "best_epoch": best["best_epoch"], "source": data_settings["source"]},
        )
    best["export_path"] = str(export_path) if export_path else None
    _write_results(run_dir, experiment, trials, best, objective)
    draw_plots(run_dir, trials, objective)
    return SearchResult(run_dir, trials, best, export_path, objective)


def _read_results(run_dir: pathlib.Path) -> dict[str, Any] | None:
    path = run_dir / RESULTS_JSON
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
    return None


def report(run_dir: str | os.PathLike) -> tuple[str, list[pathlib.Path]]:
    """The leaderboard of a finished or interrupted run, and its plots drawn again.

    The trials are read afresh from the run folder, so a search stopped half-way
    (before it wrote `results.json`) reports the trials it finished.
    """
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / FINGERPRINT).is_file():
        raise ValueError(f"{run_dir}: not a `dlimaging tune` run folder (no {FINGERPRINT}).")
    started = json.loads((run_dir / FINGERPRINT).read_text())
    name, objective = started["name"], started["tuner"]["objective"]
    trials = collect_trials(run_dir)
    paths = draw_plots(run_dir, trials, objective)
    text = [f"{name}: {objective} ({_direction(objective)}imize)", format_leaderboard(trials, objective)]
    best = (_read_results(run_dir) or {}).get("best")
    if best:
        text.append(f"Best: trial {best['trial']} at epoch {best['best_epoch']}, "
                    + ", ".join(f"{k}={v:.4f}" for k, v in best["test_metrics"].items()))
        if best.get("export_path"):
            text.append(f"Exported: {best['export_path']}")
    return "\n".join(text), paths
