"""Keras Tuner's tuners with dlimaging's hooks: progress lines, trial logs, a NaN guard, atomic state.

Inside a trial, `TrialProgress` shows a live line on a terminal (rich's `Live`) or,
when asked, plain per-epoch lines; `MeasureModel` records the trained model's
parameter count and batch-1 latency into the trial log.

The Keras Tuner internals that dlimaging patches are named in one table,
`KERAS_TUNER_INTERNALS`, and reached only through `patched`; the one TensorFlow
internal a search cleans (`released_custom_gradients`) is in `TENSORFLOW_INTERNALS`.
`check_keras_tuner_internals` (run by the tests and before every search) fails
loudly when a release moves or renames one.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import math
import os
import pathlib
import signal
import socket
import statistics
import threading
import time
from typing import Any, Callable, Iterator

import keras
import keras_tuner

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.files import write_atomically
from dlimaging.tuning.experiment import Experiment
from dlimaging.tuning.progress import MeasureModel, ProgressDisplay, TrialProgress
from dlimaging.tuning.pruning import REPORT, pruning_oracle
from dlimaging.tuning.results import TRIAL_LOGS, failure_reason, hp_text
from dlimaging.validation import is_ascii_digits

# What dlimaging patches inside Keras Tuner: name → (module, attribute).
KERAS_TUNER_INTERNALS = {
    # Every state file (oracle.json, trial.json, ...) goes through this function.
    "save_json": ("keras_tuner.src.utils", "save_json"),
    # When True, Keras Tuner prints each failed trial's traceback.
    "debug": ("keras_tuner.src.config", "DEBUG"),
}
# TensorFlow's, reached only through `released_custom_gradients`.
TENSORFLOW_INTERNALS = {
    # The registry of gradient functions (a `Registry`, its table in `_registry`): every traced
    # `tf.custom_gradient` adds one under a new name, and nothing removes it.
    "gradient_registry": ("tensorflow.python.framework.ops", "_gradient_registry"),
}


class KerasTunerChanged(RuntimeError):
    """A Keras Tuner internal that dlimaging patches has moved: dlimaging needs updating."""


def check_keras_tuner_internals() -> None:
    import tensorflow as tf

    tables = (("keras-tuner", keras_tuner.__version__, "KERAS_TUNER_INTERNALS", KERAS_TUNER_INTERNALS),
              ("tensorflow", tf.__version__, "TENSORFLOW_INTERNALS", TENSORFLOW_INTERNALS))
    for package, version, table_name, table in tables:
        for name, (module, attribute) in table.items():
            try:
                found = hasattr(importlib.import_module(module), attribute)
            except ImportError:
                found = False
            if found and table is TENSORFLOW_INTERNALS:
                found = isinstance(getattr(getattr(importlib.import_module(module), attribute), "_registry", None),
                                   dict)
            if not found:
                raise KerasTunerChanged(
                    f"{package} {version} has no {module}.{attribute} ({name}); "
                    f"dlimaging.tuning.tuner.{table_name} needs updating for this release."
                )


@contextlib.contextmanager
def released_custom_gradients() -> Iterator[None]:
    """Drops, when the block ends, the gradient functions TensorFlow registered inside it.

    Every traced `tf.custom_gradient` registers its gradient function under a new name in a
    global registry that nothing empties, and that function holds the graph it was traced in.
    Keras's train step calls one through the default strategy's `all_reduce` (the sum of the
    gradients over replicas, even on one device), so every trained model's train graph, about
    1,000 operations, stayed alive for the rest of the process: +116 MB over 25 trials of
    `benchmarks/tuning_overhead.py`, for dlimaging and plain Keras Tuner alike (keras-tuner
    #873). A gradient function is only used while its graph is traced, and a trial's graphs are
    not traced again once it ends (a new trace registers new functions), so a trial's entries
    can go with it. This holds as long as nothing traced inside a trial is saved or
    differentiated after it: the model exported at the end is the best trial's, rebuilt and
    traced anew by `tuner.load_model`.
    """
    module, attribute = TENSORFLOW_INTERNALS["gradient_registry"]
    table = getattr(importlib.import_module(module), attribute)._registry
    before = set(table)
    try:
        yield
    finally:
        for name in [name for name in list(table) if name not in before and name.startswith("CustomGradient-")]:
            del table[name]


@contextlib.contextmanager
def patched(name: str, value: Any) -> Iterator[None]:
    """Replaces one of `KERAS_TUNER_INTERNALS` for the duration of the block."""
    module_name, attribute = KERAS_TUNER_INTERNALS[name]
    module = importlib.import_module(module_name)
    saved = getattr(module, attribute)
    setattr(module, attribute, value)
    try:
        yield
    finally:
        setattr(module, attribute, saved)


def _atomic_save_json(path, obj):
    """Keras Tuner's `save_json`, written atomically: a killed run leaves no truncated state."""
    text = json.dumps(obj)
    write_atomically(path, text, sync=True)
    return text


@contextlib.contextmanager
def tuner_patches() -> Iterator[None]:
    """Atomic state files, no traceback printed per failed trial (dlimaging prints one line per
    trial and Keras Tuner keeps the traceback in the trial's record, trial_*/trial.json), and a
    garbage collector that skips what was alive before the search (`frozen_old_objects`)."""
    check_keras_tuner_internals()
    with patched("save_json", _atomic_save_json), patched("debug", False), frozen_old_objects():
        yield


@contextlib.contextmanager
def frozen_old_objects() -> Iterator[None]:
    """Hides the objects alive on entry from the garbage collector until the block ends.

    Keras Tuner starts every trial with `clear_session()` and `gc.collect()`: two full
    collections, each walking every object alive, TensorFlow's and Keras's own included. In a
    notebook or a long session that is seconds per trial. `gc.freeze()` moves the objects alive
    now out of the collector's sight; what the trials create is collected as before, and
    `gc.unfreeze()` hands the old objects back at the end. If the caller has frozen objects
    already, the block leaves the collector alone.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class FailOnNaN(keras.callbacks.Callback):
    """Marks a trial failed (not retried) as soon as its loss is NaN or infinite."""

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise keras_tuner.errors.FailedTrialError(f"loss became {float(loss)} at epoch {epoch + 1}")


_interrupt = {"pending": False}


def check_interrupt() -> None:
    """Raises KeyboardInterrupt if Ctrl-C was pressed since `deferred_interrupts` began."""
    if _interrupt["pending"]:
        raise KeyboardInterrupt


def _record_interrupt(signum, frame):
    if _interrupt["pending"]:
        raise KeyboardInterrupt
    _interrupt["pending"] = True


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Ctrl-C during the block is raised at the next `check_interrupt`, and at the latest on leaving it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only
        return
    saved = signal.signal(signal.SIGINT, _record_interrupt)
    _interrupt["pending"] = False
    try:
        yield
        check_interrupt()
    finally:
        signal.signal(signal.SIGINT, saved)
        _interrupt["pending"] = False


class StopOnInterrupt(keras.callbacks.Callback):
    """Stops training at the end of the batch or epoch in which Ctrl-C was pressed."""

    def on_train_batch_end(self, batch, logs=None):
        check_interrupt()

    def on_test_batch_end(self, batch, logs=None):
        check_interrupt()

    def on_epoch_end(self, epoch, logs=None):
        check_interrupt()


class _ProgressMixin:
    """One line per trial, progress inside it, and a log per trial (time, epochs, curves,
    parameters, latency) on disk."""

    def __init__(self, *args, log_dir: pathlib.Path, total: int | None, printer: Callable[[str], None],
                 display: ProgressDisplay | None = None, pruning: bool = False, **kwargs):
        self._log_dir = pathlib.Path(log_dir)
        self._pruning = pruning
        self._pruned: dict[str, int] = {}
        self._total = total
        self._printer = printer
        self._display = display or ProgressDisplay(printer, live=False)
        self._started: dict[str, float] = {}
        self._curves: dict[str, dict[str, list[float]]] = {}
        self._measures: dict[str, dict[str, Any]] = {}
        self._trial_seconds: list[float] = []
        super().__init__(*args, **kwargs)

    def _label(self, trial) -> str:
        return f"trial {int(trial.trial_id) + 1}" + (f"/{self._total}" if self._total else "")

    def _search_left(self, trial):
        """Seconds left in the search: this trial's, plus the mean trial time for each trial after it."""
        def left(trial_left: float) -> float | None:
            if not self._total or not self._trial_seconds:
                return None
            after = max(0, self._total - (int(trial.trial_id) + 1))
            return trial_left + after * statistics.fmean(self._trial_seconds) if after else None
        return left

    def search(self, *args, **kwargs):
        try:
            return super().search(*args, **kwargs)
        finally:
            self._display.close()  # Ctrl-C or an error mid-epoch leaves no live line behind

    def run_trial(self, trial, *args, **kwargs):
        objective = self.oracle.objective
        self._measures[trial.trial_id] = {}
        watch = [
            TrialProgress(self._display, label=self._label(trial), objective=objective.name,
                          direction=objective.direction, search_left=self._search_left(trial)),
            MeasureModel(self._measures[trial.trial_id]),
        ]
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), *watch]
        with released_custom_gradients():  # each trial's train graph is freed with its model
            return super().run_trial(trial, *args, **kwargs)

    def pre_create_trial(self):
        check_interrupt()
        super().pre_create_trial()

    def on_trial_begin(self, trial):
        check_interrupt()
        super().on_trial_begin(trial)
        self._started[trial.trial_id] = time.perf_counter()
        self._curves[trial.trial_id] = {}

    def on_epoch_end(self, trial, model, epoch, logs=None):
        super().on_epoch_end(trial, model, epoch, logs=logs)
        curves = self._curves.setdefault(trial.trial_id, {})
        for key, value in (logs or {}).items():
            curves.setdefault(key, []).append(float(value))
        name = self.oracle.objective.name
        if self._pruning and name in (logs or {}):
            # The oracle (the chief's, under --worker) decides; "STOPPED" ends this trial's training.
            answer = self.oracle.update_trial(trial.trial_id, {name: float(logs[name]), REPORT: 1.0}, step=epoch)
            if answer.status == "STOPPED":
                model.stop_training = True
                self._pruned[trial.trial_id] = epoch + 1

    def on_trial_end(self, trial):
        self._display.close()  # a trial that failed mid-epoch did not reach on_train_end
        super().on_trial_end(trial)  # the oracle records the trial and saves its state
        seconds = time.perf_counter() - self._started.pop(trial.trial_id, time.perf_counter())
        curves = self._curves.pop(trial.trial_id, {})
        measures = self._measures.pop(trial.trial_id, {})
        ended = self.oracle.get_trial(trial.trial_id)
        latency = measures.get("latency_ms")
        record = {"trial_id": trial.trial_id, "seconds": round(seconds, 3), "epochs": len(curves.get("loss", [])),
                  "params": measures.get("params"), "latency_ms": round(latency, 4) if latency is not None else None,
                  "history": curves, "tuner_id": getattr(self, "tuner_id", None),
                  "pruned_at": self._pruned.pop(trial.trial_id, None)}
        self._log_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(self._log_dir / f"{trial.trial_id}.json", json.dumps(record))
        self._trial_seconds.append(seconds)
        label = self._label(trial)
        hps = hp_text(ended.hyperparameters.values)
        if ended.status == "COMPLETED" and ended.score is not None:
            name = self.oracle.objective.name
            size = f", {record['params']:,} params" if record["params"] is not None else ""
            pruned = f", pruned at epoch {record['pruned_at']}" if record["pruned_at"] else ""
            self._printer(f"[{label}] {name}={ended.score:.4f} in {seconds:.1f}s "
                          f"({record['epochs']} epochs{size}{pruned}) | {hps}")
        else:
            self._printer(f"[{label}] FAILED after {seconds:.1f}s: {failure_reason(ended.message)} | {hps}")
        check_interrupt()  # the trial is on record: stop here if Ctrl-C was pressed


