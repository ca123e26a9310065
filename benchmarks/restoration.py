"""Gaussian denoising (σ = 25/255) of held-out photographs: dlimaging's U-Net against TV and BM3D.

The data is `tuning/denoise_unet.toml`'s: scikit-image's sample photographs, grey, split by
image with its seed, so the test photographs are never seen in training nor in the choice of
TV's weight. Each validation and test photograph is corrupted once with a seeded draw, and
every method sees the same noisy images. The photographs are scored whole (mean PSNR and SSIM
over the test images, as denoising papers report them); `--crop 128` scores 128×128 crops
instead (`--max-crops` of them): on flat crops PSNR soars and their mean is unstable. In one
run, PSNR and SSIM (scikit-image's, `data_range` = the data's `max_val`) of:

* the noisy input;
* `skimage.restoration.denoise_tv_chambolle`, its weight chosen on the validation images;
* BM3D (the `bm3d` package on PyPI, `sigma_psd` = the true σ: BM3D is told the noise level);
* dlimaging's U-Net: `run_search` on `tuning/denoise_unet.toml` (its budget, timed), or an
  exported model given with `--model` (then the training time is the one recorded for it);
* Noise2Void: `run_search` on `tuning/n2v_unet.toml` (the same photographs and noise, but trained
  and validated on the noisy patches alone), or an export given with `--n2v-model`.

Bars: the U-Net's mean test PSNR is at least 1 dB above TV's and at least BM3D's (issue 22), and
Noise2Void's at least TV's; each search tuned here at most 30 minutes. The gaps to BM3D (and
Noise2Void's to the supervised U-Net) are printed. `--quick` tunes each
network for 1 trial of 1 epoch of 64 patches: a check that the whole run works, not a measurement.

Usage:
    python benchmarks/restoration.py [--model saved_models/denoise_unet] [--n2v-model saved_models/n2v_unet]
                                     [--crop 128] [--max-crops 40] [--skip-unet] [--skip-n2v] [--quick]
                                     [--figure docs/images/restoration.png]
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
EXPERIMENT = ROOT / "tuning" / "denoise_unet.toml"
N2V_EXPERIMENT = ROOT / "tuning" / "n2v_unet.toml"
BAR_DB = 1.0
TUNE_MINUTES_BAR = 30.0  # each tuning file, on 2 idle cores (issue 22)
TV_WEIGHTS = (0.04, 0.06, 0.08, 0.10, 0.12, 0.15, 0.2)
# Run Chambolle's iterations to convergence: with scikit-image's defaults (eps 2e-4, 200 iterations)
# it stops early on some images, and the PSNR jumps by 5 dB from one weight to the next (moon, 0.1).
TV_OPTIONS = {"eps": 1e-5, "max_num_iter": 1000}


def pieces(items, names, size, limit):
    """The named images whole (size 0), or their non-overlapping size×size crops, at most `limit`,
    spread evenly over them."""
    from dlimaging.data.restoration import tiles

    if not size:
        return [items[name] for name in names]
    cut = [t for name in names for t in tiles(items[name], (size, size))]
    if len(cut) > limit:
        cut = [cut[i] for i in np.linspace(0, len(cut) - 1, limit).round().astype(int)]
    return cut


def scores(restored, clean, max_val, clip=True):
    """Mean PSNR and SSIM over the crops; a restored image is clipped to [0, max_val] (the noisy input is not)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    restored = [np.clip(r, 0, max_val) for r in restored] if clip else restored
    psnr = [peak_signal_noise_ratio(c[..., 0], r[..., 0], data_range=max_val) for r, c in zip(restored, clean)]
    ssim = [structural_similarity(c[..., 0], r[..., 0], data_range=max_val) for r, c in zip(restored, clean)]
    return float(np.mean(psnr)), float(np.mean(ssim))


def tv_denoise(noisy, weight):
    from skimage.restoration import denoise_tv_chambolle

    return [denoise_tv_chambolle(n[..., 0], weight=weight, **TV_OPTIONS)[..., None] for n in noisy]


def best_tv_weight(noisy, clean, max_val):
    """The weight of `TV_WEIGHTS` with the best mean PSNR on these images, and every weight's PSNR."""
    tried = {w: scores(tv_denoise(noisy, w), clean, max_val)[0] for w in TV_WEIGHTS}
    return max(tried, key=tried.get), tried


def bm3d_denoise(noisy, sigma):
    import bm3d

    start = time.perf_counter()
    restored = [np.asarray(bm3d.bm3d(n[..., 0], sigma_psd=sigma), "float32")[..., None] for n in noisy]
    return restored, time.perf_counter() - start


