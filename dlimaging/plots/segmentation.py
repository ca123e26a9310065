"""The segmentation figure: image | true mask | predicted mask, the masks over the image, with the
mean IoU of each prediction.

Drawn with matplotlib's object API, as `dlimaging.plots`; imports no TensorFlow.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
from matplotlib.figure import Figure

from dlimaging.plots._base import save

MAX_SAMPLES = 4
# Class colours of the overlays (class 0, the background, is left transparent).
COLOURS = np.array([[0, 0, 0], [0.1, 0.8, 0.2], [1.0, 0.3, 0.1], [0.2, 0.4, 1.0], [1.0, 0.9, 0.1],
                    [0.8, 0.2, 0.9], [0.1, 0.9, 0.9]])


def mean_iou(mask, predicted, num_classes: int) -> float:
    """The mean over the classes present (in either) of their intersection over union."""
    mask, predicted = np.asarray(mask).reshape(-1), np.asarray(predicted).reshape(-1)
    scores = [np.sum((mask == c) & (predicted == c)) / np.sum((mask == c) | (predicted == c))
              for c in range(num_classes) if np.any((mask == c) | (predicted == c))]
    return float(np.mean(scores)) if scores else 1.0


def overlay_rgb(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The grey image (its first channel, stretched to [0, 1]) in RGB (height, width, 3), each class
    above 0 tinted with its fixed colour (`COLOURS`); the background (class 0) is left as it is."""
    grey = np.asarray(image, "float64")
    grey = grey[..., 0] if grey.ndim == 3 else grey
    low, high = float(grey.min()), float(grey.max())
    grey = (grey - low) / (high - low) if high > low else np.zeros_like(grey)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    colours = COLOURS[np.asarray(mask) % len(COLOURS)]
    tinted = np.asarray(mask) > 0
    rgb[tinted] = 0.45 * rgb[tinted] + 0.55 * colours[tinted]
    return rgb


def segmentation_figure(images, masks, predicted, *, num_classes: int, title: str = "") -> Figure:
    """Up to four images, one row each: the image | its true mask | the predicted class map (both
    over the image), the prediction titled with its mean IoU.

    Args:
        images: array (N, height, width, channels).
        masks, predicted: integer arrays (N, height, width): true and predicted class ids.
        num_classes: int. The number of classes.
        title: str. The figure's title. Defaults to "".

    Example:
    >>> masks = np.zeros((2, 8, 8), int); masks[:, 2:6, 2:6] = 1
    >>> fig = segmentation_figure(np.random.rand(2, 8, 8, 1), masks, masks, num_classes=2)
    >>> fig.axes[2].get_title()
    'predicted: IoU 1.000'
    """
    images, masks, predicted = (np.asarray(a)[:MAX_SAMPLES] for a in (images, masks, predicted))
    count = len(images)
    fig = Figure(figsize=(7.5, 2.6 * count + 0.4), constrained_layout=True)
    axes = fig.subplots(count, 3, squeeze=False)
    for row in range(count):
        shown = (images[row][..., 0] if images[row].shape[-1] < 3 else images[row][..., :3], masks[row],
                 predicted[row])
        for col, (name, panel) in enumerate(zip(("image", "true mask", "predicted"), shown)):
            ax = axes[row][col]
            if col == 0:
                ax.imshow(panel, cmap="gray", interpolation="nearest")
            else:
                ax.imshow(overlay_rgb(images[row], panel), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 2:
                name = f"predicted: IoU {mean_iou(masks[row], predicted[row], num_classes):.3f}"
            ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_segmentation(images, masks, predicted, path: str | os.PathLike, **kwargs) -> pathlib.Path:
    """`segmentation_figure` into a PNG file; returns its path."""
    return save(segmentation_figure(images, masks, predicted, **kwargs), path)
