"""Pruning in random and Bayesian searches (issue 23): the rules, the oracle, the records, the CLI."""

import csv
import io
import json
import os
import pathlib
import subprocess
import sys
import time

import keras_tuner as kt
import pytest
from conftest import free_port

from dlimaging.cli import main
from dlimaging.tuning.experiment import ExperimentError, parse_experiment
from dlimaging.tuning.pruning import (
    STATE_KEY,
    halving_stops,
    median_stops,
    pruning_oracle,
    rungs,
)
from dlimaging.tuning.results import (
    TrialRecord,
    choose_export,
    format_leaderboard,
    report,
)
from dlimaging.tuning.search import run_search

DLIMAGING = str(pathlib.Path(sys.executable).parent / "dlimaging")
SPACE = {"filters": {"choice": [[4], [8]]}, "dense_units": 8, "batch_norm": False,
         "learning_rate": {"min": 1e-4, "max": 1e-1, "sampling": "log"}}


def experiment(name="prune", **tuner):
    settings = {"algorithm": "random", "max_trials": 5, "max_epochs": 4, "pruning": "median",
                "pruning_warmup_epochs": 1, "pruning_min_trials": 1, "early_stopping_patience": 5, **tuner}
    return parse_experiment({"name": name, "data": {"source": "digits", "batch_size": 128}, "search": SPACE,
                             "tuner": settings})


# ------------------------------------------------------------------ the two rules

def test_median_rule_waits_for_the_warm_up_and_enough_completed_trials():
    completed = [[0.5, 0.6, 0.7], [0.3, 0.4, 0.5], [0.1, 0.2, 0.3]]  # medians 0.3, 0.4, 0.5
    assert not median_stops([0.1], completed, direction="max", warmup=1, min_trials=3)  # in the warm-up
    assert median_stops([0.1, 0.35], completed, direction="max", warmup=1, min_trials=3)  # best 0.35 < 0.4
    assert not median_stops([0.1, 0.45], completed, direction="max", warmup=1, min_trials=3)
    assert not median_stops([0.1, 0.35], completed, direction="max", warmup=1, min_trials=4)  # too few
    assert not median_stops([0.1, 0.1, 0.1, 0.1], completed, direction="max", warmup=1, min_trials=1)  # none reached 4
    assert median_stops([0.9, 0.8], [[0.5, 0.4], [0.6, 0.5], [0.7, 0.6]], direction="min", warmup=1, min_trials=3)


def test_successive_halving_keeps_the_top_third_at_each_rung():
    assert rungs(1, 3, 20) == [1, 3, 9] and rungs(2, 2, 20) == [2, 4, 8, 16] and rungs(5, 3, 5) == []
    others = [[0.9], [0.8], [0.7], [0.6], [0.5]]  # 6 at the rung with this one: keep the best 2
    assert halving_stops([0.75], others, direction="max", first=1, eta=3, min_trials=3)
    assert not halving_stops([0.85], others, direction="max", first=1, eta=3, min_trials=3)
    assert not halving_stops([0.1, 0.1], others, direction="max", first=1, eta=3, min_trials=3)  # epoch 2: no rung
    assert not halving_stops([0.1], others[:1], direction="max", first=1, eta=3, min_trials=3)  # 2 < min_trials
    assert halving_stops([0.1], others[:2], direction="max", first=1, eta=3, min_trials=2)  # only the best goes on
    assert not halving_stops([0.1], others, direction="min", first=1, eta=3, min_trials=3)


# ------------------------------------------------------------------ the schema refuses bad settings

