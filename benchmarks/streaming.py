"""Streaming from disk (issue 19): memory of `dlimaging train` on growing folders, and speed against Keras.

Memory: peak RSS (the child's own `getrusage`) of `dlimaging train --cache none` and `--cache disk`
for one epoch over generated folders of COUNT and 8 x COUNT 16-bit 64 x 64 images (PNG-16), in
two classes. Bar: the peak grows by less than 50 MB from the small folder to the large one.

Speed: training samples/s of `load_dataset` (cache "none": every epoch decodes) against
`keras.utils.image_dataset_from_directory` on 4 x COUNT 8-bit PNGs, the same CNN and batch size,
no tf.data cache on either side, median of REPEATS one-epoch runs. Bar: ratio >= 1.0.

    python benchmarks/streaming.py                 # COUNT = 2000: 2,000 and 16,000 images; 8,000 for speed
    python benchmarks/streaming.py --quick         # COUNT = 100, one repeat: checks that it runs
    python benchmarks/streaming.py --count 500 --repeats 3

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


def make_folder(root: pathlib.Path, count: int, wide: bool) -> pathlib.Path:
    """`count` random images of 64 x 64 in two classes: 16-bit PNGs when `wide`, else 8-bit."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / ("bright" if i % 2 else "dark")
        folder.mkdir(parents=True, exist_ok=True)
        if wide:
            pixels = rng.integers(0, 30000, (SIZE, SIZE), dtype=np.uint16) + (30000 if i % 2 else 0)
        else:
            pixels = rng.integers(0, 120, (SIZE, SIZE), dtype=np.uint8) + (120 if i % 2 else 0)
        Image.fromarray(pixels.astype(np.uint16 if wide else np.uint8)).save(folder / f"{i:06d}.png")
    return root


def peak_rss(folder: pathlib.Path, cache: str, out: pathlib.Path) -> float:
    """Peak RSS in MB of one epoch of `dlimaging train --cache CACHE` in a fresh process."""
    command = [sys.executable, "-c", CHILD, "train", "--data", str(folder), "--epochs", "1", "--batch-size", "64",
               "--cache", cache, "--set", "filters=8,16", "--output", str(out), "--seed", "0"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=out.parent,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines or json.loads(lines[-1])["code"]:
        raise SystemExit(f"train failed on {folder} (cache {cache}):\n{done.stderr[-2000:]}")
    return float(json.loads(lines[-1])["peak_mb"])


def memory(work: pathlib.Path, count: int) -> bool:
    small = make_folder(work / f"wide_{count}", count, wide=True)
    large = make_folder(work / f"wide_{8 * count}", 8 * count, wide=True)
    ok = True
    print(f"\nMemory: peak RSS of one epoch of `dlimaging train`, 16-bit {SIZE}x{SIZE} PNGs")
    print(f"{'cache':>6} | {count:>7} images | {8 * count:>7} images | growth | bar < {GROWTH_BAR_MB:g} MB")
    for cache in ("none", "disk"):
        peaks = [peak_rss(folder, cache, work / f"run_{cache}_{folder.name}") for folder in (small, large)]
        growth = peaks[1] - peaks[0]
        ok &= growth < GROWTH_BAR_MB
        print(f"{cache:>6} | {peaks[0]:>10.0f} MB | {peaks[1]:>10.0f} MB | {growth:>+5.0f} MB | "
              f"{'ok' if growth < GROWTH_BAR_MB else 'MISSED'}")
    decoded = 8 * count * SIZE * SIZE * 4 / 1e6
    print(f"(The decoded {8 * count} images are {decoded:.0f} MB as float32: what the in-memory loader held, "
          "twice over with its copy; `auto` caches them in memory only under a quarter of the available memory.)")
    return ok


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
        for name, make in (("load_dataset", ours), ("image_dataset_from_directory", theirs)):
            keras.utils.set_random_seed(0)
            model = dli.build_cnn((SIZE, SIZE, 1), 2, filters=(8, 16))
            data = make()  # a fresh pipeline: nothing decoded is kept from an earlier run
            start = time.perf_counter()
            model.fit(data, epochs=1, verbose=0)
            rates[name].append(count / (time.perf_counter() - start))
    ours_rate, theirs_rate = (statistics.median(rates[k]) for k in rates)
    ratio = ours_rate / theirs_rate
    print(f"\nSpeed: {count} 8-bit PNGs, batch {batch_size}, median of {repeats}: load_dataset {ours_rate:.0f} "
          f"samples/s, image_dataset_from_directory {theirs_rate:.0f} samples/s, ratio {ratio:.2f} "
          f"(bar >= {SPEED_BAR:g}: {'ok' if ratio >= SPEED_BAR else 'MISSED'})")
    return ratio >= SPEED_BAR


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="the small folder (the large one is 8x, speed 4x)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="COUNT 100, one repeat: checks that it runs")
    parser.add_argument("--workdir", help="where the folders are generated (default: a temporary folder)")
    args = parser.parse_args()
    count, repeats = (100, 1) if args.quick else (args.count, args.repeats)
    print(machine())
    with tempfile.TemporaryDirectory(prefix="dlimaging-streaming-", dir=args.workdir) as work:
        ok = memory(pathlib.Path(work), count)
        ok &= speed(pathlib.Path(work), 4 * count, repeats)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
