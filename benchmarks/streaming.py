"""Streaming from disk (issue 19): memory of `dlimaging train` on growing folders, and speed against Keras.

Memory: peak RSS (the child's own `getrusage`) of `dlimaging train --cache none` and `--cache disk`
for one epoch over generated folders of COUNT and 8 x COUNT 16-bit 64 x 64 TIFFs, in two classes.
Each peak is the median of REPEATS runs. Bar: the peak grows by less than 50 MB from the small
folder to the large one. `--baseline REF`
also measures the code of git revision REF (the loader before streaming: 33e2b49) on the same
images saved as 16-bit PNGs, which it could read (it read no TIFF).

Speed: training samples/s of `load_dataset` (cache "none": every epoch decodes) against
`keras.utils.image_dataset_from_directory` on 4 x COUNT 8-bit PNGs, the same CNN and batch size,
no tf.data cache on either side (every epoch reads and decodes the files), median of REPEATS runs;
each run is a fresh model and pipeline trained two epochs, timed on the second (the first also
traces the training step); the two ways alternate which goes first. Bar: ratio >= 1.0.

    python benchmarks/streaming.py                 # COUNT = 2000: 2,000 and 16,000 images; 8,000 for speed
    python benchmarks/streaming.py --quick         # COUNT = 100, one repeat: checks that it runs
    python benchmarks/streaming.py --count 500 --repeats 3
    python benchmarks/streaming.py --baseline 33e2b49  # also the in-memory loader of that revision

Exits 1 when a bar is missed. The generated folders go to a temporary folder (or --workdir), removed.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from _common import machine, quiet_tensorflow

quiet_tensorflow()
ROOT = pathlib.Path(__file__).resolve().parents[1]
GROWTH_BAR_MB = 50.0
SPEED_BAR = 1.0
SIZE = 64
CHILD = """
import resource, sys
from dlimaging.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""".replace("import resource", "import json, resource")


def make_folder(root: pathlib.Path, count: int, wide: bool, suffix: str = ".png") -> pathlib.Path:
    """`count` random images of 64 x 64 in two classes: 16-bit when `wide` (TIFF for suffix ".tif"),
    else 8-bit PNGs."""
    import numpy as np
    import tifffile
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / ("bright" if i % 2 else "dark")
        folder.mkdir(parents=True, exist_ok=True)
        if wide:
            pixels = rng.integers(0, 30000, (SIZE, SIZE), dtype=np.uint16) + (30000 if i % 2 else 0)
        else:
            pixels = rng.integers(0, 120, (SIZE, SIZE), dtype=np.uint8) + (120 if i % 2 else 0)
        path = folder / f"{i:06d}{suffix}"
        if suffix == ".tif":
            tifffile.imwrite(path, pixels.astype(np.uint16))
        else:
            Image.fromarray(pixels.astype(np.uint16 if wide else np.uint8)).save(path)
    return root


def peak_rss(folder: pathlib.Path, cache: str | None, out: pathlib.Path, code: pathlib.Path = ROOT) -> float:
    """Peak RSS in MB of one epoch of `dlimaging train --cache CACHE` in a fresh process, running
    the package found in `code` (None: a revision without --cache)."""
    command = [sys.executable, "-c", CHILD, "train", "--data", str(folder), "--epochs", "1", "--batch-size", "64",
               "--set", "filters=8,16", "--output", str(out), "--seed", "0"]
    command += ["--cache", cache] if cache else []
    done = subprocess.run(command, capture_output=True, text=True, cwd=out.parent,
                          env={**os.environ, "PYTHONPATH": str(code)})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines or json.loads(lines[-1])["code"]:
        raise SystemExit(f"train failed on {folder} (cache {cache}):\n{done.stderr[-2000:]}")
    return float(json.loads(lines[-1])["peak_mb"])


def baseline_code(work: pathlib.Path, ref: str) -> pathlib.Path:
    """The package as it was at git revision `ref`, unpacked under `work`."""
    code = work / f"code_{ref}"
    code.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "dlimaging"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(code)], input=archive.stdout, check=True)
    return code


def median_peak(folder: pathlib.Path, cache: str | None, out: pathlib.Path, repeats: int,
                code: pathlib.Path = ROOT) -> float:
    """The median over `repeats` fresh processes of `peak_rss` (a peak varies by some 10 MB run to run)."""
    return statistics.median(peak_rss(folder, cache, out.with_name(f"{out.name}_{k}"), code) for k in range(repeats))


def memory(work: pathlib.Path, count: int, baseline: str | None, repeats: int) -> bool:
    small = make_folder(work / f"wide_{count}", count, wide=True, suffix=".tif")
    large = make_folder(work / f"wide_{8 * count}", 8 * count, wide=True, suffix=".tif")
    ok = True
    print(f"\nMemory: peak RSS of one epoch of `dlimaging train`, 16-bit {SIZE}x{SIZE} TIFFs, median of {repeats}")
    print(f"{'cache':>6} | {count:>7} images | {8 * count:>7} images | growth | bar < {GROWTH_BAR_MB:g} MB")
    for cache in ("none", "disk"):
        peaks = [median_peak(folder, cache, work / f"run_{cache}_{folder.name}", repeats) for folder in (small, large)]
        growth = peaks[1] - peaks[0]
        ok &= growth < GROWTH_BAR_MB
        print(f"{cache:>6} | {peaks[0]:>10.0f} MB | {peaks[1]:>10.0f} MB | {growth:>+5.0f} MB | "
              f"{'ok' if growth < GROWTH_BAR_MB else 'MISSED'}")
    auto = run_auto(large, work)
    print(f"  auto | {auto}")
    if baseline:
        code = baseline_code(work, baseline)
        pngs = [make_folder(work / f"png_{n}", n, wide=True) for n in (count, 8 * count)]
        peaks = [peak_rss(folder, None, work / f"run_base_{folder.name}", code) for folder in pngs]  # one run each
        print(f"{baseline[:7]:>6} | {peaks[0]:>10.0f} MB | {peaks[1]:>10.0f} MB | {peaks[1] - peaks[0]:>+5.0f} MB | "
              "the in-memory loader of that revision, on the same images as 16-bit PNGs")
    decoded = 8 * count * SIZE * SIZE * 4 / 1e6
    print(f"(The decoded {8 * count} images are {decoded:.0f} MB as float32: what the in-memory loader held, "
          "twice over with its copy; `auto` caches them in memory only under a quarter of the available memory.)")
    return ok


def run_auto(folder: pathlib.Path, work: pathlib.Path) -> str:
    """What `cache="auto"` chooses for `folder`, in `load_dataset`'s own words."""
    import dlimaging as dli

    data = dli.load_dataset(str(folder), batch_size=64, cache="auto")
    return getattr(data, "cache_note", "") or "(no note)"


