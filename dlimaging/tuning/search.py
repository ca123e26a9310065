"""`run_search`: an experiment's search as a short sequence of named steps.

prepare (data, hypermodel, run folder) → search (Keras Tuner, resumable) →
load the chosen trial (the best, or the smallest within a tolerance of it; its
weights at its best epoch) → evaluate (on the test split) → publish (export,
results files, plots). The tuner and its hooks live in
`dlimaging.tuning.tuner`; trial records, results and the report in `dlimaging.tuning.results`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import pathlib
import shutil
import warnings
from typing import Any, Callable, Mapping

import keras
import keras_tuner

from dlimaging import registry
from dlimaging.data.dataset import load_dataset
from dlimaging.errors import InputError
from dlimaging.files import LOCK, check_output_dir, folder_lock
from dlimaging.models.ensemble import ensemble_model
from dlimaging.plots.evaluation import draw_model_plots
from dlimaging.serving.export import export_saved_model
from dlimaging.training import (
    data_arguments,
    data_options,
    evaluate_test_split,
    metadata_of,
    write_splits,
)
from dlimaging.tuning.experiment import Experiment, ExperimentError
from dlimaging.tuning.progress import ProgressDisplay, measure_latency
from dlimaging.tuning.pruning import check_pruning
from dlimaging.tuning.results import (  # noqa: F401  the API before the split
    FINGERPRINT,
    PLOTS,
    RESULTS_JSON,
    BestTrial,
    TrialRecord,
    choose_export,
    collect_trials,
    draw_plots,
    ensemble_members,
    format_leaderboard,
    rank_trials,
    read_best,
    report,
    write_results,
)
from dlimaging.tuning.tuner import (
    FailOnNaN,
    StopOnInterrupt,
    deferred_interrupts,
    distributed_role,
    make_tuner,
    parse_role,
    tuner_patches,
    wait_for_chief,
)
from dlimaging.validation import (
    check_export_choice,
    parse_export_choice,
    resolve_activation,
)


class TuningError(RuntimeError):
    """The search produced no usable trial."""


@dataclasses.dataclass
class SearchResult:
    run_dir: pathlib.Path
    trials: list[TrialRecord]
    best: BestTrial | None
    export_path: pathlib.Path | None
    objective: str
    direction: str = "max"


@dataclasses.dataclass
class _Prepared:
    experiment: Experiment
    data: Any
    hypermodel: Any
    run_dir: pathlib.Path


def _is_run_folder(run_dir: pathlib.Path) -> bool:
    """Whether `run_dir` was made by `dlimaging tune`: it holds the experiment's fingerprint."""
    try:
        state = json.loads((run_dir / FINGERPRINT).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(state, dict) and {"name", "model", "tuner"} <= set(state)


def _check_locations(run_dir: pathlib.Path, export_dir: pathlib.Path | None, overwrite: bool) -> None:
    """Refuses, before any work, a run folder or export folder that cannot be written, and a
    folder of the user's own where the run folder would go: dlimaging never mixes a run into
    it, nor deletes it."""
    check_output_dir(run_dir, "run folder")
    if export_dir is not None:
        check_output_dir(export_dir, "export folder")
    if not run_dir.is_dir() or _is_run_folder(run_dir):
        return
    if any(child.name != LOCK for child in run_dir.iterdir()):
        removing = "--overwrite removes only folders that `dlimaging tune` made; " if overwrite else ""
        raise InputError(
            f"{run_dir} is not empty and is not a dlimaging run folder (no {FINGERPRINT}); {removing}"
            "nothing was changed. Pass another --runs-dir or change the experiment's `name`."
        )


def _clear_run_dir(run_dir: pathlib.Path) -> None:
    """Empties a run folder that `_check_locations` found to be dlimaging's, keeping the lock."""
    for child in run_dir.iterdir():
        if child.name == LOCK:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def check_with_keras(experiment: Experiment) -> None:
    """What only Keras can check, before the data loads: each `activation` that [search] names is one
    of Keras's (the schema, which imports no TensorFlow, leaves it: `experiment.CHECKED_APART`)."""
    spec = (experiment.search or {}).get("activation")
    values = [] if spec is None else spec.get("choice", []) if isinstance(spec, Mapping) else [spec]
    for value in values:
        try:
            resolve_activation(value)
        except InputError as error:
            what = "a choice: " if isinstance(spec, Mapping) else ""
            raise ExperimentError(f"{experiment.where}: [search] activation: {what}{error}") from None


def check_against_data(experiment: Experiment, input_shape) -> None:
    """Checks what needs the dataset: the objective, the losses searched and the augmentation
    options fit the input rank (SSIM, say, is defined on images, not on signals)."""
    task = registry.task(experiment.model.task)
    metric = experiment.objective.removeprefix("val_")
    if not task.applies(metric, len(input_shape)):
        raise ExperimentError(
            f"{experiment.where}: [tuner] objective: {experiment.objective} is not measured on inputs of shape "
            f"{tuple(input_shape)}; use {task.objective}. Received: objective = \"{experiment.objective}\"")
    losses = (experiment.search or {}).get("loss")
    for loss in (losses.get("choice", []) if isinstance(losses, Mapping) else [losses] if losses else []):
        if not task.applies(loss, len(input_shape)):
            raise ExperimentError(
                f"{experiment.where}: [search] loss: {loss!r} is not defined on inputs of shape {tuple(input_shape)}; "
                f"use one of {', '.join(k for k in task.losses if task.applies(k, len(input_shape)))}.")
    options = (experiment.search or {}).get("augmentation")
    if not options:
        return
    allowed = registry.augmentation_keys(input_shape)
    for option in options:
        if option not in allowed:
            raise ExperimentError(
                f"{experiment.where}: [search.augmentation] {option}: not an option for "
                f"inputs of shape {tuple(input_shape)}; allowed: {', '.join(allowed) or 'none'}."
            )


def _prepare(experiment: Experiment, runs_dir: pathlib.Path, overwrite: bool) -> _Prepared:
    """Loads the data and checks that the space builds, before anything is written."""
    check_with_keras(experiment)
    settings = experiment.data
    target = list(settings.target) if isinstance(settings.target, tuple) else settings.target
    features = list(settings.features) if isinstance(settings.features, tuple) else settings.features
    try:
        data = load_dataset(
            settings.source, validation_split=settings.validation_split, test_split=settings.test_split,
            batch_size=settings.batch_size, seed=experiment.seed, image_size=settings.image_size,
            augmentation=settings.augmentation, cache=settings.cache, normalize=settings.normalize,
            **data_options(task=experiment.model.task, target=target, features=features, test=settings.test,
                           corruption=settings.corruption, patch_size=settings.patch_size,
                           patches_per_epoch=settings.patches_per_epoch, n2v_fraction=settings.n2v_fraction),
        )
    except ExperimentError:
        raise
    except InputError as error:  # the data refuses the file's settings: name the file too
        raise ExperimentError(f"{experiment.where}: {error}") from None
    check_against_data(experiment, data.input_shape)
    if experiment.model.task != data.task:
        raise ExperimentError(
            f"{experiment.where}: [model] task: the source {settings.source!r} delivers labels for "
            f"task {data.task!r}, not {experiment.model.task!r}. Received: [model] task = \"{experiment.model.task}\""
        )
    numeric = registry.task(data.task).units == "num_outputs"
    fixed = {"standardize": settings.standardize} if settings.standardize is not None else {}
    fixed.update(data_arguments(experiment.model.family, data))  # a restoration's max_val
    hypermodel = registry.family(experiment.model.family).load_hypermodel()(
        data.input_shape, None if numeric else data.num_classes, task=data.task,
        num_outputs=data.num_outputs if numeric else 1, space=experiment.search, fixed=fixed or None)
    # Learning-rate schedules are built with the model, so the hypermodel is told how long fit runs.
    hypermodel.training_length(steps_per_epoch=math.ceil(data.num_train / settings.batch_size),
                               epochs=experiment.tuner.max_epochs, samples=data.num_train)
    try:  # the space's default values must build a model, or no trial can be trusted
        hypermodel.build(keras_tuner.HyperParameters())
    except ValueError as error:
        raise ExperimentError(f"{experiment.where}: [search] its default values do not build a model: {error}") from None
    finally:
        keras.backend.clear_session()
    run_dir = runs_dir / experiment.name
    fingerprint = run_dir / FINGERPRINT
    if not overwrite and fingerprint.is_file() and fingerprint.read_text() != experiment.fingerprint():
        raise ExperimentError(
            f"{run_dir} holds a search started from a different experiment (its [data], [model], "
            "[search] or [tuner] changed). Pass --overwrite to start afresh, or change `name`."
        )
    return _Prepared(experiment, data, hypermodel, run_dir)


def _search(prepared: _Prepared, runs_dir: pathlib.Path, role: str | None, printer, display: ProgressDisplay):
    """Runs (or resumes) the Keras Tuner search; returns the tuner."""
    experiment, run_dir = prepared.experiment, prepared.run_dir
    keras.utils.set_random_seed(experiment.seed)
    try:
        tuner = make_tuner(experiment, prepared.hypermodel, runs_dir=runs_dir, printer=printer, display=display)
    except json.JSONDecodeError as error:
        raise ExperimentError(
            f"{run_dir}: a saved search state is unreadable ({error}); pass --overwrite to start afresh."
        ) from None
    callbacks = [
        keras.callbacks.EarlyStopping(monitor=experiment.objective, mode=experiment.direction,
                                      patience=experiment.tuner.early_stopping_patience),
        FailOnNaN(),
        StopOnInterrupt(),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), write_graph=False, profile_batch=0),
    ]
    already = len(tuner.oracle.trials) if role is None else 0
    if already:
        printer(f"Resuming {run_dir}: {already} trial(s) on record; completed trials are not redone.")
    data = prepared.data
    tuner.search(data.train, validation_data=data.validation, epochs=experiment.tuner.max_epochs,
                 callbacks=callbacks, verbose=0, shuffle=False)
    return tuner


