import csv
import io
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import keras_tuner as kt
import numpy as np
import pytest
import tensorflow as tf
from conftest import free_port

from dlimaging.errors import InputError
from dlimaging.plots.trials import pareto_front
from dlimaging.tuning.experiment import parse_experiment
from dlimaging.tuning.results import (
    TrialRecord,
    choose_export,
    ensemble_members,
    report,
)
from dlimaging.tuning.search import TuningError, run_search
from dlimaging.tuning.tuner import FailOnNaN

DLIMAGING = str(pathlib.Path(sys.executable).parent / "dlimaging")
TINY_SEARCH = {
    "filters": {"choice": [[4], [8]]},
    "dense_units": 8,
    "batch_norm": False,  # the sizes below are those of the plain network
    "dropout": {"min": 0.0, "max": 0.2, "step": 0.1},
    "learning_rate": {"min": 1e-3, "max": 1e-2, "sampling": "log"},
}


def experiment(name="tiny", algorithm="random", search=None, max_trials=2, max_epochs=1, **tuner):
    return parse_experiment({
        "name": name,
        "data": {"source": "digits", "batch_size": 128},
        "search": TINY_SEARCH if search is None else search,
        "tuner": {"algorithm": algorithm, "max_trials": max_trials, "max_epochs": max_epochs, **tuner},
    })


def _quiet(_line):
    pass


def _toml(path, name, search_lines, max_trials=3, algorithm="random"):
    path.write_text(
        f'name = "{name}"\n[data]\nsource = "digits"\nbatch_size = 128\n[search]\n{search_lines}\n'
        f'[tuner]\nalgorithm = "{algorithm}"\nmax_trials = {max_trials}\nmax_epochs = 1\n'
    )
    return path


def hyperband_trials(max_epochs, factor):
    """The trials of one Hyperband iteration as Keras Tuner runs it: bracket b = 0 .. s
    (s + 1 = the number of times max_epochs divides by factor before dropping below 1)
    runs rounds r = 0 .. b of ceil(ceil(1 + log_factor(max_epochs)) / (b + 1) * factor^(b - r))
    trials each; max_trials plays no part."""
    brackets, epochs = 0, max_epochs
    while epochs >= 1:
        epochs /= factor
        brackets += 1
    last_round = math.ceil(1 + math.log(max_epochs, factor))
    return sum(math.ceil(last_round / (b + 1) * factor ** (b - r)) for b in range(brackets) for r in range(b + 1))


# A grid of 2 filter choices x 2 dropout values (0.0, 0.1): 4 points, fewer than max_trials.
GRID_SEARCH = {"filters": {"choice": [[4], [8]]}, "dense_units": 8, "dropout": {"min": 0.0, "max": 0.1, "step": 0.1}}


@pytest.mark.parametrize(
    "algorithm, max_trials, search, tuner, expected",
    [
        pytest.param("random", 2, None, {}, 2, id="random"),
        pytest.param("bayesian", 2, None, {}, 2, id="bayesian"),
        # max_epochs=2, factor=2: bracket 1 runs 2 trials of 1 epoch and continues the best
        # for 1 more, bracket 0 runs 2 trials of 2 epochs: 5 trials, max_trials ignored.
        pytest.param("hyperband", 2, None, {"hyperband_factor": 2}, hyperband_trials(2, 2), id="hyperband"),
        pytest.param("grid", 6, GRID_SEARCH, {}, 2 * 2, id="grid"),
    ],
)
def test_each_algorithm(tmp_path, algorithm, max_trials, search, tuner, expected):
    exp = experiment(algorithm=algorithm, search=search, max_epochs=2, max_trials=max_trials, **tuner)
    result = run_search(exp, runs_dir=tmp_path / "runs", export=False, printer=_quiet)
    assert [t.status for t in result.trials] == ["COMPLETED"] * expected, result.trials
    assert 0.0 < result.best.score <= 1.0
    assert result.best.score == max(t.score for t in result.trials)
    assert "test_accuracy" in result.best.test_metrics
    if algorithm == "grid":  # every grid point once
        points = {(t.hyperparameters["filters"], t.hyperparameters["dropout"]) for t in result.trials}
        assert len(points) == expected


