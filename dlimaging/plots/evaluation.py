"""The figures of a trained model on its data's test split, as `train` and `tune` draw them:
confusion matrix, parity and residuals, spectra, or restored samples, by task.
"""

from __future__ import annotations

import os
import pathlib

from dlimaging import registry
from dlimaging.plots import training as plots
from dlimaging.plots.restoration import plot_restoration
from dlimaging.plots.segmentation import plot_segmentation

# Every file `draw_model_plots` may write, whatever the task: what `train` checks its folder for.
PLOT_FILES = ("parity.png", "residuals.png", "confusion_matrix.png", "spectra.png", "restoration.png",
              "segmentation.png")


def _evaluation_split(data):
    """(x, y, split name) of the split the pictures show: test, else validation, else train."""
    arrays = getattr(data, "arrays", None) or {}
    for split in ("test", "validation", "train"):
        x = arrays.get(f"x_{split}")
        if x is not None and len(x):
            return x, arrays[f"y_{split}"], split
    return None, None, None


def _streamed_predictions(model, data):
    """(predictions, y, split name) batch by batch over a streamed bundle's test split (else
    validation): only the outputs and labels are kept, never the inputs."""
    import numpy as np

    for split in ("test", "validation"):
        dataset = getattr(data, split, None)
        if dataset is not None:
            break
    else:
        return None, None, None
    predicted, labels = [], []
    for x, y in dataset:
        predicted.append(np.asarray(model.predict_on_batch(x)))
        labels.append(np.asarray(y))
    return np.concatenate(predicted), np.concatenate(labels), split


def _restoration_plot(model, data, folder: pathlib.Path, title: str) -> pathlib.Path | None:
    """`restoration.png`: a few corrupted samples of the test split (else validation), the model's
    restoration and the clean samples, each with its PSNR on the data's `max_val` (volumes: their
    middle slice)."""
    import numpy as np


    for split in ("test", "validation"):
        dataset = getattr(data, split, None)
        if dataset is not None:
            break
    else:
        return None
    noisy, clean = (np.asarray(a) for a in next(iter(dataset.take(1))))
    restored = np.asarray(model.predict(noisy[:4], verbose=0))
    where = f"{title} ({split} split)" if title else f"{split} split"
    if getattr(data, "self_supervised", False):  # no clean image: the target is the noisy one, less its mask
        clean = clean[..., :restored.shape[-1]]
        where += "; Noise2Void: 'clean' is the noisy target, and the PSNRs are against it"
    if clean.ndim == 5:  # volumes: their middle (height, width) slice
        noisy, restored, clean = (a[:, a.shape[1] // 2] for a in (noisy, restored, clean))
        where += ", middle slice"
    return plot_restoration(noisy, restored, clean, folder / "restoration.png",
                            max_val=getattr(data, "max_val", None) or 1.0, title=where, axis=getattr(data, "axis", None))


def _segmentation_plot(model, data, folder: pathlib.Path, title: str) -> pathlib.Path | None:
    """`segmentation.png`: a few test images (else validation, else training), their true masks and
    the predicted class maps, with the mean IoU of each; images, and volumes' middle slices (not signals)."""
    import numpy as np

    x, y, split = _evaluation_split(data)
    if x is None or x.ndim not in (4, 5):
        return None
    x, y = x[:4], y[:4]
    predicted = np.asarray(model.predict(x, verbose=0)).argmax(axis=-1)
    where = f"{title} ({split} split)" if title else f"{split} split"
    if x.ndim == 5:  # volumes: their middle (height, width) slice
        middle = x.shape[1] // 2
        x, y, predicted, where = x[:, middle], y[:, middle], predicted[:, middle], where + ", middle slice"
    return plot_segmentation(x[:4], y[:4], predicted, folder / "segmentation.png",
                             num_classes=int(data.num_classes or predicted.max() + 1), title=where)


def draw_model_plots(model, data, folder: str | os.PathLike, title: str = "") -> list[pathlib.Path]:
    """The pictures of a trained model on its data, by task, into `folder`:

    - numeric outputs (regression): `parity.png` and `residuals.png` on the test split;
    - one class per sample (classification, binary): `confusion_matrix.png`;
    - signals (inputs of rank 2, e.g. spectra): `spectra.png`, a few training
      spectra per class or per target range, on the data's axis;
    - restoration: `restoration.png`, corrupted | restored | clean test samples with their PSNR;
    - segmentation: `segmentation.png`, image | true mask | predicted mask of test images, with the
      mean IoU of each.

    Args:
        model: a trained `keras.Model`.
        data: the `DatasetBundle` it was trained on (its `arrays`).
        folder: where the PNG files go.
        title: str. Put in each figure's title. Defaults to "".

    Returns:
        The paths written.
    """
    import numpy as np


    folder = pathlib.Path(folder)
    entry = registry.task(data.task)
    if entry.units == "channels":  # restoration: noisy | restored | clean
        return [path for path in [_restoration_plot(model, data, folder, title)] if path is not None]
    if entry.labels == registry.MASKS:  # segmentation: image | true mask | predicted mask
        return [path for path in [_segmentation_plot(model, data, folder, title)] if path is not None]
    target_names = getattr(data, "target_names", None)
    class_names = list(getattr(data, "class_names", None) or [])
    paths = []
    x, y, split = _evaluation_split(data)
    if x is not None:
        predicted = np.asarray(model.predict(x, verbose=0, batch_size=256))
    elif getattr(data, "cache", None) is not None:  # a streamed source: no arrays
        predicted, y, split = _streamed_predictions(model, data)
    if split is not None:
        where = f"{title} ({split} split)" if title else f"{split} split"
        if entry.units == "num_outputs":
            truth = np.asarray(y, "float64").reshape(predicted.shape)
            paths.append(plots.plot_parity(truth, predicted, folder / "parity.png", target_names, where))
            paths.append(plots.plot_residuals(truth, predicted, folder / "residuals.png", target_names, where))
        elif entry.label_rank == 1 or entry.units == 1:  # one class per sample
            if predicted.shape[-1] == 1:  # a yes/no unit
                ids, truth = (predicted[:, 0] >= 0.5).astype("int64"), np.asarray(y).reshape(-1).astype("int64")
                names = class_names if len(class_names) == 2 else ["0", "1"]
            else:
                ids, truth = predicted.argmax(axis=-1), np.asarray(y).astype("int64")
                names = class_names or [str(i) for i in range(predicted.shape[-1])]
            paths.append(plots.plot_confusion_matrix(truth, ids, names, folder / "confusion_matrix.png", where))
    arrays = getattr(data, "arrays", None) or {}
    if len(data.input_shape) == 2 and arrays.get("x_train") is not None and len(arrays["x_train"]):
        y_train = arrays["y_train"]
        if entry.units == 1:
            y_train = np.asarray(y_train).reshape(-1).astype("int64")
        paths.append(plots.plot_spectra(
            arrays["x_train"], y_train, folder / "spectra.png", axis=getattr(data, "axis", None),
            axis_label=getattr(data, "axis_name", None),
            class_names=class_names, target_names=target_names,
            title=f"training spectra ({title})" if title else "training spectra"))
    return paths