def unet_restore(export_path, noisy):
    import tensorflow as tf

    folder = max((p.parent for p in pathlib.Path(export_path).rglob("saved_model.pb")), key=lambda p: p.name)
    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    start = time.perf_counter()
    restored = [signature(image=tf.constant(n[None]))["restored"].numpy()[0] for n in noisy]
    return restored, time.perf_counter() - start, folder


def figure(shown: dict, names, path, max_val, size=128):
    """One row: each method's result on the centre crop of the first test image (the whole
    photograph, or the first `--crop` piece), with the crop's PSNR (noisy, TV, BM3D, U-Net,
    Noise2Void, clean: those that were run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.metrics import peak_signal_noise_ratio

    clean = shown["clean"][0][..., 0]
    size = min(size, *clean.shape[:2])
    top, left = (clean.shape[0] - size) // 2, (clean.shape[1] - size) // 2
    crop = (slice(top, top + size), slice(left, left + size))
    fig, axes = plt.subplots(1, len(shown), figsize=(2.2 * len(shown), 2.6))
    for ax, (name, images) in zip(axes, shown.items()):
        image = np.clip(images[0][..., 0], 0, max_val) if name != "noisy" else images[0][..., 0]
        ax.imshow(image[crop], cmap="gray", vmin=0, vmax=max_val)
        title = name if name == "clean" else (
            f"{name}\n{peak_signal_noise_ratio(clean[crop], image[crop], data_range=max_val):.2f} dB")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{names[0]}, centre {size}x{size} crop, sigma = 25/255 (PSNR of the crop)", fontsize=9)
    fig.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tuned_export(path, given, quick: bool):
    """(export folder, what the training cost in words, its minutes or None): `given`, or a search on
    the experiment at `path` now, timed."""
    import dataclasses

    import dlimaging as dli
    from dlimaging.tuning.search import run_search

    if given:
        return pathlib.Path(given), "", None
    experiment = dli.load_experiment(path)
    if quick:
        experiment = dataclasses.replace(experiment.with_budgets(1, 1),
                                         data=dataclasses.replace(experiment.data, patches_per_epoch=64))
    workdir = tempfile.mkdtemp(prefix="restoration_bench_")
    start = time.perf_counter()
    result = run_search(experiment, runs_dir=workdir, export_dir=workdir, printer=lambda line: print("  " + line, flush=True))
    minutes = (time.perf_counter() - start) / 60
    return pathlib.Path(result.export_path), f"; tuned in {minutes:.1f} min", minutes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="an exported U-Net (saved_models/denoise_unet); default: tune one now")
    parser.add_argument("--crop", type=int, default=0, help="score crops of this size; default 0: whole images")
    parser.add_argument("--max-crops", type=int, default=40)
    parser.add_argument("--skip-unet", action="store_true", help="leave the supervised U-Net out")
    parser.add_argument("--n2v-model", help="an exported Noise2Void U-Net; default: tune tuning/n2v_unet.toml now")
    parser.add_argument("--skip-n2v", action="store_true", help="leave Noise2Void out")
    parser.add_argument("--quick", action="store_true", help="1 trial of 1 epoch of 64 patches: checks the run only")
    parser.add_argument("--figure", metavar="PNG", help="also draw every method on one crop of a test photograph "
                        "(the README's figure: docs/images/restoration.png)")
    args = parser.parse_args(argv)
    quiet_tensorflow()
    import dlimaging as dli
    from dlimaging.data.corruption import describe
    from dlimaging.data.restoration import clean_items, corrupt_once

    experiment = dli.load_experiment(EXPERIMENT)
    settings = experiment.data
    data = dli.load_dataset(settings.source, task=experiment.model.task, corruption=settings.corruption,
                            patch_size=settings.patch_size, patches_per_epoch=settings.patches_per_epoch,
                            validation_split=settings.validation_split, test_split=settings.test_split,
                            seed=experiment.seed)
    (step,) = data.corruption
    sigma = step["sigma"][0]
    items, max_val = clean_items(settings.source)
    clean = {split: pieces(items, data.items[split], args.crop, args.max_crops) for split in ("validation", "test")}
    # Each image or crop corrupted once, with its own seeded draw: every method sees the same noise.
    noisy = {split: [corrupt_once(c[None], data.corruption, 1000 * (i + 1) + k, max_val)[0]
                     for k, c in enumerate(clean[split])] for i, split in enumerate(("validation", "test"))}
    print(f"{machine()}")
    print(f"{settings.source}: {describe(data.corruption)}; training images {', '.join(data.items['train'])}; "
          f"validation {', '.join(data.items['validation'])}; test {', '.join(data.items['test'])}")
    what = f"crops of {args.crop}x{args.crop}" if args.crop else "whole images"
    print(f"{len(clean['validation'])} validation and {len(clean['test'])} test {what}")

    rows = [("noisy input", *scores(noisy["test"], clean["test"], max_val, clip=False), "")]
    weight, tried = best_tv_weight(noisy["validation"], clean["validation"], max_val)
    print("TV weight on validation (PSNR): " + ", ".join(f"{w:g}: {p:.2f}" for w, p in tried.items()))
    start = time.perf_counter()
    tv = tv_denoise(noisy["test"], weight)
    rows.append((f"TV (Chambolle), weight {weight:g} tuned on validation", *scores(tv, clean["test"], max_val),
                 f"{time.perf_counter() - start:.1f} s"))
    # For reference only: TV's weight chosen on the test images themselves (an upper bound for TV).
    oracle, tried = best_tv_weight(noisy["test"], clean["test"], max_val)
    print("TV weight on test (PSNR): " + ", ".join(f"{w:g}: {p:.2f}" for w, p in tried.items()))
    rows.append((f"TV, weight {oracle:g} chosen on the test images (reference)",
                 *scores(tv_denoise(noisy["test"], oracle), clean["test"], max_val), ""))
    restored, bm3d_seconds = bm3d_denoise(noisy["test"], sigma)
    shown = {"noisy": noisy["test"], "TV": tv, "BM3D": restored}  # for --figure
    rows.append(("BM3D (sigma_psd = true sigma)", *scores(restored, clean["test"], max_val),
                 f"{bm3d_seconds:.1f} s ({bm3d_seconds / len(restored):.2f} s/crop)"))
    networks = {}  # the supervised U-Net and Noise2Void: (PSNR, SSIM)
    tune_minutes = {}  # their search's wall time, when searched here
    for name, path, given, skip in (("U-Net", EXPERIMENT, args.model, args.skip_unet),
                                    ("Noise2Void", N2V_EXPERIMENT, args.n2v_model, args.skip_n2v)):
        if skip:
            continue
        export_path, training, minutes = tuned_export(path, given, args.quick)
        tune_minutes[name] = minutes
        restored, seconds, folder = unet_restore(export_path, noisy["test"])
        networks[name] = scores(restored, clean["test"], max_val)
        shown[name] = restored
        rows.append((f"dlimaging {name} ({folder.parent.name}/{folder.name})", *networks[name],
                     f"{seconds:.1f} s{training}"))

    print(f"\n{'method':<58}{'PSNR (dB)':>10}{'SSIM':>8}   time")
    for name, psnr, ssim, seconds in rows:
        print(f"{name:<58}{psnr:>10.2f}{ssim:>8.3f}   {seconds}")
    tv_psnr, bm3d_psnr = rows[1][1], rows[3][1]
    print(f"BM3D - TV: {bm3d_psnr - tv_psnr:+.2f} dB")
    passed = True
    if "U-Net" in networks:
        unet = networks["U-Net"][0]
        print(f"U-Net - TV: {unet - tv_psnr:+.2f} dB (bar: >= +{BAR_DB:g}); U-Net - BM3D: {unet - bm3d_psnr:+.2f} dB "
              "(bar: >= 0)")
        passed = unet >= tv_psnr + BAR_DB and unet >= bm3d_psnr
    if "Noise2Void" in networks:
        n2v = networks["Noise2Void"][0]
        versus = f"; Noise2Void - U-Net: {n2v - networks['U-Net'][0]:+.2f} dB" if "U-Net" in networks else ""
        print(f"Noise2Void - TV: {n2v - tv_psnr:+.2f} dB (bar: >= 0); Noise2Void - BM3D: {n2v - bm3d_psnr:+.2f} dB"
              + versus)
        passed = passed and n2v >= tv_psnr
    for name, minutes in tune_minutes.items():
        if minutes is not None:
            print(f"{name} tuned in {minutes:.1f} min (bar: <= {TUNE_MINUTES_BAR:g})")
            passed = passed and minutes <= TUNE_MINUTES_BAR
    if not networks:
        print("No network measured (--skip-unet --skip-n2v): no bar checked")
    if args.figure:
        shown["clean"] = clean["test"]
        print(f"Figure: {figure(shown, data.items['test'], args.figure, max_val)}")
    return 0 if passed or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