def _load_chosen(tuner, run_dir: pathlib.Path, experiment: Experiment, trials: list[TrialRecord], choice: str):
    """The chosen trial's record (`choose_export`), why it was chosen, and its model at its best epoch."""
    ranked = rank_trials(trials, experiment.direction)
    if not ranked:
        write_results(run_dir, experiment, trials, None)
        reasons = sorted({t.reason for t in trials if t.reason})
        why = reasons[0] if reasons else "no trial ran"
        raise TuningError(f"No trial succeeded out of {len(trials)}; first reason: {why}. See {run_dir / RESULTS_JSON}.")
    record, why = choose_export(trials, experiment.direction, choice)
    kind, size = parse_export_choice(choice)
    members = ensemble_members(trials, experiment.direction, size) if kind == "ensemble" else [record]
    with warnings.catch_warnings():  # the checkpoint's optimizer state is not needed
        warnings.simplefilter("ignore", UserWarning)
        models = [tuner.load_model(tuner.oracle.trials[member.trial_id]) for member in members]
    if len(models) == 1:
        return record, why, models[0], None
    return record, why, ensemble_model(models, name=f"ensemble_of_{len(models)}"), [m.trial for m in members]


def _evaluate(model, data, record: TrialRecord, choice: str = "best", why: str | None = None,
              members: list[int] | None = None) -> BestTrial:
    metrics = evaluate_test_split(model, data)
    params, latency = record.params, record.latency_ms
    if members:  # the ensemble's own size and latency, not its best member's
        params, latency = int(model.count_params()), measure_latency(model)
        latency = round(latency, 4) if latency is not None else None
    return BestTrial(trial=record.trial, trial_id=record.trial_id, score=record.score, best_epoch=record.best_epoch,
                     hyperparameters=record.hyperparameters, test_metrics=metrics, params=params,
                     latency_ms=latency, choice=choice, why=why, members=members)