def make_tuner(experiment: Experiment, hypermodel, *, runs_dir: pathlib.Path, printer: Callable[[str], None] = print,
               display: ProgressDisplay | None = None):
    """A stock Keras Tuner tuner with dlimaging's progress lines and trial logs.

    `display` (a `ProgressDisplay`) shows progress inside each trial; by default none.
    """
    import tensorflow as tf

    settings = experiment.tuner
    entry = registry.TUNERS[settings.algorithm]
    base = registry.resolve(entry.factory)
    cls = type(f"Dlimaging{base.__name__}", (_ProgressMixin, base), {})
    common = dict(
        objective=keras_tuner.Objective(experiment.objective, experiment.direction),
        seed=experiment.seed,
        directory=str(runs_dir),
        project_name=experiment.name,
        overwrite=False,  # run_search clears the run folder itself for --overwrite
        executions_per_trial=settings.executions_per_trial,
        # A failed trial is recorded and the search goes on; never retried, never fatal.
        max_retries_per_trial=0,
        max_consecutive_failed_trials=10**9,
        log_dir=runs_dir / experiment.name / TRIAL_LOGS,
        printer=printer,
        display=display,
    )
    if settings.distribution == "mirrored":
        common["distribution_strategy"] = tf.distribute.MirroredStrategy()
    budget = {argument: value(settings) if callable(value) else getattr(settings, value) if isinstance(value, str)
              else value for argument, value in entry.arguments.items()}
    if settings.pruning == "none":
        return cls(hypermodel, total=budget.get("max_trials"), **budget, **common)
    # Pruning: the algorithm's own oracle, taught to stop trials, under Keras Tuner's plain Tuner.
    oracle = pruning_oracle(settings.algorithm, settings, objective=common.pop("objective"),
                            seed=common.pop("seed"), max_retries_per_trial=common.pop("max_retries_per_trial"),
                            max_consecutive_failed_trials=common.pop("max_consecutive_failed_trials"), **budget)
    cls = type(f"DlimagingPruning{base.__name__}", (_ProgressMixin, keras_tuner.Tuner), {})
    return cls(oracle=oracle, hypermodel=hypermodel, total=budget.get("max_trials"), pruning=True, **common)


