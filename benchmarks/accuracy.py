"""dlimaging's models beside the published figures, on MNIST-1D and on scikit-learn's digits.

Every model is trained the way a user trains it, by `dlimaging.train` (what `dlimaging train`
runs: a 10% validation split taken from the training data, early stopping on the validation loss
with the best weights restored), over 3 seeds (the seed sets the validation split and the initial
weights), and scored on a fixed test set:

* **MNIST-1D**: the paper's default split (Greydanus & Kobak, ICML 2024): 4,000 training signals
  (3,600 train + 400 validation here) and its 1,000 test signals, generated locally.
* **Digits**: scikit-learn's own split in its SVC example: the first half of the 1,797 images for
  training (809 train + 90 validation here), the second half (898 images, other writers) for test.

Rows: logistic regression (`build_mlp(hidden_units=())`), the default MLP, the default CNN, the
best shipped search's model retrained with fixed arguments (`tuning/mnist1d_resnet.toml`,
`tuning/digits_resnet.toml`; the search itself is not rerun), and a residual CNN with dilation.
Bars (on the mean over the seeds; exit 1 when one is missed): each row at least the published
figure of its kind.

Usage:
    python benchmarks/accuracy.py [--seeds 0 1 2] [--data mnist1d digits] [--rows TEXT ...] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np
from _common import machine, quiet_tensorflow

# The best trial of `tuning/mnist1d_resnet.toml` (trial 4 of 12: 81k parameters, 99.10% test; its
# values replayed from the search's seeded random oracle, which draws them before any training).
MNIST1D_BEST = dict(block="residual", filters=(32, 64, 64), kernel_size=5, activation="gelu", batch_norm=True,
                    pooling="max", head="global_avg", dense_units=(), dropout=0.1, optimizer="adamw",
                    weight_decay=1.9e-4, learning_rate=3.68e-3, schedule="cosine", warmup_epochs=3)
# The best trial of `tuning/digits_resnet.toml` (trial 5 of 6: 270k parameters, 180/180 on the digits
# source's own test split; docs/benchmarks.md).
DIGITS_BEST = dict(block="residual", filters=(64, 128), kernel_size=3, batch_norm=True, pooling="max",
                   head="global_avg", dense_units=(), dropout=0.0, optimizer="adamw", weight_decay=1.34e-4,
                   learning_rate=4.67e-3, schedule="cosine", warmup_epochs=3, label_smoothing=0.1,
                   augmentation={"rotation": 0.05, "zoom": 0.1, "translation": 0.1})
# A residual CNN with dilated kernels: three blocks, rates 1, 2, 4 (MNIST-1D) or 1, 2 (8x8 images,
# where a rate of 4 would span the whole image).
DILATED = dict(block="residual", kernel_size=5, batch_norm=True, pooling=None, head="global_avg", dense_units=(),
               optimizer="adamw", weight_decay=1e-3, learning_rate=3e-3, schedule="cosine", warmup_epochs=3,
               label_smoothing=0.1)
ROWS = {
    "mnist1d": [
        # name, family, overrides, epochs (None: train's default), bar, published figure
        ("logistic regression", "mlp", {"hidden_units": ()}, None, 32.0, "32 (paper)"),
        ("default MLP", "mlp", {}, None, 68.0, "68 (paper)"),
        ("default CNN", "cnn", {}, None, 94.0, "94 (paper); GRU 91; human 96"),
        ("best search: mnist1d_resnet", "cnn", MNIST1D_BEST, 80, 98.6, "ResNet1D 98.6, TCN 98.8 (2602.13348)"),
        ("residual + dilation (1, 2, 4)", "cnn", dict(DILATED, filters=(32, 32, 64), dilation_rate=(1, 2, 4)), 80,
         98.6, "dilated CNN 97.3, ResNet1D 98.6 (2602.13348)"),
    ],
    "digits": [
        ("logistic regression", "mlp", {"hidden_units": ()}, None, None, ""),
        ("default MLP", "mlp", {}, None, None, ""),
        ("default CNN", "cnn", {}, None, 97.0, "SVC 97 (scikit-learn's example)"),
        # The 99% is the search's own test split (180/180 measured); on this harder split
        # (other writers) the bar is the published figure for this very split, the SVC's 97.
        ("best search: digits_resnet", "cnn", DIGITS_BEST, 60, 97.0, "540k-parameter CNN 98.75; SVC 97"),
        ("residual + dilation (1, 2)", "cnn",
         dict(DILATED, kernel_size=3, filters=(32, 64), dilation_rate=(1, 2), augmentation=DIGITS_BEST["augmentation"]),
         60, None, ""),
    ],
}


def digits_npz(folder: pathlib.Path) -> str:
    """scikit-learn's digits split as an .npz source: first half train, second half test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    half = len(digits.target) // 2
    x = (digits.images / 16.0).astype("float32")[..., None]
    path = folder / "digits_split.npz"
    np.savez(path, x=x[:half], y=digits.target[:half], x_test=x[half:], y_test=digits.target[half:])
    return str(path)