class EpochClock:
    """A Keras callback that records each epoch's wall time."""

    def __new__(cls):
        import keras

        class Clock(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self.start)

        return Clock()


def speed(work: pathlib.Path, count: int, repeats: int, batch_size: int = 32) -> bool:
    import keras
    import tensorflow as tf

    import dlimaging as dli

    folder = make_folder(work / f"narrow_{count}", count, wide=False)

    def ours():
        return dli.load_dataset(str(folder), validation_split=0.0, test_split=0.0, batch_size=batch_size,
                                cache="none").train

    def theirs():
        ds = keras.utils.image_dataset_from_directory(folder, labels="inferred", color_mode="grayscale",
                                                      image_size=(SIZE, SIZE), batch_size=batch_size, seed=0,
                                                      verbose=False)
        return ds.map(lambda x, y: (x / 255.0, y)).prefetch(tf.data.AUTOTUNE)

    rates = {"load_dataset": [], "image_dataset_from_directory": []}
    for _ in range(repeats):
        ways = (("load_dataset", ours), ("image_dataset_from_directory", theirs))
        for name, make in ways if len(rates["load_dataset"]) % 2 == 0 else ways[::-1]:  # ABBA: no order bias
            keras.utils.set_random_seed(0)
            model = dli.build_cnn((SIZE, SIZE, 1), 2, filters=(8, 16))
            clock = EpochClock()
            model.fit(make(), epochs=2, verbose=0, callbacks=[clock])  # a fresh pipeline: nothing cached
            rates[name].append(count / clock.seconds[-1])  # the second epoch: the first also traces the step
    ours_rate, theirs_rate = (statistics.median(rates[k]) for k in rates)
    ratio = ours_rate / theirs_rate
    print(f"\nSpeed: {count} 8-bit PNGs, batch {batch_size}, median of {repeats}: load_dataset {ours_rate:.0f} "
          f"samples/s, image_dataset_from_directory {theirs_rate:.0f} samples/s, ratio {ratio:.2f} "
          f"(bar >= {SPEED_BAR:g}: {'ok' if ratio >= SPEED_BAR else 'MISSED'})")
    for name, values in rates.items():
        print(f"  {name}: " + ", ".join(f"{v:.0f}" for v in values) + " samples/s")
    return ratio >= SPEED_BAR


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="the small folder (the large one is 8x, speed 4x)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="COUNT 100, one repeat: checks that it runs")
    parser.add_argument("--only", choices=("memory", "speed"), help="run one of the two parts")
    parser.add_argument("--baseline", metavar="REF", help="also measure the package at git revision REF")
    parser.add_argument("--workdir", help="where the folders are generated (default: a temporary folder)")
    args = parser.parse_args()
    count, repeats = (100, 1) if args.quick else (args.count, args.repeats)
    print(machine())
    with tempfile.TemporaryDirectory(prefix="dlimaging-streaming-", dir=args.workdir) as work:
        ok = True
        if args.only != "speed":
            ok &= memory(pathlib.Path(work), count, args.baseline, repeats)
        if args.only != "memory":
            ok &= speed(pathlib.Path(work), 4 * count, repeats)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
