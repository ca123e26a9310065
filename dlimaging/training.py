"""Training one model on one dataset: what `dlimaging train` runs."""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import time
from typing import Any, Callable, Mapping, Sequence

from dlimaging import registry
from dlimaging.data.bundle import DatasetBundle
from dlimaging.errors import InputError
from dlimaging.files import (
    check_output_dir,
    claim_output,
    folder_lock,
    write_atomically,
)
from dlimaging.plots._base import better
from dlimaging.plots.evaluation import PLOT_FILES, draw_model_plots
from dlimaging.plots.training import plot_history
from dlimaging.validation import check_positive_int

# Builder arguments that come from the dataset.
_FROM_DATA = ("input_shape", "num_classes", "task", "num_outputs")
# Every file `train` writes into its output folder.
TRAIN_FILES = ("model.keras", "metadata.json", "history.json", "curves.png", "splits.json") + PLOT_FILES


def build_for_dataset(family: str, data, overrides: Mapping[str, Any] | None = None, *,
                      epochs: int | None = None, steps_per_epoch: int | None = None):
    """Builds a model of a registered `family` for a dataset bundle's input shape and task.

    `epochs` and `steps_per_epoch` say how long `fit` will run, for learning-rate schedules.
    """
    entry = registry.family(family)
    registry.check_family_task(family, data.task)
    overrides = dict(overrides or {})
    for fixed in _FROM_DATA + entry.data_arguments:
        if fixed in overrides:
            raise InputError(
                f"`{fixed}` comes from the dataset and cannot be set. Received: {fixed}={overrides[fixed]!r}"
            )
    allowed = registry.builder_arguments(family) + ["compile", "name"]
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise InputError(
            f"Unknown setting `{unknown[0]}` for model={family!r}. Received: {unknown[0]}={overrides[unknown[0]]!r}. "
            f"Allowed settings: {', '.join(allowed)}"
        )
    units = registry.task(data.task).units
    if units == "channels":  # the output has the input's shape: no classes, no outputs to count
        counts, outputs = (), {}
    elif units == "num_outputs":
        counts, outputs = (None,), {"num_outputs": data.num_outputs}
    else:
        counts, outputs = (data.num_classes,), {}
    length = {"epochs": epochs, "steps_per_epoch": steps_per_epoch} if epochs and steps_per_epoch else {}
    return entry.load_builder()(data.input_shape, *counts, task=data.task, **outputs, **length,
                                **data_arguments(family, data), **overrides)


def data_arguments(family: str, data) -> dict[str, Any]:
    """The builder arguments the family takes from the dataset bundle (`Family.data_arguments`:
    a restoration bundle's `max_val`), those the bundle has."""
    values = {name: getattr(data, name, None) for name in registry.family(family).data_arguments}
    return {name: value for name, value in values.items() if value is not None}


def task_of_family(family: str, task: str | None) -> str | None:
    """`task`, or, when None, the family's first task if it builds only one, or only tasks whose
    targets the labels cannot tell (a U-Net: restoration, as in a tuning file); None otherwise
    (read from the labels)."""
    tasks = registry.family(family).tasks
    pairs = all(registry.task(t).labels in (registry.CLEAN, registry.MASKS) for t in tasks)
    return tasks[0] if task is None and (len(tasks) == 1 or pairs) else task


def data_options(*, task=None, target=None, features=None, test=None, corruption=None, patch_size=None,
                 patches_per_epoch=None, n2v_fraction=None, cache=None, normalize=None) -> dict[str, Any]:
    """The `load_dataset` options that were given (None is left out)."""
    given = {"task": task, "target": target, "features": features, "test": test, "corruption": corruption,
             "patch_size": patch_size, "patches_per_epoch": patches_per_epoch, "n2v_fraction": n2v_fraction,
             "cache": cache, "normalize": normalize}
    return {key: value for key, value in given.items() if value is not None}