def svc_digits() -> float:
    """scikit-learn's own example: SVC(gamma=0.001) on the same split."""
    from sklearn import svm
    from sklearn.datasets import load_digits

    digits = load_digits()
    half = len(digits.target) // 2
    x = digits.images.reshape(len(digits.images), -1)
    model = svm.SVC(gamma=0.001).fit(x[:half], digits.target[:half])
    return 100.0 * float(np.mean(model.predict(x[half:]) == digits.target[half:]))


def run_row(source, family, overrides, epochs, seeds, folder, quick):
    import dlimaging as dli

    scores, seconds, epochs_run = [], [], []
    for seed in seeds:
        start = time.perf_counter()
        length = {"epochs": 4, "patience": 4} if quick else (
            {"epochs": epochs, "patience": epochs} if epochs else {})  # fixed length: the whole schedule
        result = dli.train(source, model=family, overrides=overrides, seed=seed, verbose=0,
                           output_dir=folder / f"run_{time.perf_counter_ns()}", **length)
        seconds.append(time.perf_counter() - start)
        scores.append(100.0 * result["metrics"]["test_accuracy"])
        epochs_run.append(result["epochs_run"])
    return scores, seconds, epochs_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data", nargs="+", choices=tuple(ROWS), default=list(ROWS))
    parser.add_argument("--rows", nargs="+", default=None, metavar="TEXT",
                        help="only the rows whose name holds one of these texts, e.g. 'default CNN'")
    parser.add_argument("--quick", action="store_true", help="4 epochs, one seed, no bars: a smoke run")
    args = parser.parse_args()
    quiet_tensorflow()
    seeds = args.seeds[:1] if args.quick else args.seeds
    total = time.perf_counter()
    lines, missed = [], []
    print(f"accuracy.py: {machine()}, {datetime.date.today()}, seeds {seeds}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        sources = {"mnist1d": "mnist1d", "digits": digits_npz(folder)}
        for data in args.data:
            lines += [f"\n**{data}**\n", "| model | test accuracy % (mean ± sd, [min–max]) | epochs run | s per run | published % | bar |",
                      "|---|---|---|---|---|---|"]
            if data == "digits":
                lines.append(f"| scikit-learn SVC(gamma=0.001), measured here | {svc_digits():.2f} | | | 97 | |")
            for name, family, overrides, epochs, bar, published in ROWS[data]:
                if args.rows and not any(text in name for text in args.rows):
                    continue
                scores, seconds, epochs_run = run_row(sources[data], family, overrides, epochs, seeds, folder, args.quick)
                mean = statistics.mean(scores)
                sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
                ok = bar is None or args.quick or mean >= bar
                if not ok:
                    missed.append(f"{data} {name}: {mean:.2f} < {bar}")
                line = (f"| {name} | {mean:.2f} ± {sd:.2f} [{min(scores):.1f}–{max(scores):.1f}] | "
                        f"{'/'.join(map(str, epochs_run))} | {statistics.mean(seconds):.0f} | {published} | "
                        f"{'' if bar is None else ('≥ %g %s' % (bar, 'not checked' if args.quick else 'ok' if ok else 'MISSED'))} |")
                lines.append(line)
                print(line, flush=True)
    minutes = (time.perf_counter() - total) / 60
    print("\n".join(lines))
    print(f"\ntotal wall time: {minutes:.1f} min")
    if missed:
        print("missed bars: " + "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