@pytest.mark.parametrize("tuner, words", [
    ({"algorithm": "hyperband"}, 'algorithm "hyperband" stops trials by its own schedule'),
    ({"pruning": "percentile"}, "must be one of"),
    ({"pruning_warmup_epochs": 4}, "must be below max_epochs (4)"),
    ({"pruning_warmup_epochs": -1}, "pruning_warmup_epochs"),
    ({"pruning_min_trials": 0}, "pruning_min_trials"),
    ({"pruning": "successive_halving", "pruning_eta": 1}, "pruning_eta"),
    ({"pruning": "successive_halving", "pruning_eta": 2.5}, "pruning_eta"),
    ({"pruning": "successive_halving", "pruning_min_epochs": 4}, "first rung must be below max_epochs"),
    ({"pruning_eta": 2}, 'applies only with pruning = "successive_halving"'),
    ({"pruning": "none"}, 'applies only with pruning = "median" or "successive_halving"'),
])
def test_bad_pruning_settings_are_refused_in_one_line(tuner, words):
    with pytest.raises(ExperimentError) as error:
        experiment(**tuner)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_the_cli_refuses_pruning_with_hyperband_and_a_warm_up_past_max_epochs(tmp_path, capsys):
    config = tmp_path / "hb.toml"
    config.write_text('name = "hb"\n[data]\nsource = "digits"\n[tuner]\nalgorithm = "hyperband"\npruning = "median"\n')
    assert main(["tune", str(config), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dlimaging: error:") and "[tuner] pruning" in err[0]
    config.write_text('name = "wu"\n[data]\nsource = "digits"\n[tuner]\npruning = "median"\npruning_warmup_epochs = 3\n')
    assert main(["tune", str(config), "--runs-dir", str(tmp_path / "runs"), "--max-epochs", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "with --max-epochs 3" in err[0] and "pruning_warmup_epochs" in err[0]
    assert not (tmp_path / "runs").exists()


def test_older_run_folders_keep_their_fingerprint():
    """The pruning keys at their defaults leave the fingerprint as it was before them."""
    plain = parse_experiment({"name": "x", "data": {"source": "digits"}})
    assert "pruning" not in plain.fingerprint() and "bayesian_initial_points" not in plain.fingerprint()
    assert '"pruning": "median"' in experiment().fingerprint()


# ------------------------------------------------------------------ the oracle

def _oracle(algorithm="random", **tuner):
    settings = experiment(**tuner).tuner
    return pruning_oracle(algorithm, settings, objective=kt.Objective("val_accuracy", "max"), max_trials=10, seed=1)


def _report(oracle, trial_id, value, step):
    return oracle.update_trial(trial_id, {"val_accuracy": value, "dlimaging_pruning_report": 1.0}, step=step).status


def test_the_oracle_stops_a_trial_and_its_state_keeps_the_decision(tmp_path):
    oracle = _oracle()
    oracle.hyperparameters.Float("x", 0.0, 1.0)
    oracle._set_project_dir(str(tmp_path), "p")
    done = oracle.create_trial("t1")
    for step, value in enumerate([0.5, 0.6, 0.7, 0.8]):
        assert _report(oracle, done.trial_id, value, step) == "RUNNING"
    oracle.update_trial(done.trial_id, {"val_accuracy": 0.8}, step=3)  # Keras Tuner's own report: recorded
    done.status = "COMPLETED"
    oracle.end_trial(done)
    weak = oracle.create_trial("t1")
    assert _report(oracle, weak.trial_id, 0.1, 0) == "RUNNING"  # the warm-up
    assert _report(oracle, weak.trial_id, 0.2, 1) == "STOPPED"  # 0.2 < 0.6
    assert oracle.pruned == {weak.trial_id: 2}
    state = json.loads((tmp_path / "p" / "oracle.json").read_text())  # saved at once: survives a kill
    assert state[STATE_KEY]["pruned"] == {weak.trial_id: 2}
    again = _oracle()
    again._set_project_dir(str(tmp_path), "p")
    again.reload()
    assert again.pruned == {weak.trial_id: 2} and again.curves[done.trial_id] == [0.5, 0.6, 0.7, 0.8]
    assert _report(again, weak.trial_id, 0.9, 0) == "STOPPED"  # the decision holds when the trial runs again


def test_a_trial_at_its_last_epoch_is_never_pruned(tmp_path):
    # Seen with a chief and two workers: a rung at max_epochs "pruned" a trial that had run all its epochs.
    oracle = _oracle(pruning="successive_halving", pruning_warmup_epochs=0, pruning_min_epochs=1,
                     pruning_min_trials=2, max_epochs=3)
    oracle.hyperparameters.Float("x", 0.0, 1.0)
    oracle._set_project_dir(str(tmp_path), "p")
    strong, weak = oracle.create_trial("t1"), oracle.create_trial("t2")
    assert [_report(oracle, strong.trial_id, v, step) for step, v in enumerate([0.9, 0.9, 0.99])] == ["RUNNING"] * 3
    assert [_report(oracle, weak.trial_id, 0.5, step) for step in range(3)] == ["STOPPED", "STOPPED", "STOPPED"]
    late = oracle.create_trial("t3")  # the best at the first rung; below `strong` at epoch 3, its last
    assert [_report(oracle, late.trial_id, 0.95, step) for step in range(3)] == ["RUNNING"] * 3
    assert oracle.pruned == {weak.trial_id: 1}


@pytest.mark.parametrize("algorithm, oracle", [("random", "RandomSearchOracle"),
                                               ("bayesian", "BayesianOptimizationOracle")])
def test_make_tuner_gives_random_and_bayesian_a_pruning_oracle(tmp_path, algorithm, oracle):
    from dlimaging.tuning.hypermodels import CNNHyperModel
    from dlimaging.tuning.tuner import make_tuner

    tuner = make_tuner(experiment(algorithm=algorithm, max_trials=12), CNNHyperModel((8, 8, 1), 10),
                       runs_dir=tmp_path, printer=lambda line: None)
    assert type(tuner.oracle).__name__ == f"Pruning{oracle}" and tuner.oracle.max_trials == 12
    if algorithm == "bayesian":
        assert tuner.oracle.num_initial_points == 4  # dlimaging's rule, as without pruning


# ------------------------------------------------------------------ records

def test_a_pruned_trial_is_ranked_by_its_value_but_exported_only_when_nothing_completed():
    pruned = TrialRecord(trial=1, trial_id="0", status="COMPLETED", score=0.9, epochs=2, pruned_at=2, params=10)
    full = TrialRecord(trial=2, trial_id="1", status="COMPLETED", score=0.8, epochs=4, params=20)
    assert choose_export([pruned, full], "max")[0] is full
    assert choose_export([pruned, full], "max", "smallest-within=0.5")[0] is full
    assert choose_export([pruned], "max")[0] is pruned
    board = format_leaderboard([pruned, full], "val_accuracy", "max")
    assert board.splitlines()[1].split()[:5] == ["1", "1", "0.9000", "2", "@2"]
    assert "2 completed (1 pruned" in board


@pytest.mark.slow
def test_a_median_pruned_search_records_pruned_trials_and_resumes_with_them(tmp_path):
    lines = []
    result = run_search(experiment(), runs_dir=tmp_path / "runs", export=False, printer=lines.append)
    pruned = [t for t in result.trials if t.pruned_at is not None]
    assert pruned and all(t.epochs == t.pruned_at < 4 for t in pruned)
    assert all(f"pruned at epoch {t.pruned_at}" in lines[t.trial - 1] for t in pruned)
    assert result.best.trial_id not in {t.trial_id for t in pruned}
    run_dir = tmp_path / "runs" / "prune"
    rows = list(csv.DictReader(io.StringIO((run_dir / "results.csv").read_text())))
    assert {row["trial"] for row in rows if row["pruned_at"]} == {str(t.trial) for t in pruned}
    results = json.loads((run_dir / "results.json").read_text())
    assert results["summary"]["pruned"] == len(pruned)
    text, _ = report(run_dir)
    assert "pruned" in text.splitlines()[1] and f"({len(pruned)} pruned" in text
    # A resumed search (one more trial) keeps the decisions taken: the same trials pruned at the same epochs.
    again = run_search(experiment(max_trials=6), runs_dir=tmp_path / "runs", export=False, printer=lines.append)
    assert {t.trial_id: t.pruned_at for t in again.trials[:5]} == {t.trial_id: t.pruned_at for t in result.trials}
    assert len(again.trials) == 6


@pytest.mark.slow
def test_a_chief_and_two_workers_prune_with_the_chiefs_oracle(tmp_path):
    config = tmp_path / "distprune.toml"
    config.write_text(
        'name = "distprune"\n[data]\nsource = "digits"\nbatch_size = 128\n[search]\nfilters = { choice = [[4], [8]] }\n'
        'dense_units = 8\nlearning_rate = { min = 1e-4, max = 1e-1, sampling = "log" }\n[tuner]\nmax_trials = 6\n'
        'max_epochs = 3\npruning = "successive_halving"\npruning_warmup_epochs = 0\npruning_min_epochs = 1\n'
        "pruning_min_trials = 2\n")
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    common = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env)
    chief = subprocess.Popen([DLIMAGING, "tune", str(config), "--chief", address, "--no-export"], **common)
    time.sleep(2)
    workers = [subprocess.Popen([DLIMAGING, "tune", str(config), "--worker", address, "--worker-id", f"tuner{i}"],
                                **common) for i in (1, 2)]
    try:
        outputs = [w.communicate(timeout=400)[0] for w in workers]
        chief_output = chief.communicate(timeout=120)[0]
    finally:
        for process in [chief, *workers]:
            if process.poll() is None:
                process.kill()
    assert all(w.returncode == 0 for w in workers) and chief.returncode == 0, [*outputs, chief_output[-3000:]]
    numbers = [line.split("]")[0] for out in outputs for line in out.splitlines() if line.startswith("[trial")]
    assert len(numbers) == 6 and len(set(numbers)) == 6  # every trial exactly once
    results = json.loads((tmp_path / "runs" / "distprune" / "results.json").read_text())
    pruned = [t for t in results["trials"] if t["pruned_at"] is not None]
    assert pruned and all(t["epochs"] == t["pruned_at"] < 3 for t in pruned)  # stopped early, by the chief's rule
    assert results["summary"]["completed"] == 6 and results["summary"]["pruned"] == len(pruned)
