"""The cost of `dlimaging tune` over a plain keras-tuner script, and its memory across trials.

Both ways run the same random search in one run (same space, seed, trials and
epochs on the digits), each in a fresh process:

* dlimaging: `run_search` on an experiment, with its progress lines, trial
  logs, TensorBoard HParams logs, results files, plots, test evaluation and
  verified export of the best model;
* plain: `keras_tuner.RandomSearch` over the same hypermodel, then
  `get_best_models`, `evaluate` and `model.export`.

It prints the wall-time ratio (must be <= 1.10) and the resident memory after
trial 30 minus after trial 5 of each (dlimaging's must be below 100 MB and at most half of
plain Keras Tuner's, issue 23).

    python benchmarks/tuning_overhead.py [--trials 30]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

from _common import machine, quiet_tensorflow, rss_mb

quiet_tensorflow()

SEARCH = {
    "filters": {"choice": [[8, 16], [16, 32]]},
    "activation": {"choice": ["relu", "elu", "gelu"]},
    "dropout": {"min": 0.0, "max": 0.3, "step": 0.1},
    "learning_rate": {"min": 1e-3, "max": 1e-2, "sampling": "log"},
    "dense_units": 32,
}


def experiment(trials: int, epochs: int):
    from dlimaging.tuning.experiment import parse_experiment

    return parse_experiment({
        "name": "overhead", "seed": 0, "data": {"source": "digits", "batch_size": 64},
        "search": SEARCH,
        "tuner": {"algorithm": "random", "max_trials": trials, "max_epochs": epochs, "early_stopping_patience": 3},
    })


def run_dlimaging(trials: int, epochs: int, workdir: str) -> dict:
    from dlimaging.tuning.search import run_search

    memory = []

    def printer(line):
        if line.startswith("[trial"):
            memory.append(rss_mb())

    start = time.perf_counter()
    run_search(experiment(trials, epochs), runs_dir=f"{workdir}/runs", export_dir=f"{workdir}/exports", printer=printer)
    return {"seconds": time.perf_counter() - start, "memory": memory}


def run_plain(trials: int, epochs: int, workdir: str) -> dict:
    import keras
    import keras_tuner as kt

    from dlimaging.data.dataset import load_dataset
    from dlimaging.tuning.hypermodels import CNNHyperModel

    memory = []

    class Tuner(kt.RandomSearch):
        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            memory.append(rss_mb())

    start = time.perf_counter()
    data = load_dataset("digits", batch_size=64, seed=0)
    keras.utils.set_random_seed(0)
    tuner = Tuner(CNNHyperModel(data.input_shape, data.num_classes, space=SEARCH), objective="val_accuracy",
                  max_trials=trials, seed=0, directory=f"{workdir}/plain", project_name="overhead")
    tuner.search(data.train, validation_data=data.validation, epochs=epochs, verbose=0, shuffle=False,
                 callbacks=[keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=3)])
    best = tuner.get_best_models(1)[0]
    best.evaluate(data.test, verbose=0)
    best.export(f"{workdir}/plain_export", verbose=False)
    return {"seconds": time.perf_counter() - start, "memory": memory}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--mode", choices=("dlimaging", "plain"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.mode:
        with tempfile.TemporaryDirectory() as workdir:
            runner = run_dlimaging if args.mode == "dlimaging" else run_plain
            print(json.dumps(runner(args.trials, args.epochs, workdir)))
        return 0

    results = {}
    for mode in ("plain", "dlimaging"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--trials", str(args.trials),
                              "--epochs", str(args.epochs)], capture_output=True, text=True, check=True)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    ratio = results["dlimaging"]["seconds"] / results["plain"]["seconds"]
    print(f"machine: {machine()}")
    print(f"random search on the digits: {args.trials} trials x {args.epochs} epoch(s), same space and seed")
    for mode in ("plain", "dlimaging"):
        memory = results[mode]["memory"]
        growth = memory[min(29, len(memory) - 1)] - memory[min(4, len(memory) - 1)]
        print(f"{mode:10} {results[mode]['seconds']:7.1f} s   RSS after trial 5: {memory[min(4, len(memory) - 1)]:6.0f} MB, "
              f"after trial {min(30, len(memory))}: {memory[min(29, len(memory) - 1)]:6.0f} MB (growth {growth:+.0f} MB)")
    growth, plain = (results[mode]["memory"][min(29, len(results[mode]["memory"]) - 1)]
                     - results[mode]["memory"][min(4, len(results[mode]["memory"]) - 1)]
                     for mode in ("dlimaging", "plain"))
    print(f"wall-time ratio dlimaging / plain: {ratio:.3f} (must be <= 1.10)")
    print(f"dlimaging memory growth, trial 5 -> trial 30: {growth:+.0f} MB (must be < 100 MB and at most half "
          f"of plain Keras Tuner's {plain:+.0f} MB: {'met' if growth < 100 and (growth <= plain / 2 or plain < 20) else 'MISSED'})")
    return 0 if ratio <= 1.10 and growth < 100 and (growth <= plain / 2 or plain < 20) else 1


if __name__ == "__main__":
    sys.exit(main())