def data_augmentation(task: str | None, overrides: Mapping[str, Any] | None,
                      data_settings: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(overrides, data_settings): the `augmentation` set as a builder argument (`--set
    augmentation.flip=true`) goes to the data instead, where one draw moves the input and its
    target together (`load_dataset(augmentation=...)`): all of it for a segmentation task, the
    options that move pixels (`dlimaging.data.joint.MOVING`) for a restoration; other tasks, and
    a restoration's intensity options, keep it in the model."""
    from dlimaging.data.joint_options import MOVING

    overrides, data_settings = dict(overrides or {}), dict(data_settings or {})
    labels = registry.task(task).labels if task is not None else None
    augmentation = overrides.get("augmentation")
    if labels == registry.MASKS and augmentation is not None:
        data_settings["augmentation"] = overrides.pop("augmentation")
    elif labels == registry.CLEAN and isinstance(augmentation, Mapping) and set(augmentation) & set(MOVING):
        data_settings["augmentation"] = {k: v for k, v in augmentation.items() if k in MOVING}
        overrides["augmentation"] = {k: v for k, v in augmentation.items() if k not in MOVING} or None
    return overrides, data_settings


def default_standardize(data, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """`overrides`, with `standardize="per_feature"` added when it is not set and the inputs are
    measurements rather than [0, 1] pixels (raw spectra, sensor values): a network trains badly
    on values far from unit scale, and the statistics stay in the model, so the export still
    takes raw values. Per feature, as chemometrics autoscales spectra: the differences that tell
    samples apart (coffee origins, say) are small beside each band's own height."""
    overrides = dict(overrides or {})
    low, high = data.value_range
    if "standardize" not in overrides and not (0.0 <= low and high <= 1.0):
        overrides["standardize"] = "per_feature"
    return overrides


def adapt_to_data(model, data) -> None:
    """Adapts the model's normalization layers (inputs, and regression targets) on the training
    split only, so that the validation and test splits tell the truth."""
    from dlimaging.models.standardization import adapt

    adapt(model, data.train)


def write_splits(path: pathlib.Path, data, source, seed) -> pathlib.Path | None:
    """`splits.json`: which files (or whole items) went to which split, so that a run can be
    repeated and audited; written when the data names its items (class folders, restoration and
    segmentation sources)."""
    items = getattr(data, "items", None)
    if not items:
        return None
    record = {"source": str(source), "seed": seed,
              **{split: list(items.get(split, [])) for split in ("train", "validation", "test")}}
    write_atomically(path, json.dumps(record, indent=1))
    return path


def early_stopping_target(data) -> tuple[str, str]:
    """(metric, "min" or "max") that early stopping watches: the loss on the validation split,
    or on the training split when there is none.

    The loss rather than the task's objective (`val_accuracy`, say): a small validation split
    (180 of the digits, 400 of MNIST-1D) reaches its best accuracy within a few epochs and then
    ties, so early stopping on accuracy keeps the first of those epochs and stops long before the
    model has finished learning. Measured on scikit-learn's digits split (the default CNN, 3
    seeds, 90 validation images): 93.8-94.9% test accuracy stopping on `val_accuracy` (after 15-16
    epochs), 97.4-98.3% on `val_loss`. The loss moves with every sample's confidence, so it
    keeps improving as long as the model does, and it is defined for every task.
    """
    return ("val_loss" if data.validation is not None else "loss"), "min"


def metadata_of(data) -> dict[str, Any]:
    """What an export needs to know of the data: names of the outputs and of the inputs."""
    entry = registry.task(data.task)
    axis = getattr(data, "axis", None)
    return {
        "class_names": list(data.class_names) if entry.class_names else None,
        "target_names": list(getattr(data, "target_names", None) or []) or None,
        "axis": [float(v) for v in axis] if axis is not None else None,
        "features": list(getattr(data, "feature_names", None) or []) or None,
        "normalize": getattr(data, "normalize", "dtype"),  # predict maps its inputs alike
    }


def claim_output_folder(stack: contextlib.ExitStack, folder: pathlib.Path, *, given: bool,
                        printer: Callable[[str], None] | None = None) -> pathlib.Path:
    """Takes `folder` for this run: locks it (`dlimaging.files.folder_lock`, held until `stack`
    closes) and checks that it holds none of `TRAIN_FILES`, so that no file is replaced
    (`dlimaging.files.claim_output`). A `given` folder (`--output`) that is in use or holds one is
    refused; the default one moves on to the next free `folder-2`, `folder-3`, ..."""
    candidate, number = folder, 1
    while True:
        check_output_dir(candidate, "--output folder" if given else "output folder")
        try:
            with contextlib.ExitStack() as attempt:
                attempt.enter_context(folder_lock(candidate, printer=printer or print, command="dlimaging train"))
                for name in TRAIN_FILES:
                    claim_output(candidate / name, option="--output")
                stack.enter_context(attempt.pop_all())
                return candidate
        except InputError:
            if given:
                raise
        number += 1
        candidate = folder.with_name(f"{folder.name}-{number}")


def train(
    source: Any,
    *,
    model: str = registry.DEFAULT_FAMILY,
    epochs: int = 50,
    batch_size: int = 32,
    overrides: Mapping[str, Any] | None = None,
    output_dir: str | os.PathLike | None = None,
    patience: int = 10,
    seed: int = 0,
    verbose: Any = "auto",
    printer: Callable[[str], None] | None = None,
    task: str | None = None,
    target: str | Sequence[str] | None = None,
    features: str | Sequence[str] | None = None,
    test: str | os.PathLike | None = None,
    data_settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Trains a builder's model on a dataset, with early stopping on the validation loss.

    Writes `model.keras`, `metadata.json` (task, class or target names, the
    data's axis, settings, test metrics), `history.json`, `curves.png`
    (training and validation curves) and the task's pictures (`parity.png`
    and `residuals.png` for regression, `confusion_matrix.png` for classes,
    `spectra.png` for signals) to `output_dir`.

    The model's normalization layers (`standardize`, and the scaling of
    regression targets) are adapted on the training split before training.
    Inputs whose values are not within [0, 1] (measurements such as raw
    spectra, rather than images) are standardised (`standardize="per_feature"`)
    unless `overrides` sets `standardize`.

    Args:
        source: str or `DatasetBundle`. Any `load_dataset` source, or a bundle it
            returned (then `batch_size`, `seed`'s splits, `task`, `target`,
            `features`, `test` and `data_settings` are the bundle's).
        model: str. A family of `dlimaging.registry.FAMILIES` ("cnn", "mlp").
            Defaults to "cnn".
        epochs: int. Most epochs to train. Defaults to 50.
        batch_size: int. Defaults to 32.
        overrides: dict or None. Builder arguments, e.g. `{"dropout": 0.3}`.
        output_dir: folder for the outputs. A folder that already holds one
            of `TRAIN_FILES`, or that another `train` is using (it is locked
            for the run), is refused: nothing is replaced. Defaults to
            `runs/train_<data>_<model>`, or, when that one holds such a file or
            is in use, the next free `runs/train_<data>_<model>-2`, `-3`, ...
        patience: int. Epochs without a lower validation loss before
            stopping; the best weights are restored (see
            `early_stopping_target`). Defaults to 10.
        seed: int. Seed of the splits and the weights. Defaults to 0.
        verbose: Keras's `verbose` for `fit`. Defaults to "auto".
        printer: where to say which output folder is used, or None.
            Defaults to None.
        task: str or None. A task of `dlimaging.registry.TASKS`, checked
            against the labels. Defaults to None (read from the labels).
        target: str, list of str or None. CSV data: the target column(s).
        features: str, list of str or None. CSV data: the feature columns.
            Defaults to None (every other numeric column).
        test: path or None. A separate test file. Defaults to None.
        data_settings: dict or None. More `load_dataset` arguments, e.g. a
            restoration's `corruption` and `patch_size`. Defaults to None.

    Returns:
        A dict with the test metrics, the metric early stopping watched and
        the paths written.

    Example:
    >>> result = train("spectra:samples=300", task="regression", epochs=2)  # doctest: +SKIP
    >>> result["metrics"]["test_rmse"]  # doctest: +SKIP
    """
    import keras

    from dlimaging.data.dataset import load_dataset
    from dlimaging.data.streaming import reading_files

    registry.family(model)
    epochs = check_positive_int("epochs", epochs)
    patience = check_positive_int("patience", patience)
    with contextlib.ExitStack() as stack:  # holds the output folder's lock until the files are written
        stack.enter_context(reading_files())  # a streamed file that breaks mid-training: one InputError
        if output_dir is not None:
            output_dir = claim_output_folder(stack, pathlib.Path(output_dir), given=True, printer=printer)
        if isinstance(source, DatasetBundle):
            data, source = source, source.name
            batches = int(data.train.cardinality())
            steps_per_epoch = batches if batches > 0 else math.ceil(data.num_train / batch_size)
        else:
            overrides, data_settings = data_augmentation(task, overrides, data_settings)
            data = load_dataset(source, batch_size=batch_size, seed=seed, **dict(data_settings or {}),
                                **data_options(task=task_of_family(model, task), target=target, features=features,
                                               test=test))
            steps_per_epoch = math.ceil(data.num_train / batch_size)
        keras.utils.set_random_seed(seed)
        given = overrides
        if "standardize" in registry.builder_arguments(model):
            overrides = default_standardize(data, overrides)
        net = build_for_dataset(model, data, overrides, epochs=epochs, steps_per_epoch=steps_per_epoch)
        adapt_to_data(net, data)
        if output_dir is None:
            output_dir = claim_output_folder(stack, pathlib.Path("runs") / f"train_{data.name}_{model}", given=False,
                                             printer=printer)
        if printer:
            printer(f"Output folder: {output_dir}")
            if getattr(data, "cache_note", None):
                printer(data.cache_note)
            if "standardize" in overrides and "standardize" not in (given or {}):
                low, high = data.value_range
                printer(f"Inputs span [{low:.4g}, {high:.4g}]: standardised inside the model (standardize="
                        "per_feature, adapted on the training split); --set standardize=none turns it off.")

        monitor, direction = early_stopping_target(data)
        callbacks = [keras.callbacks.EarlyStopping(monitor=monitor, mode=direction, patience=patience,
                                                   restore_best_weights=True)]
        start = time.perf_counter()
        history = net.fit(data.train, validation_data=data.validation, epochs=epochs, callbacks=callbacks,
                          verbose=verbose, shuffle=False)  # the dataset reshuffles itself each epoch
        seconds = time.perf_counter() - start
        metrics = evaluate_test_split(net, data)
        history_dict = {k: [float(v) for v in values] for k, values in history.history.items()}
        metadata = {
            "source": source,
            "model": model,
            **metadata_of(data),
            "value_range": list(data.value_range),
            "task": data.task,
            "seed": seed,
            "early_stopping": {"monitor": monitor, "mode": direction},
            "hyperparameters": {k: (list(v) if isinstance(v, tuple) else v) for k, v in (overrides or {}).items()},
            "metrics": metrics,
            "epochs_run": len(history_dict.get("loss", [])),
            "train_seconds": round(seconds, 2),
        }
        written = _write_outputs(output_dir, net, data, history_dict, metadata, title=f"{model} on {data.name}")
    return {"metrics": metrics, **written, "monitor": monitor, "direction": better(direction),
            "output_dir": str(output_dir), "epochs_run": metadata["epochs_run"]}


def evaluate_test_split(model, data) -> dict[str, float]:
    """The compiled metrics of `model` on the data's test split, as `test_<name>` (empty without a
    test split); for segmentation, also the Dice of each class (`test_dice_<class>`)."""
    if data.test is None:
        return {}
    metrics = {f"test_{k}": float(v) for k, v in model.evaluate(data.test, return_dict=True, verbose=0).items()}
    if registry.task(data.task).labels == registry.MASKS:
        from dlimaging.models.segmentation import dice_of_each_class

        names = list(data.class_names or range(data.num_classes))
        metrics.update({f"test_{k}": v for k, v in dice_of_each_class(model, data.test, names).items()})
    return metrics


def _write_outputs(folder: pathlib.Path, net, data, history: dict, metadata: dict, title: str) -> dict[str, Any]:
    """Writes `TRAIN_FILES` into the folder `claim_output_folder` took for this run."""
    model_path = folder / "model.keras"
    net.save(model_path)
    write_atomically(folder / "history.json", json.dumps(history, indent=2))
    write_atomically(folder / "metadata.json", json.dumps(metadata, indent=2, default=str))
    write_splits(folder / "splits.json", data, metadata.get("source"), metadata.get("seed"))
    curves = plot_history(history, folder / "curves.png", title=title)
    pictures = draw_model_plots(net, data, folder, title=title)
    return {"model_path": str(model_path), "curves": str(curves), "plots": [str(p) for p in pictures]}
