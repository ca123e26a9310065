"""Segmentation of held-out synthetic cells: dlimaging's tuned U-Net against scikit-image's classical pipeline.

The U-Net is the export of `tuning/cells_unet.toml` (400 `cells` images of 64×64, each at a noise
level drawn in 0.1-0.6, seed 0), given with `--model`, or searched here with that file's budget (timed). The test images
are new: `cells` with another seed (1000), never seen in training nor in the search, at two noise
levels, LOW and HIGH, and 96×96 pixels (the export takes any size). The classical pipeline is the
textbook one: Gaussian smoothing (σ = 1), Otsu's threshold, a morphological opening (disk of
radius 1) and holes filled. Each is scored by the foreground (cell) IoU and Dice over all the test
pixels together.

Bar: the U-Net's foreground IoU is at least the classical pipeline's + 0.10 at the high noise
level, and not below it at the low one.

Usage:
    python benchmarks/segmentation.py [--model saved_models/cells_unet] [--count 40]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np
from _common import machine, quiet_tensorflow

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "tuning" / "cells_unet.toml"
NOISE = {"low": 0.1, "high": 0.5}
TEST_SEED, SIZE = 1000, 96
BAR = 0.10


def classical(image: np.ndarray) -> np.ndarray:
    """Gaussian smoothing, Otsu's threshold, an opening and holes filled: the foreground (bool)."""
    from scipy import ndimage
    from skimage import filters, morphology

    smooth = filters.gaussian(image, sigma=1.0)
    foreground = smooth > filters.threshold_otsu(smooth)
    foreground = ndimage.binary_opening(foreground, structure=morphology.disk(1))
    return ndimage.binary_fill_holes(foreground)


def foreground_scores(truth: np.ndarray, guess: np.ndarray) -> tuple[float, float]:
    """(IoU, Dice) of the foreground, over all the pixels together."""
    truth, guess = truth.astype(bool), guess.astype(bool)
    intersection, union = np.sum(truth & guess), np.sum(truth | guess)
    return float(intersection / union), float(2 * intersection / (truth.sum() + guess.sum()))


def unet_foreground(export_path, images: np.ndarray) -> np.ndarray:
    from dlimaging.serving.exports import (
        exported_predictor,
        read_metadata,
        resolve_version_dir,
    )

    version = resolve_version_dir(export_path)
    predict = exported_predictor(version, read_metadata(version))
    return np.concatenate([predict(images[i:i + 8])["class_map"] for i in range(0, len(images), 8)]) > 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="an exported model (saved_models/NAME); default: search it here")
    parser.add_argument("--count", type=int, default=40, help="test images per noise level")
    args = parser.parse_args(argv)
    quiet_tensorflow()
    from dlimaging.data.cells import generate_cells

    print(machine())
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    model, train_seconds = args.model, None
    if model is None:
        from dlimaging.tuning.experiment import load_experiment
        from dlimaging.tuning.search import run_search

        workdir = tempfile.mkdtemp(prefix="bench_segmentation_")
        start = time.perf_counter()
        result = run_search(load_experiment(EXPERIMENT), runs_dir=workdir, export_dir=workdir,
                            printer=lambda line: print("  " + line, flush=True))
        train_seconds = time.perf_counter() - start
        model = str(result.export_path)
    print(f"U-Net: {model}" + (f" (searched in {train_seconds:.0f} s)" if train_seconds else ""))
    print(f"\n{'noise':<8}{'method':<32}{'IoU':>7}{'Dice':>7}")
    passed = True
    for level, noise in NOISE.items():
        images, masks = generate_cells(count=args.count, size=SIZE, noise=noise, seed=TEST_SEED)
        truth = masks > 0
        classic = np.stack([classical(image[..., 0]) for image in images])
        unet = unet_foreground(model, images)
        c_iou, c_dice = foreground_scores(truth, classic)
        u_iou, u_dice = foreground_scores(truth, unet)
        print(f"{level} {noise:<4}{'classical (Gaussian+Otsu+open+fill)':<32}{c_iou:>7.3f}{c_dice:>7.3f}")
        print(f"{level} {noise:<4}{'U-Net (cells_unet)':<32}{u_iou:>7.3f}{u_dice:>7.3f}")
        need = c_iou + (BAR if level == "high" else 0.0)
        ok = u_iou >= need
        passed &= ok
        print(f"         U-Net - classical IoU: {u_iou - c_iou:+.3f} (bar: >= +{BAR if level == 'high' else 0:.2f}) "
              f"{'ok' if ok else 'MISSED'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