def parse_role(chief: str | None = None, worker: str | None = None, worker_id: str | None = None):
    """(role, host, port) for a chief or a worker, or (None, None, None) on one machine."""
    if chief and worker:
        raise InputError("Use either `chief` or `worker`, not both.")
    address = chief or worker
    if not address:
        return None, None, None
    host, _, port = address.rpartition(":")
    if not host or not is_ascii_digits(port):
        raise InputError(f"The oracle address must be HOST:PORT. Received: {address!r}")
    if worker and not worker_id:
        raise InputError("A worker needs a `worker_id`, e.g. tuner1.")
    if worker_id == "chief":
        raise InputError("`worker_id` 'chief' is reserved for the chief.")
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


def wait_for_chief(host: str, port: str, seconds: float, printer: Callable[[str], None] = print) -> None:
    """Waits until the chief's oracle at HOST:PORT accepts connections, for at most `seconds`.

    Raises:
        InputError: when nothing answers at HOST:PORT in that time.
    """
    deadline = time.monotonic() + max(0.0, float(seconds))
    printed = False
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return
        except OSError as error:
            reason = error
        if time.monotonic() >= deadline:
            raise InputError(
                f"No chief answered at {host}:{port} within {seconds:g}s ({reason.strerror or reason}); "
                "start `dlimaging tune ... --chief HOST:PORT` first, or raise --wait-for-chief."
            )
        if not printed:
            printer(f"Waiting for the chief at {host}:{port} (up to {seconds:g}s) ...")
            printed = True
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
