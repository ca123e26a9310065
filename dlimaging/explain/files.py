"""`dlimaging explain MODEL INPUT --out fig.png`: a saved model, an input file, a figure file.

MODEL is a `.keras` file (what `dlimaging train` writes, with its
`metadata.json` beside it) or an exported version (`saved_models/NAME` or
`saved_models/NAME/VERSION`). An export holds TF Serving's function, not the
Keras layers, so on an export only the saliency map can be computed (the
gradient of the served output with respect to the input); Grad-CAM, feature
maps and filters need the `.keras` file.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.files import claim_output, read_json, write_new
from dlimaging.serving.export import infer_task
from dlimaging.serving.exports import (
    predict_exported,
    read_metadata,
    resolve_version_dir,
)
from dlimaging.serving.inputs import load_inputs

# What `explain` can draw; the first is the default for a `.keras` model.
METHODS = ("grad-cam", "saliency", "feature-maps", "filters")
EXPORT_METHODS = ("saliency",)
# `dlimaging.explain.methods.CAM_VARIANTS`, named here without loading Keras (for the command line's choices);
# the first is the default.
CAM_VARIANTS = ("hires", "grad-cam")
# The figure files `explain` writes; the first is added to a name without a suffix.
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def figure_path(out: str | os.PathLike, inputs=()) -> pathlib.Path:
    """The figure file to write for `out`, checked before any work: a file name (not a folder, nor an
    empty name such as `.png`) ending in one of `FIGURE_SUFFIXES`, or in none (then `.png` is
    added), that is not taken (`dlimaging.files.claim_output`: an existing file is refused)."""
    text = os.fspath(out)
    path = pathlib.Path(text)
    if not text.strip() or text.endswith(("/", os.sep)) or path.name in ("", ".", "..") or path.is_dir():
        raise InputError(f"`out` must be a figure file, not a folder. Received: out={text!r}")
    suffix = path.suffix.lower()
    if path.name.lower() in FIGURE_SUFFIXES:
        raise InputError(f"`out` must be a file name with a stem, e.g. cam.png. Received: out={text!r}")
    if not suffix:
        path = path.with_name(path.name + FIGURE_SUFFIXES[0])
    elif suffix not in FIGURE_SUFFIXES:
        raise InputError(f"`out` must end in {', '.join(FIGURE_SUFFIXES[:-1])} or {FIGURE_SUFFIXES[-1]} (a figure "
                         f"file). Received: out={text!r}")
    return claim_output(path, option="`out`", given=True, inputs=inputs)


def _load_keras(path: pathlib.Path):
    import keras


    sidecar = path.with_name("metadata.json")
    info = read_json(sidecar, "model metadata") if sidecar.is_file() else {}
    try:
        model = keras.saving.load_model(path)
    except Exception as error:  # noqa: BLE001  Keras raises many kinds for a file it cannot read
        message = " ".join(str(error).split())[:200]
        raise InputError(f"`model` {str(path)!r} cannot be loaded as a Keras model ({type(error).__name__}: "
                         f"{message}).") from None
    return model, info


def _answer(scores: np.ndarray, unit: int, info: dict[str, Any], has_classes: bool, class_index=None) -> str:
    """The explained output, for the title: a class and its probability, or a target and its value."""
    if has_classes:
        names = info.get("class_names") or []
        p = float(scores[unit])
        if len(scores) == 1 and len(names) in (0, 2):  # one sigmoid unit: the probability of class 1
            second = class_index is not None or p >= 0.5  # by default the answer is explained, 0 or 1
            name = names[int(second)] if names else str(int(second))
            return f"class {name} (p={p if second else 1.0 - p:.3f})"
        name = names[unit] if unit < len(names) else str(unit)
        return f"class {name} (p={p:.3f})"
    names = info.get("target_names") or []
    name = names[unit] if unit < len(names) else f"output {unit}"
    return f"{name} = {float(scores[unit]):.4g}"


def _unit(scores: np.ndarray, class_index, has_classes: bool) -> int:
    if class_index is not None:
        return int(class_index)
    return int(np.argmax(scores)) if has_classes and len(scores) > 1 else 0


def _pick_sample(x: np.ndarray, sample: int, input_path) -> np.ndarray:
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or not 0 <= sample < len(x):
        raise InputError(f"`sample` must be in [0, {len(x) - 1}]: {input_path} holds {len(x)} sample(s). "
                         f"Received: sample={sample!r}")
    return x[sample]


def _check_segmentation_method(method: str, exported: bool, model_path) -> None:
    """A segmentation model is explained by Grad-CAM of a class over its pixels (from the .keras file),
    feature maps or filters; its answer is a map, not one vector, so no saliency."""
    if exported or method == "saliency":
        raise InputError(f"A segmentation model is explained by grad-cam of a class over its predicted pixels "
                         f"(--class), feature-maps or filters, from its .keras file (e.g. runs/NAME/model.keras). "
                         f"Received: method={method!r} with {str(model_path)!r}")


def _segmentation_cam(model, x, info: dict[str, Any], *, class_index, layer, variant, axis):
    """Grad-CAM of one class summed over its predicted pixels, over the input; and its title."""
    from dlimaging.explain.segmentation import default_layer, segmentation_grad_cam
    from dlimaging.plots import explain as explain_plots

    layer = layer or default_layer(model)
    heat, unit, pixels = segmentation_grad_cam(model, x, class_index=class_index, layer=layer, variant=variant)
    names = info.get("class_names") or []
    name = names[unit] if unit < len(names) else str(unit)
    what = f"{variant} of {layer} for class {name} over its {pixels} predicted pixel(s)"
    if not pixels:
        what += "; the model predicts no pixel of this class here, so the map is empty"
    return explain_plots.grad_cam_figure(x, heat, axis=axis, title=what), what


def explain_file(model_path: str | os.PathLike, input_path: str | os.PathLike, out: str | os.PathLike, *,
                 method: str | None = None, layer: str | None = None, class_index: int | None = None,
                 sample: int = 0, variant: str = CAM_VARIANTS[0]) -> tuple[pathlib.Path, str]:
    """Draws one of `METHODS` for one input of a file, and writes it as a PNG.

    Args:
        model_path: a `.keras` file, or an exported model or version folder.
        input_path: an image, `.npy`/`.npz` array or `.csv` file, read as
            `dlimaging predict` reads it.
        out: the figure file to write: a name ending in one of `FIGURE_SUFFIXES`
            (.png, .pdf, .svg), or in none (then .png is added). A file that
            exists is refused: nothing is replaced.
        method: one of `METHODS`, or None: "grad-cam" for a `.keras` model,
            "saliency" for an export (the only one an export allows).
        layer: str or None. The layer for Grad-CAM, feature maps (one layer)
            or filters. Defaults to None (each function's default).
        class_index: int or None. The output unit explained. Defaults to None
            (the predicted class; the first output for regression).
        sample: int. Which sample of the input file. Defaults to 0.
        variant: "hires" or "grad-cam", for Grad-CAM. Defaults to "hires" (see
            `dlimaging.explain.methods.grad_cam`).

    Returns:
        The path written (with `.png` added where `out` has no suffix) and one
        line saying what it shows.
    """
    from dlimaging.explain import methods as explain
    from dlimaging.plots import explain as explain_plots
    from dlimaging.plots._base import save

    model_path = pathlib.Path(model_path)
    exported = model_path.is_dir()
    if not exported and not (model_path.is_file() and model_path.suffix == ".keras"):
        raise InputError(f"`model` must be a .keras file or an exported model folder. Received: {str(model_path)!r}")
    allowed = EXPORT_METHODS if exported else METHODS
    method = method or allowed[0]
    if method not in allowed:
        if exported and method in METHODS:
            raise InputError(
                f"{method} needs the Keras model (a .keras file, e.g. runs/NAME/model.keras): an export holds "
                "TF Serving's function, not the layers' outputs. An export explains with --method saliency. "
                f"Received: method={method!r} with the export {str(model_path)!r}")
        raise InputError(f"`method` must be one of {', '.join(map(repr, allowed))}. Received: method={method!r}")
    out = figure_path(out, inputs=(input_path, model_path))

    if exported:
        version_dir = resolve_version_dir(model_path)
        info = read_metadata(version_dir)
        task = info["task"]
        shape, axis, features = info["input"]["shape"], info["input"].get("axis"), info["input"].get("features")
    else:
        model, info = _load_keras(model_path)
        task = info.get("task") or infer_task(model)
        shape, axis, features = model.input_shape[1:], info.get("axis"), info.get("features")
    entry = registry.task(task)
    if entry.units == "channels":  # the answer is an image or signal (restoration): no class or number to explain
        maps_only = [name for name in METHODS if name not in EXPORT_METHODS and name != METHODS[0]]
        if exported or method in (METHODS[0],) + EXPORT_METHODS:
            raise InputError(
                f"{method} explains a class or a number; a model of task {task!r} "
                f"answers with an image or signal. Draw its {' or '.join(maps_only)} from the .keras file "
                f"(--method). Received: method={method!r}")
    masks = entry.labels == registry.MASKS
    if masks:
        _check_segmentation_method(method, exported, model_path)
    x = _pick_sample(load_inputs([input_path], shape, axis=axis, features=features)[0], sample, input_path)
    if masks and method == METHODS[0]:
        fig, what = _segmentation_cam(model, x, info, class_index=class_index, layer=layer, variant=variant, axis=axis)
    elif exported:
        scores = predict_exported(version_dir, x[None], info)[entry.outputs[0]][0]
        unit = _unit(scores, class_index, entry.class_names)
        heat = explain.saliency_exported(version_dir, x, class_index=unit)
        what = f"saliency of {_answer(scores, unit, info, entry.class_names, class_index)}"
        fig = explain_plots.saliency_figure(x, heat, axis=axis, title=what)
    else:
        scores = np.asarray(model(x[None], training=False))[0]
        if class_index is not None:  # every method names the unit in its title: refuse one the model lacks
            explain.class_indices(model, scores[None], class_index)
        unit = _unit(scores, class_index, entry.class_names)
        answer = (_answer(scores, unit, info, entry.class_names, class_index) if scores.ndim == 1
                  else f"output {scores.shape}")
        if method == "grad-cam":
            if layer is None:
                layer = (explain.block_outputs(model) or explain.map_layers(model) or [None])[-1]
            heat = explain.grad_cam(model, x, class_index=class_index, layer=layer, variant=variant)
            curve = explain.saliency(model, x, class_index=unit) if len(shape) == 2 else None
            what = f"{variant} of {layer} for {answer}"
            if not heat.any() and variant != "hires":
                what += "; the map is empty: try --variant hires"
            fig = explain_plots.grad_cam_figure(x, heat, saliency=curve, axis=axis, title=what)
        elif method == "saliency":
            what = f"saliency of {answer}"
            fig = explain_plots.saliency_figure(x, explain.saliency(model, x, class_index=unit), axis=axis, title=what)
        elif method == "feature-maps":
            maps = explain.feature_maps(model, x, layers=None if layer is None else [layer])
            what = f"feature maps of {', '.join(maps)}; the model answers {answer}"
            fig = explain_plots.feature_maps_figure(maps, axis=axis, title=what)
        else:
            kernels = explain.filters(model, layer)
            what = f"filters of {layer or explain.conv_layers(model)[0]}: {kernels.shape[0]} kernels of {kernels.shape[1:]}"
            fig = explain_plots.filters_figure(kernels, title=what)
    return write_new(out, lambda tmp: save(fig, tmp)), what