def test_results_plots_and_export(tmp_path):

    from rich.console import Console
    from tensorflow.python.framework import ops

    def custom_gradients():
        return {name for name in ops._gradient_registry._registry if name.startswith("CustomGradient-")}

    lines = []
    console = Console(file=io.StringIO(), force_terminal=True, width=200)  # a terminal, as a test can see it
    registered = custom_gradients()
    result = run_search(experiment(max_trials=3), runs_dir=tmp_path / "runs",
                        export_dir=tmp_path / "saved_models", printer=lines.append, live=console)
    assert custom_gradients() == registered  # no trial's train graph outlives it (issue 23: memory)
    run_dir = tmp_path / "runs" / "tiny"
    # One progress line per trial: trial k of N, hyperparameters, score, time and size.
    progress = [line for line in lines if line.startswith("[trial")]
    assert len(progress) == 3 == len(lines)  # not verbose: no per-epoch lines
    assert progress[0].startswith("[trial 1/3] val_accuracy=") and "filters=" in progress[0] and "s (" in progress[0]
    assert " params) |" in progress[0]
    # Inside each trial, the live line: trial k/N, epoch e/E, the loss and the objective.
    live = console.file.getvalue()
    for k in (1, 2, 3):
        assert f"trial {k}/3 | epoch 1/1 | loss=" in live and "| val_accuracy=" in live

    results = json.loads((run_dir / "results.json").read_text())
    assert results["summary"] == {"trials": 3, "completed": 3, "failed": 0, "unfinished": 0, "pruned": 0}
    for trial in results["trials"]:
        assert set(trial) >= {"trial", "status", "score", "epochs", "seconds", "hyperparameters", "best_epoch",
                              "params", "latency_ms"}
        assert trial["epochs"] == 1 and trial["seconds"] > 0
    assert results["pareto"] == [t.trial for t in pareto_front(result.trials, "max")]
    csv_lines = (run_dir / "results.csv").read_text().strip().splitlines()
    assert len(csv_lines) == 4 and csv_lines[0].startswith("trial,status,score")
    rows = list(csv.DictReader(io.StringIO((run_dir / "results.csv").read_text())))
    # Each model's size is its builder's, and its latency a few milliseconds at most.
    sizes = {"4": 4 * 9 + 4 + 4 * 16 * 8 + 8 + 8 * 10 + 10, "8": 8 * 9 + 8 + 8 * 16 * 8 + 8 + 8 * 10 + 10}
    for row in rows:
        assert int(row["params"]) == sizes[row["filters"]]
        assert 0 < float(row["latency_ms"]) < 100
    for png in ("objective_per_trial.png", "hyperparameters.png", "learning_curves.png", "pareto.png"):
        assert (run_dir / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    events = list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    assert events
    assert any(b"hparams" in path.read_bytes() for path in events)  # the HParams dashboard's data

    # The export is the best trial's model, with its test metrics in the metadata.
    assert result.export_path == tmp_path / "saved_models" / "tiny" / "1"
    info = json.loads((result.export_path / "assets" / "dlimaging.json").read_text())
    assert info["hyperparameters"] == result.best.hyperparameters
    assert info["metrics"]["test_accuracy"] == pytest.approx(result.best.test_metrics["test_accuracy"])
    assert info["class_names"] == [str(i) for i in range(10)]
    fn = tf.saved_model.load(str(result.export_path)).signatures["serving_default"]
    # The served model scores exactly the test accuracy measured on the best trial's model.
    from dlimaging import load_dataset

    data = load_dataset("digits", seed=0)
    out = fn(image=tf.constant(data.arrays["x_test"]))
    accuracy = float(np.mean(out["class_id"].numpy() == data.arrays["y_test"]))
    assert accuracy == pytest.approx(result.best.test_metrics["test_accuracy"], abs=1e-6)

    text, paths = report(run_dir)
    assert "rank" in text and "3 trials: 3 completed, 0 failed." in text and len(paths) == 4

    # Running the finished experiment again redoes nothing and exports nothing new.
    again = run_search(experiment(max_trials=3), runs_dir=tmp_path / "runs",
                       export_dir=tmp_path / "saved_models", printer=lines.append)
    assert [t.score for t in again.trials] == [t.score for t in result.trials]
    assert sorted(p.name for p in (tmp_path / "saved_models" / "tiny").iterdir()) == ["1"]


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path):
    # Four blocks cannot fit an 8x8 image: that trial fails in the builder, the other runs.
    search = {"filters": {"choice": [[4], [4, 4, 4, 4]]}, "dense_units": 8}
    lines = []
    result = run_search(experiment(algorithm="grid", search=search, max_trials=2),
                        runs_dir=tmp_path / "runs", export=False, printer=lines.append)
    statuses = sorted(t.status for t in result.trials)
    assert statuses == ["COMPLETED", "FAILED"]
    failed = next(t for t in result.trials if t.status == "FAILED")
    assert "block4_pool" in failed.reason
    assert any("FAILED" in line and "block4_pool" in line for line in lines)


