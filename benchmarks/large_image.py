"""Prediction on a large image in bounded memory: `dlimaging predict` on an 8,192 × 8,192 16-bit
image with a small restoration U-Net, in a subprocess, tiled (`--tiles auto` under `--memory`).

The image (smooth structures plus noise, uint16) is written as a 16-bit TIFF (or PNG, or .npy), the U-Net
(depth 2, 16 filters, untrained: the cost of a forward pass does not depend on the weights) is
exported with `export_saved_model`, and `python -m dlimaging.cli predict` restores the image in a child
process. Reported: the child's peak RSS (`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`), its
wall time, and the tile size `--tiles auto` chose. The restored image is checked for its shape.

Bar: peak RSS under 3 GB (exit status 1 otherwise).

Usage:
    python benchmarks/large_image.py [--size 8192] [--memory 1] [--tiles auto] [--format tif|png|npy]
    python benchmarks/large_image.py --size 1024      # a quick check
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from _common import machine, quiet_tensorflow

ROOT = pathlib.Path(__file__).resolve().parents[1]
BAR_GB = 3.0


def write_image(folder: pathlib.Path, size: int, kind: str) -> pathlib.Path:
    """A size × size uint16 image of smooth blobs and noise, as a 16-bit PNG or .npy, written in bands
    of rows so that making it needs no float copy of the whole image."""
    rng = np.random.default_rng(0)
    image = np.empty((size, size), "uint16")
    x = np.linspace(0, 12 * np.pi, size, dtype="float32")
    for start in range(0, size, 1024):
        rows = np.linspace(0, 12 * np.pi, size, dtype="float32")[start:start + 1024, None]
        band = 0.5 + 0.3 * np.sin(rows) * np.cos(x[None, :]) + rng.normal(0, 0.05, (len(rows), size))
        image[start:start + 1024] = np.clip(band * 65535, 0, 65535).astype("uint16")
    path = folder / f"large.{kind}"
    if kind == "npy":
        np.save(path, image)
    elif kind == "tif":
        import tifffile

        tifffile.imwrite(path, image)
    else:
        from PIL import Image

        Image.fromarray(image).save(path)  # mode I;16: a 16-bit PNG
    return path


def export_unet(folder: pathlib.Path, depth: int, filters: int) -> pathlib.Path:
    from dlimaging.models import build_unet
    from dlimaging.serving.export import export_saved_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_unet((64, 64, 1), depth=depth, filters=filters, compile=False)
    return export_saved_model(model, folder / "large_unet")


def run_predict(export: pathlib.Path, image: pathlib.Path, out: pathlib.Path, tiles: str, memory: float) -> dict:
    """`dlimaging predict` in a child process: its exit status, wall time and peak RSS (GB)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "dlimaging.cli", "predict", str(export), str(image), "--out", str(out),
               "--tiles", tiles, "--memory", str(memory)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KB on Linux
    return {"code": done.returncode, "seconds": seconds, "peak_gb": peak_kb / 1024**2,
            "stdout": done.stdout.strip(), "stderr": done.stderr.strip()}


def large_image(size: int = 8192, memory: float = 1.0, tiles: str = "auto", kind: str = "tif",
                depth: int = 2, filters: int = 16) -> dict:
    """Runs the benchmark in a temporary folder; returns its figures (see the module's docstring)."""
    from dlimaging.serving.exports import read_metadata
    from dlimaging.serving.tiling import GIB, plan_tiles

    with tempfile.TemporaryDirectory(prefix="dlimaging-large-") as tmp:
        folder = pathlib.Path(tmp)
        image = write_image(folder, size, kind)
        export = export_unet(folder, depth, filters)
        info = read_metadata(export)["tiling"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chosen = plan_tiles(tiles, (size, size), info, memory)
        result = run_predict(export, image, folder / f"restored.{kind}", tiles, memory)
        if result["code"] == 0:
            out = folder / f"restored.{kind}"
            if kind == "npy":
                shape = np.load(out, mmap_mode="r").shape
            elif kind == "tif":
                import tifffile

                with tifffile.TiffFile(out) as restored:
                    shape = restored.series[0].shape
                    result["dtype"] = str(restored.series[0].dtype)
            else:
                from PIL import Image

                with Image.open(out) as restored:
                    shape = restored.size[::-1]
            result["shape_ok"] = tuple(shape[:2]) == (size, size)
    whole_gb = size * size * info["bytes_per_pixel"] / GIB
    return {**result, "size": size, "memory": memory, "tile": chosen, "info": info, "whole_estimate_gb": whole_gb,
            "image_mb": size * size * 2 / 1e6}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8192, help="the image's side in pixels (default 8192)")
    parser.add_argument("--memory", type=float, default=1.0, help="predict's --memory, GB (default 1)")
    parser.add_argument("--tiles", default="auto", help="predict's --tiles (default auto)")
    parser.add_argument("--format", dest="kind", choices=("tif", "png", "npy"), default="tif")
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--depth", type=int, default=2)
    args = parser.parse_args(argv)
    quiet_tensorflow()
    print(f"Machine: {machine()}")
    r = large_image(args.size, args.memory, args.tiles, args.kind, args.depth, args.filters)
    tile = "whole image" if r["tile"] is None else "x".join(map(str, r["tile"]))
    print(f"Image: {r['size']} x {r['size']} uint16 {args.kind} ({r['image_mb']:.0f} MB); U-Net depth {args.depth}, "
          f"{args.filters} filters: factor {r['info']['multiple']}, margin {r['info']['margin']} px, "
          f"~{r['info']['bytes_per_pixel']:.0f} B/pixel (whole image: ~{r['whole_estimate_gb']:.1f} GB)")
    print(f"predict --tiles {args.tiles} --memory {args.memory:g}: tiles {tile}")
    if r["code"] != 0:
        print(f"predict failed (exit {r['code']}): {r['stderr'][-2000:]}")
        return 1
    print(f"Time: {r['seconds']:.1f} s; peak RSS of the child: {r['peak_gb']:.2f} GB (bar: < {BAR_GB:g} GB); "
          f"output shape {'ok' if r['shape_ok'] else 'WRONG'}"
          + (f", written as {r['dtype']}" if "dtype" in r else ""))
    return 0 if r["peak_gb"] < BAR_GB and r["shape_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