def _publish(prepared: _Prepared, model, best: BestTrial, export_dir: pathlib.Path, export: bool):
    """Exports the best model, unless this very trial was exported by an earlier run."""
    experiment, data = prepared.experiment, prepared.data
    before = read_best(prepared.run_dir)
    if (before and before.trial_id == best.trial_id and before.members == best.members
            and before.export_path and pathlib.Path(before.export_path).is_dir()):
        return pathlib.Path(before.export_path)  # already exported: no new version
    if not export:
        return None

    names = metadata_of(data)
    return export_saved_model(
        model, export_dir / experiment.name, class_names=names["class_names"], value_range=data.value_range,
        task=experiment.model.task, target_names=names["target_names"], axis=names["axis"],
        features=names["features"], self_ensemble=experiment.export.self_ensemble,
        metadata={"hyperparameters": best.hyperparameters,
                  "metrics": {experiment.objective: best.score, **best.test_metrics},
                  "experiment": experiment.name, "trial_id": best.trial_id,
                  "best_epoch": best.best_epoch, "source": experiment.data.source, "normalize": names["normalize"],
                  "params": best.params, "latency_ms": best.latency_ms,
                  "choice": {"rule": best.choice, "trial": best.trial, "trial_id": best.trial_id,
                             "objective": {experiment.objective: best.score}, "params": best.params,
                             "members": best.members, "why": best.why}},
    )


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
    wait_for_chief_seconds: float = 60.0,
    verbose: bool = False,
    live=None,
    export_choice: str | None = None,
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
        wait_for_chief_seconds: float. How long a worker waits for the
            chief's oracle to answer before giving up. Defaults to 60.
        verbose: bool. Print one plain line per epoch through `printer` (for log
            files and CI). Defaults to False.
        live: bool, a `rich.console.Console`, or None. Show a live line inside each
            trial (trial k/N, epoch e/E, loss, the objective so far, time left),
            replaced by the trial's summary line when it ends. None shows it when
            standard output is a terminal. Defaults to None.
        export_choice: str or None. Which trial is exported: "best", or
            "smallest-within=T" (the fewest parameters among the trials whose
            objective is within T of the best). Defaults to the experiment's
            `[export] choice` ("best").

    A run folder is locked (`.lock`: PID, host, start time) while a search runs
    in it; a second search on it is refused. `overwrite` empties only a run
    folder that `run_search` made (it holds `experiment.json`).

    Returns:
        A `SearchResult` with the trials, the best one and the export path.

    Raises:
        TuningError: when no trial succeeded; it says why.
        InputError: before any work, for a run or export folder that cannot be
            used, a run folder in use by another search, or a bad `export_choice`.
        KeyboardInterrupt: on Ctrl-C, at the next batch, epoch or trial
            boundary; completed trials are kept and a rerun resumes.
    """
    role, host, port = parse_role(chief, worker, worker_id)
    experiment = experiment.with_budgets(max_trials, max_epochs)
    check_pruning(experiment.where + (f" with --max-epochs {max_epochs}" if max_epochs else ""), experiment.tuner,
                  ExperimentError)
    choice = check_export_choice("export_choice", experiment.export.choice if export_choice is None else export_choice)
    display = ProgressDisplay(printer, live=live, verbose=verbose)
    runs_dir = pathlib.Path(runs_dir)
    export_dir = pathlib.Path(export_dir or experiment.export.dir)
    export = experiment.export.enabled if export is None else export
    run_dir = runs_dir / experiment.name
    leads = role in (None, "chief")  # a worker goes through the chief: no lock, no run folder of its own

    _check_locations(run_dir, export_dir / experiment.name if export and leads else None, overwrite and leads)
    if not leads:
        wait_for_chief(host, port, wait_for_chief_seconds, printer)
    lock = folder_lock(run_dir, printer=printer, command="dlimaging tune") if leads else contextlib.nullcontext()
    with lock:
        prepared = _prepare(experiment, runs_dir, overwrite)
        # The chief only serves the oracle (and sleeps): Ctrl-C stops it as usual.
        interrupts = deferred_interrupts() if role != "chief" else contextlib.nullcontext()
        with distributed_role(role, host, port), tuner_patches(), interrupts:
            if leads:
                if overwrite and run_dir.is_dir():
                    _clear_run_dir(run_dir)
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / FINGERPRINT).write_text(experiment.fingerprint())
            tuner = _search(prepared, runs_dir, role, printer, display)
        if not leads:
            printer(f"Worker {role} finished.")
            return SearchResult(run_dir, [], None, None, experiment.objective, experiment.direction)

        trials = collect_trials(run_dir)  # on the chief too: its oracle recorded the workers' trials
        record, why, model, members = _load_chosen(tuner, run_dir, experiment, trials, choice)
        best = _evaluate(model, prepared.data, record, choice, why, members)
        export_path = _publish(prepared, model, best, export_dir, export)
        best.export_path = str(export_path) if export_path else None
        write_results(run_dir, experiment, trials, best)
        write_splits(run_dir / "splits.json", prepared.data, experiment.data.source, experiment.seed)
        draw_plots(run_dir, trials, experiment.objective, experiment.direction)
        title = (f"best trial {best.trial}" if choice == "best" else f"trial {best.trial} ({choice})" if not members
                 else f"mean of trials {', '.join(map(str, members))}")
        draw_model_plots(model, prepared.data, run_dir / PLOTS, title=title)
    return SearchResult(run_dir, trials, best, export_path, experiment.objective, experiment.direction)