def test_a_space_whose_defaults_cannot_build_is_refused(tmp_path):
    search = {"filters": [4, 4, 4, 4], "dense_units": 8}
    with pytest.raises(ValueError, match=r"default values do not build a model: block4_pool"):
        run_search(experiment(search=search), runs_dir=tmp_path / "runs", export=False, printer=_quiet)
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_all_trials_failing_is_an_error(tmp_path):
    # Such a learning rate blows the weights up: every trial's loss becomes NaN.
    search = {"filters": [4], "dense_units": 8, "learning_rate": 1e30, "dropout": {"choice": [0.0, 0.1]}}
    with pytest.raises(TuningError, match=r"No trial succeeded out of 2; first reason: loss became"):
        run_search(experiment(search=search), runs_dir=tmp_path / "runs", export=False, printer=_quiet)
    results = json.loads((tmp_path / "runs" / "tiny" / "results.json").read_text())
    assert results["summary"]["failed"] == 2 and results["best"] is None


def test_all_failing_cli_exits_non_zero(tmp_path):
    config = _toml(tmp_path / "bad.toml", "bad", "filters = [4]\nlearning_rate = 1e30\ndropout = { choice = [0.0, 0.1] }", max_trials=2)
    result = subprocess.run([DLIMAGING, "tune", str(config)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 1
    assert "No trial succeeded out of 2" in result.stderr
    # Output to a pipe: no live line (no terminal codes), no per-epoch lines without --verbose.
    assert "\x1b" not in result.stdout and "] epoch " not in result.stdout
    assert not (tmp_path / "saved_models").exists()


def test_nan_loss_fails_the_trial():
    with pytest.raises(kt.errors.FailedTrialError, match="loss became nan at epoch 3"):
        FailOnNaN().on_epoch_end(2, {"loss": float("nan")})
    FailOnNaN().on_epoch_end(0, {"loss": 0.5})


def test_changed_experiment_refuses_to_resume(tmp_path):
    run_search(experiment(max_trials=1), runs_dir=tmp_path / "runs", export=False, printer=_quiet)
    changed = experiment(max_trials=1, search={**TINY_SEARCH, "dense_units": 16})
    with pytest.raises(ValueError, match="different experiment.*--overwrite"):
        run_search(changed, runs_dir=tmp_path / "runs", export=False, printer=_quiet)
    result = run_search(changed, runs_dir=tmp_path / "runs", export=False, printer=_quiet, overwrite=True)
    assert len(result.trials) == 1


def test_killed_run_resumes_without_redoing_trials(tmp_path):
    config = _toml(tmp_path / "resume.toml", "resume", "filters = { choice = [[4], [8]] }\ndense_units = 8\n"
                   "learning_rate = { min = 1e-3, max = 1e-2, sampling = \"log\" }", max_trials=4)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen([DLIMAGING, "tune", str(config), "--no-export"], stdout=subprocess.PIPE,
                             text=True, cwd=tmp_path, env=env)
    try:
        seen = 0
        for line in child.stdout:
            if line.startswith("[trial"):
                seen += 1
            if seen == 2:
                child.send_signal(signal.SIGKILL)
                break
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    logs = tmp_path / "runs" / "resume" / "trial_logs"
    before = {p.name: p.stat().st_mtime_ns for p in logs.glob("*.json")}
    assert len(before) == 2
    # The interrupted run has no results.json yet; report reads the trials it finished.
    assert not (tmp_path / "runs" / "resume" / "results.json").exists()
    text, _ = report(tmp_path / "runs" / "resume")
    assert text.startswith("resume: val_accuracy (higher is better)")
    assert "2 completed, 0 failed" in text

    result = subprocess.run([DLIMAGING, "tune", str(config), "--no-export"], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Resuming" in result.stdout
    ran_again = [line for line in result.stdout.splitlines() if line.startswith("[trial")]
    assert len(ran_again) == 2  # only the two that were missing
    after = {p.name: p.stat().st_mtime_ns for p in logs.glob("*.json")}
    assert len(after) == 4
    assert all(after[name] == mtime for name, mtime in before.items())  # completed trials not redone
    results = json.loads((tmp_path / "runs" / "resume" / "results.json").read_text())
    assert results["summary"]["completed"] == 4
    assert sorted(t["trial_id"] for t in results["trials"]) == sorted(p[:-5] for p in after)


@pytest.mark.slow
def test_distributed_chief_and_two_workers_on_loopback(tmp_path):
    config = _toml(tmp_path / "dist.toml", "dist", "filters = { choice = [[4], [8]] }\ndense_units = 8\n"
                   "learning_rate = { min = 1e-3, max = 1e-2, sampling = \"log\" }", max_trials=6)
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    common = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env)
    chief = subprocess.Popen([DLIMAGING, "tune", str(config), "--chief", address, "--export-dir", "exports"], **common)
    time.sleep(2)
    workers = [
        subprocess.Popen([DLIMAGING, "tune", str(config), "--worker", address, "--worker-id", f"tuner{i}"], **common)
        for i in (1, 2)
    ]
    try:
        outputs = [w.communicate(timeout=400)[0] for w in workers]
        chief_output = chief.communicate(timeout=120)[0]
    finally:
        for process in [chief, *workers]:
            if process.poll() is None:
                process.kill()
    assert all(w.returncode == 0 for w in workers), outputs
    assert chief.returncode == 0, chief_output[-3000:]
    trial_lines = [[line for line in out.splitlines() if line.startswith("[trial")] for out in outputs]
    assert all(lines for lines in trial_lines), outputs  # both workers ran trials
    numbers = [line.split("]")[0] for lines in trial_lines for line in lines]
    assert len(numbers) == 6 and len(set(numbers)) == 6  # every trial exactly once
    logs = json.loads((tmp_path / "runs" / "dist" / "results.json").read_text())
    assert logs["summary"]["completed"] == 6
    tuner_ids = {json.loads(p.read_text())["tuner_id"] for p in (tmp_path / "runs" / "dist" / "trial_logs").glob("*.json")}
    assert tuner_ids == {"tuner1", "tuner2"}
    assert (tmp_path / "exports" / "dist" / "1" / "saved_model.pb").is_file()


@pytest.mark.parametrize("max_trials, setting, expected", [(2, None, 3), (12, None, 4), (60, None, 10), (12, 2, 2)])
def test_bayesian_fits_its_gaussian_process_within_the_budget(tmp_path, max_trials, setting, expected):
    # Keras Tuner's default (3 random trials per hyperparameter) would make all of them random.
    from dlimaging.tuning.hypermodels import CNNHyperModel
    from dlimaging.tuning.tuner import make_tuner

    tuner_settings = {} if setting is None else {"bayesian_initial_points": setting}
    exp = experiment(algorithm="bayesian", max_trials=max_trials, **tuner_settings)
    tuner = make_tuner(exp, CNNHyperModel((8, 8, 1), 10, space=TINY_SEARCH), runs_dir=tmp_path / "probe")
    assert tuner.oracle.num_initial_points == expected


def test_bayesian_search_leaves_random_search_after_its_initial_points(tmp_path):
    # Same seed: the initial trials are random search's; the Gaussian process picks the next ones.
    trials = {}
    for algorithm in ("random", "bayesian"):
        exp = experiment(name=algorithm, algorithm=algorithm, max_trials=4, bayesian_initial_points=2)
        result = run_search(exp, runs_dir=tmp_path / "runs", export=False, printer=_quiet)
        trials[algorithm] = [t.hyperparameters for t in result.trials]
    assert trials["bayesian"][:2] == trials["random"][:2]
    assert [t["learning_rate"] for t in trials["bayesian"][2:]] != [t["learning_rate"] for t in trials["random"][2:]]


def test_mirrored_strategy_can_be_chosen(tmp_path):
    from dlimaging.tuning.hypermodels import CNNHyperModel
    from dlimaging.tuning.tuner import make_tuner

    exp = experiment(max_trials=1, distribution="mirrored")
    tuner = make_tuner(exp, CNNHyperModel((8, 8, 1), 10, space=TINY_SEARCH), runs_dir=tmp_path / "probe")
    assert isinstance(tuner.distribution_strategy, tf.distribute.MirroredStrategy)
    result = run_search(exp, runs_dir=tmp_path / "runs", export=False, printer=_quiet)
    assert result.trials[0].status == "COMPLETED"


def test_a_task_the_data_cannot_supply_is_refused_before_anything_is_written(tmp_path):
    from dlimaging.tuning.experiment import ExperimentError

    exp = parse_experiment({"name": "t", "data": {"source": "digits"}, "model": {"task": "regression"}})
    with pytest.raises(ExperimentError, match=r"^t: `source` 'digits': task='regression' needs numeric "
                                              r"targets, but its labels are classes"):
        run_search(exp, runs_dir=tmp_path / "runs", export=False, printer=_quiet)
    assert not (tmp_path / "runs").exists()


def test_ranking_needs_a_direction():
    from dlimaging.tuning.results import TrialRecord, rank_trials

    trials = [TrialRecord(1, "0", "COMPLETED", 0.2), TrialRecord(2, "1", "COMPLETED", 0.9),
              TrialRecord(3, "2", "FAILED")]
    assert [t.trial for t in rank_trials(trials, "max")] == [2, 1]
    assert [t.trial for t in rank_trials(trials, "min")] == [1, 2]
    with pytest.raises(ValueError, match="`direction` must be one of 'min', 'max'. Received: direction='val_accuracy'"):
        rank_trials(trials, "val_accuracy")


def test_ctrl_c_at_any_moment_stops_keeps_trials_and_resumes(tmp_path):
    """Issue 9, class 4: Ctrl-C just after a trial starts (while Keras Tuner runs clear_session and
    gc.collect) used to be swallowed as "Exception ignored ... KeyboardInterrupt"; now every
    Ctrl-C stops the search with exit 130 and one line, and the next run resumes."""
    config = _toml(tmp_path / "ctrlc.toml", "ctrlc", "filters = [4]\ndense_units = 8\n"
                   "dropout = { choice = [0.0, 0.1, 0.2, 0.3, 0.4] }", max_trials=5)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    logs = tmp_path / "runs" / "ctrlc" / "trial_logs"
    kept = {}
    for delay in (0.0, 0.05, 0.3):  # seconds after a trial ended, i.e. as the next one starts
        child = subprocess.Popen([DLIMAGING, "tune", str(config), "--no-export"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
        try:
            for line in child.stdout:
                if line.startswith("[trial"):
                    time.sleep(delay)
                    child.send_signal(signal.SIGINT)
                    break
            _, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
        assert child.returncode == 130, (delay, err[-2000:])
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "interrupted; completed trials are kept" in lines[0], (delay, err[-2000:])
        assert "Run the same command again (without --overwrite) to resume." in lines[0]
        assert not (tmp_path / "runs" / "ctrlc" / ".lock").exists()
        for path in logs.glob("*.json"):
            kept.setdefault(path.name, path.stat().st_mtime_ns)
    assert len(kept) >= 3  # at least one trial completed per run
    result = subprocess.run([DLIMAGING, "tune", str(config), "--no-export"], capture_output=True, text=True,
                            cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Resuming" in result.stdout
    results = json.loads((tmp_path / "runs" / "ctrlc" / "results.json").read_text())
    assert results["summary"]["completed"] == 5
    assert all(p.stat().st_mtime_ns == kept[p.name] for p in logs.glob("*.json") if p.name in kept)


def test_a_worker_without_a_chief_waits_a_bounded_time(tmp_path, capsys):
    """Issue 9, class 4: a worker says what it waits for, gives up after --wait-for-chief, exit 2."""
    from dlimaging.cli import main

    config = _toml(tmp_path / "w.toml", "w", "filters = [4]\ndense_units = 8")
    start = time.perf_counter()
    assert main(["tune", str(config), "--worker", f"127.0.0.1:{free_port()}", "--worker-id", "w1",
                 "--runs-dir", str(tmp_path / "runs"), "--wait-for-chief", "1.5"]) == 2
    seconds = time.perf_counter() - start
    out, err = capsys.readouterr()
    assert "Waiting for the chief at 127.0.0.1:" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "No chief answered at 127.0.0.1:" in lines[0] and "within 1.5s" in lines[0], err
    assert 1.4 < seconds < 10
    assert not (tmp_path / "runs").exists()


def test_regression_search_on_spectra_plots_and_exports_its_best_model(tmp_path, capsys):
    from dlimaging.cli import main
    from dlimaging.serving.exports import read_metadata

    exp = parse_experiment({
        "name": "spectra", "data": {"source": "spectra:samples=300,length=64", "standardize": "global"},
        "model": {"task": "regression"},
        "search": {"filters": [4], "kernel_size": 5, "dense_units": 8, "learning_rate": 3e-3},
        "tuner": {"max_trials": 1, "max_epochs": 2},
    })
    result = run_search(exp, runs_dir=tmp_path / "runs", export_dir=tmp_path / "sm", printer=_quiet)
    assert (result.objective, result.direction) == ("val_loss", "min")
    assert {"test_rmse", "test_mae", "test_r2"} <= set(result.best.test_metrics)
    plots = {p.name for p in (result.run_dir / "plots").iterdir()}
    assert {"parity.png", "residuals.png", "spectra.png", "objective_per_trial.png"} <= plots
    assert "confusion_matrix.png" not in plots
    info = read_metadata(result.export_path)
    assert info["task"] == "regression" and info["outputs"] == ["predictions"]
    assert info["target_names"] == ["c1", "c2", "c3"] and info["class_names"] is None
    assert len(info["input"]["axis"]) == 64
    # The standardisation was adapted on the training split and is kept in the exported model.
    assert main(["report", str(result.run_dir)]) == 0
    assert "val_loss (lower is better)" in capsys.readouterr().out


def test_model_task_goes_to_the_data(tmp_path, monkeypatch):
    import dlimaging.tuning.search

    seen = {}
    real = dlimaging.tuning.search.load_dataset

    def spy(source, **options):
        seen.update(options)
        raise RuntimeError("stop here")

    monkeypatch.setattr(dlimaging.tuning.search, "load_dataset", spy)
    exp = parse_experiment({"name": "t", "data": {"source": "my.csv", "target": ["a", "b"], "test": "t.csv"},
                            "model": {"task": "regression"}})
    with pytest.raises(RuntimeError, match="stop here"):
        run_search(exp, runs_dir=tmp_path / "runs", export=False, printer=_quiet)
    assert (seen["task"], seen["target"], seen["test"]) == ("regression", ["a", "b"], "t.csv")
    assert real is not spy


@pytest.mark.parametrize("name, pictures", [("spectra_regression", {"parity.png", "residuals.png", "spectra.png"}),
                                            ("coffee_cnn", {"confusion_matrix.png", "spectra.png"})])
def test_shipped_spectra_experiments_run_export_and_predict(tmp_path, capsys, name, pictures):
    from dlimaging.cli import main
    from dlimaging.tuning.experiment import load_experiment

    config = pathlib.Path(__file__).resolve().parents[2] / "tuning" / f"{name}.toml"
    assert main(["tune", str(config), "--max-trials", "1", "--max-epochs", "1", "--runs-dir", str(tmp_path / "runs"),
                 "--export-dir", str(tmp_path / "sm")]) == 0
    out = capsys.readouterr().out
    experiment = load_experiment(config)
    better = "lower is better" if experiment.direction == "min" else "higher is better"
    assert f"{experiment.objective} ({better})" in out and f"Exported: {tmp_path / 'sm' / name / '1'}" in out
    assert pictures <= {p.name for p in (tmp_path / "runs" / name / "plots").iterdir()}
    from dlimaging.data.dataset import load_dataset

    np.save(tmp_path / "two.npy", load_dataset(experiment.data.source).arrays["x_test"][:2])
    assert main(["predict", str(tmp_path / "sm" / name), str(tmp_path / "two.npy")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[1].startswith(f"{tmp_path / 'two.npy'}[0]: ")
    if experiment.direction == "min":  # regression: each component by name
        assert all(f"{c}=" in lines[1] for c in ("c1", "c2", "c3"))


def test_a_searched_learning_rate_schedule_is_told_how_long_fit_runs(tmp_path):
    search = dict(TINY_SEARCH, schedule="cosine", warmup_epochs=1)
    result = run_search(experiment(search=search, max_trials=1, max_epochs=2), runs_dir=tmp_path / "runs",
                        export=False, printer=_quiet)
    assert [t.status for t in result.trials] == ["COMPLETED"], result.trials


def test_train_passes_its_length_to_a_schedule(tmp_path):
    import keras

    from dlimaging.training import train

    out = train("digits", epochs=2, batch_size=128, overrides={"schedule": "cosine", "filters": (4,)},
                output_dir=tmp_path / "run")
    model = keras.models.load_model(out["model_path"])
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule)
    steps = 2 * -(-out_samples("digits") // 128)
    assert float(schedule(steps)) == pytest.approx(0.0, abs=1e-6)  # cosine ends at 0 after the whole run


def out_samples(source):
    from dlimaging import load_dataset

    return load_dataset(source, seed=0).num_train


# ---------------------------------------------------------------- size, speed and accuracy


def _record(trial, score, params, latency_ms=1.0):
    return TrialRecord(trial=trial, trial_id=str(trial - 1), status="COMPLETED" if score is not None else "FAILED",
                       score=score, params=params, latency_ms=latency_ms)


# Trial: (score, params). Higher is better for accuracy, lower for the loss.
RECORDS = [_record(1, 0.90, 1000), _record(2, 0.95, 5000), _record(3, 0.93, 800), _record(4, 0.95, 7000),
           _record(5, 0.80, 800), _record(6, 0.97, 20000), _record(7, None, 100), _record(8, 0.99, None),
           _record(9, 0.93, 800)]


@pytest.mark.parametrize("direction, front", [
    # 3 and 9 tie (0.93 with 800): neither beats the other. 1 and 5 lose to 3; 4 to 2.
    ("max", [3, 9, 2, 6]),
    # Lower is better: 5 (0.80 with 800) beats everything bigger; 7 failed; 8 has no count.
    ("min", [5]),
])
def test_pareto_front_on_objective_and_parameters(direction, front):
    assert [t.trial for t in pareto_front(RECORDS, direction)] == front
    assert pareto_front([], direction) == []


# Lower is better (a loss): trial: (score, params).
LOSSES = [_record(1, 0.30, 100), _record(2, 0.20, 400), _record(3, 0.25, 500), _record(4, 0.10, 900)]


def test_pareto_front_when_lower_is_better():
    assert [t.trial for t in pareto_front(LOSSES, "min")] == [1, 2, 4]  # 3 loses to 2
    assert [t.trial for t in pareto_front(LOSSES, "max")] == [1]  # the same numbers read the other way


@pytest.mark.parametrize("records, direction, choice, expected", [
    (RECORDS, "max", "best", 8),                    # the best objective, with or without a parameter count
    (RECORDS, "max", "smallest-within=0", 8),       # none ties it and none near it has a count: the best
    (RECORDS, "max", "smallest-within=0.02", 6),    # 0.97 and 0.99 are within 0.02; only 6 has a count
    (RECORDS, "max", "smallest-within=0.04", 2),    # 0.95 (2 and 4) are within: 2 has fewer parameters
    (RECORDS, "max", "smallest-within=0.06", 3),    # 0.93 with 800 (3 before 9: the earlier of equals)
    (RECORDS, "max", "smallest-within=0.2", 3),     # 5 has 800 too, but 3 scores better
    (LOSSES, "min", "smallest-within=0.05", 4),     # lower is better: only the best itself
    (LOSSES, "min", "smallest-within=0.1", 2),      # 0.20 is within 0.1 of 0.10, with 400
    (LOSSES, "min", "smallest-within=0.2", 1),      # 0.30 with 100
])
def test_smallest_within_picks_the_fewest_parameters_near_the_best(records, direction, choice, expected):
    chosen, why = choose_export(records, direction, choice)
    assert chosen.trial == expected, why
    assert f"trial {expected} (" in why


def test_ensemble_choice_names_the_best_trials_in_order():
    chosen, why = choose_export(RECORDS, "max", "ensemble=3")
    assert chosen.trial == 8
    assert [t.trial for t in ensemble_members(RECORDS, "max", 3)] == [8, 6, 2]  # 2 before 4: the earlier of equals
    assert why == "the mean of the 3 best trials' outputs: trial 8 (0.9900), trial 6 (0.9700), trial 2 (0.9500)"
    assert [t.trial for t in ensemble_members(LOSSES, "min", 2)] == [4, 2]  # lower is better
    # More members asked for than trials completed: those there are, and the reason says so.
    assert [t.trial for t in ensemble_members(LOSSES, "min", 20)] == [4, 2, 3, 1]
    assert choose_export(LOSSES, "min", "ensemble=20")[1].endswith("; 20 were asked for, 4 ran to their end")
    assert "alone" in choose_export(RECORDS[:1], "max", "ensemble=2")[1]


def test_a_bad_export_choice_is_refused_before_any_work(tmp_path):
    for choice in ("smallest-within=abc", "fastest", "smallest-within=-1", "", "ensemble=1", "ensemble=21",
                   "ensemble=2.5", "ensemble=\u00b2", "ensemble="):
        with pytest.raises(InputError, match=r"`export_choice` must be \"best\", \"smallest-within=TOLERANCE\""):
            run_search(experiment(), runs_dir=tmp_path / "runs", export_choice=choice, printer=_quiet)
    assert list(tmp_path.iterdir()) == []


def test_smallest_within_exports_the_smallest_trial_near_the_best(tmp_path):
    # Two models of different sizes: 2 filters learn less in two epochs than 16.
    search = {"filters": {"choice": [[2], [16]]}, "dense_units": 8, "learning_rate": 0.01}
    lines = []
    result = run_search(experiment(algorithm="grid", search=search, max_epochs=2), runs_dir=tmp_path / "runs",
                        export_dir=tmp_path / "saved_models", printer=lines.append,
                        export_choice="smallest-within=1")
    smallest = min(result.trials, key=lambda t: t.params)
    best = max(result.trials, key=lambda t: t.score)
    assert smallest.trial != best.trial, result.trials  # else the test could not tell the choices apart
    assert result.best.trial_id == smallest.trial_id and result.best.choice == "smallest-within=1"
    info = json.loads((result.export_path / "assets" / "dlimaging.json").read_text())
    assert info["trial_id"] == smallest.trial_id and info["params"] == smallest.params
    assert info["choice"]["rule"] == "smallest-within=1" and info["choice"]["params"] == smallest.params
    assert f"trial {best.trial}: {best.score:.4f}" in info["choice"]["why"]
    results = json.loads((tmp_path / "runs" / "tiny" / "results.json").read_text())
    assert results["best"]["trial_id"] == smallest.trial_id and results["best"]["choice"] == "smallest-within=1"


def test_ensemble_exports_the_mean_of_the_best_trials(tmp_path):
    from dlimaging.serving.exports import (
        exported_predictor,
        read_metadata,
        resolve_version_dir,
    )

    # Two trials, as in the test above: the best (16 filters) and the smallest (2) differ, so the
    # exports "best" and "smallest-within=1" are the two members of "ensemble=2".
    search = {"filters": {"choice": [[2], [16]]}, "dense_units": 8, "learning_rate": 0.01}
    runs, exports = tmp_path / "runs", tmp_path / "saved_models"
    x = np.random.default_rng(0).random((5, 8, 8, 1), dtype="float32")

    def served(choice):
        result = run_search(experiment(algorithm="grid", search=search, max_epochs=2), runs_dir=runs,
                            export_dir=exports, printer=_quiet, export_choice=choice)
        version = resolve_version_dir(result.export_path)
        return result, exported_predictor(version, read_metadata(version))(x)["probabilities"]

    best, best_out = served("best")
    smallest, smallest_out = served("smallest-within=1")
    assert smallest.best.trial != best.best.trial
    both, both_out = served("ensemble=2")
    assert both.best.members == [best.best.trial, smallest.best.trial]
    assert both.best.trial_id == best.best.trial_id and both.best.choice == "ensemble=2"
    np.testing.assert_allclose(both_out, (best_out + smallest_out) / 2, atol=1e-5)
    assert not np.allclose(both_out, best_out, atol=1e-3)
    # Each choice is a new version of the same export; none is overwritten, nothing is trained again.
    assert len({best.export_path, smallest.export_path, both.export_path}) == 3
    assert all(r.export_path.is_dir() for r in (best, smallest, both))
    assert both.best.params == best.best.params + smallest.best.params
    info = json.loads((both.export_path / "assets" / "dlimaging.json").read_text())
    assert info["choice"]["members"] == both.best.members and info["params"] == both.best.params
    assert json.loads((runs / "tiny" / "results.json").read_text())["best"]["members"] == both.best.members
    assert f"the mean of trials {best.best.trial}, {smallest.best.trial}" in report(runs / "tiny")[0]
