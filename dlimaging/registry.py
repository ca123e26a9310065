"""The tables: model families, tasks, data sources, optimizers and augmentations.

Each concept is one table, and each table is the only place where its names
appear. The experiment schema, the command line's choices, `list_datasets`,
error messages and the README's lists are all derived from these tables.

This module is a leaf: it holds plain data and imports no TensorFlow. Code is
named by reference (`"dlimaging.models.cnn:build_cnn"`) and imported only when an
entry is used, so reading a `tuning/*.toml` file or answering `--help` never
loads TensorFlow.

Adding a model family, a task or a data source is one entry here plus the code
that is really new (see docs/extending.md).
"""

from __future__ import annotations

from typing import Any, Callable

from dlimaging._entries import Augmentation, Family, Optimizer, Source, Task, Tuner  # noqa: F401  public here
from dlimaging._references import lookup, parameters_in_source, resolve  # noqa: F401  public here
from dlimaging.errors import InputError

# ---------------------------------------------------------------- model families


FAMILIES: dict[str, Family] = {
    "cnn": Family(
        builder="dlimaging.models.cnn:build_cnn",
        hypermodel="dlimaging.tuning.hypermodels:CNNHyperModel",
        default_space="dlimaging.tuning.spaces:DEFAULT_CNN_SPACE",
        depth_key="num_blocks", width_key="filters_i", layers_argument="filters",
        ranks=(2, 3, 4),
        description="1D, 2D or 3D convolutional network (spectra, images, volumes).",
    ),
    "mlp": Family(
        builder="dlimaging.models.mlp:build_mlp",
        hypermodel="dlimaging.tuning.hypermodels:MLPHyperModel",
        default_space="dlimaging.tuning.spaces:DEFAULT_MLP_SPACE",
        depth_key="num_layers", width_key="units_i", layers_argument="hidden_units",
        ranks=(1, 2, 3, 4),
        description="multilayer perceptron; image and signal inputs are flattened.",
    ),
    # The U-Net's `depth` (levels) and `filters` (width of the first level, doubled at each level
    # down) are builder arguments themselves: its depth and width keys are the arguments.
    "unet": Family(
        builder="dlimaging.models.unet:build_unet",
        hypermodel="dlimaging.tuning.hypermodels:UNetHyperModel",
        default_space="dlimaging.tuning.spaces:DEFAULT_UNET_SPACE",
        depth_key="depth", width_key="filters", layers_argument="filters",
        ranks=(2, 3, 4), tasks=("restoration", "segmentation"),
        data_arguments=("max_val", "class_frequencies", "self_supervised"),
        description="1D, 2D or 3D U-Net: a signal, image or volume in, the restored signal, image or volume "
                    "(or its class map) out.",
    ),
}
DEFAULT_FAMILY = "cnn"

# Builder arguments that come from the data or the call, never from a search space. `epochs` and
# `steps_per_epoch` give a learning-rate schedule its length: the training code passes them (a
# space's `epochs` goes to `fit`, see FIT_KEYS).
NOT_SEARCHABLE = ("input_shape", "num_classes", "task", "num_outputs", "compile", "name", "epochs",
                  "steps_per_epoch", "max_val", "class_frequencies", "self_supervised")


def family(name: Any) -> Family:
    return lookup(FAMILIES, "model", name)


def check_family_task(family_name: Any, task_name: Any) -> None:
    """Refuses a task the family cannot be built for (a U-Net for classification, a CNN for restoration)."""
    entry = family(family_name)
    task(task_name)
    if task_name not in entry.tasks:
        takers = [name for name, other in FAMILIES.items() if task_name in other.tasks]
        raise InputError(
            f"model={family_name!r} is built for task {' or '.join(map(repr, entry.tasks))}; "
            f"task={task_name!r} needs model {' or '.join(map(repr, takers))}. Received: task={task_name!r}"
        )


def check_builder_task(builder: Callable, task_name: Any) -> None:
    """`check_family_task` for the family that `builder` (e.g. `build_cnn`) builds."""
    reference = f"{builder.__module__}:{builder.__name__}"
    check_family_task(next(name for name, entry in FAMILIES.items() if entry.builder == reference), task_name)


def family_of_hypermodel(cls: type) -> str:
    """The family name whose hypermodel is `cls` (or one of its bases)."""
    for klass in cls.__mro__:
        reference = f"{klass.__module__}:{klass.__qualname__}"
        for name, entry in FAMILIES.items():
            if entry.hypermodel in (reference, klass):
                return name
    raise InputError(f"{cls.__qualname__} is not the hypermodel of any family in dlimaging.registry.FAMILIES.")


def builder_arguments(name: str) -> list[str]:
    """The arguments of a family's builder that a search space may set, in order.

    Read from the builder's source without importing it, so that checking an
    experiment file does not load TensorFlow.
    """
    builder = family(name).builder
    if callable(builder):  # an entry added at run time with the function itself
        import inspect

        return [p for p in inspect.signature(builder).parameters if p not in NOT_SEARCHABLE]
    return [a for a in parameters_in_source(builder) if a not in NOT_SEARCHABLE]


# ---------------------------------------------------------------- tasks


TASKS: dict[str, Task] = {
    "classification": Task(
        output_activation="softmax", units="num_classes", min_classes=2,
        losses={"sparse_categorical_crossentropy": "sparse_categorical_crossentropy"},
        metrics=(("SparseCategoricalAccuracy", "accuracy", {}),),
        objective="val_accuracy", directions={"accuracy": "max", "loss": "min"},
        label_dtype="int64", label_rank=1, labels="classes",
        outputs=("probabilities", "class_id", "class_name"), class_names=True,
        smoothed_loss="dlimaging.models.heads:SmoothedSparseCategoricalCrossentropy",
        description="one class out of C: softmax, sparse categorical cross-entropy.",
    ),
    "binary": Task(
        output_activation="sigmoid", units=1,
        losses={"binary_crossentropy": "binary_crossentropy"},
        metrics=(("BinaryAccuracy", "accuracy", {}), ("AUC", "auc", {}),
                 ("F1Score", "f1", {"average": "micro", "threshold": 0.5})),
        objective="val_auc", directions={"auc": "max", "accuracy": "max", "f1": "max", "loss": "min"},
        label_dtype="float32", label_rank=2, labels="two classes",
        outputs=("probabilities",), class_names=True, smoothed_loss="keras.losses:BinaryCrossentropy",
        description="yes or no: one sigmoid unit, binary cross-entropy; accuracy, AUC and F1.",
    ),
    "multilabel": Task(
        output_activation="sigmoid", units="num_classes",
        losses={"binary_crossentropy": "binary_crossentropy"},
        metrics=(("BinaryAccuracy", "accuracy", {}), ("AUC", "auc", {"multi_label": True}),
                 ("F1Score", "f1", {"average": "macro", "threshold": 0.5})),
        objective="val_auc", directions={"auc": "max", "accuracy": "max", "f1": "max", "loss": "min"},
        label_dtype="float32", label_rank=2, labels="0/1 vectors",
        outputs=("probabilities",), class_names=True, smoothed_loss="keras.losses:BinaryCrossentropy",
        description="any number of C labels: C sigmoid units, binary cross-entropy; accuracy, AUC (per label) "
                    "and macro F1.",
    ),
    "regression": Task(
        output_activation="linear", units="num_outputs",
        losses={"mse": "mean_squared_error", "mae": "mean_absolute_error", "huber": "Huber"},
        metrics=(("RootMeanSquaredError", "rmse", {}), ("MeanAbsoluteError", "mae", {}), ("R2Score", "r2", {})),
        objective="val_loss", directions={"loss": "min", "rmse": "min", "mae": "min", "r2": "max"},
        label_dtype="float32", label_rank=2, labels="numbers",
        outputs=("predictions",), class_names=False,
        description="one or more numbers: linear outputs, MSE (or MAE, Huber); RMSE, MAE and R².",
        # Dropout and batch norm regularise classifiers but blur a regression's numbers: the default
        # CNN's test RMSE on synthetic spectra was 0.0230 and 0.0386 with them, 0.0094 and 0.0060
        # without (issue 23, `benchmarks/spectra_vs_pls.py --only defaults`).
        builder_defaults={"dropout": 0.0, "batch_norm": False},
    ),
    # PSNR and SSIM take the data's value range (`max_val`) from the dataset; SSIM is 2D only, so
    # 1D models get PSNR alone, and the "ssim" loss (1 − SSIM) is for images: signals take MSE or MAE.
    "restoration": Task(
        output_activation="linear", units="channels",
        losses={"mse": "mean_squared_error", "mae": "mean_absolute_error",
                "ssim": "dlimaging.models.metrics:SSIMLoss"},
        metrics=(("dlimaging.models.metrics:PSNR", "psnr", {}), ("dlimaging.models.metrics:SSIM", "ssim", {})),
        objective="val_psnr", directions={"psnr": "max", "ssim": "max", "loss": "min"},
        label_dtype="float32", label_rank=None, labels="clean signals",
        outputs=("restored",), class_names=False, input_ranks={"ssim": (3,)},
        description="an image or signal in, its restored (denoised, deblurred) version out: MSE (or MAE, "
                    "1 − SSIM); PSNR and SSIM.",
    ),
    # One softmax over the classes per pixel (or point of a signal); the labels are integer masks of
    # the input's spatial shape. Mean IoU and Dice are of the class map, over the classes present.
    "segmentation": Task(
        output_activation="softmax", units="num_classes", min_classes=2,
        losses={"crossentropy": "dlimaging.models.segmentation:SegmentationCrossentropy",
                "dice": "dlimaging.models.segmentation:DiceLoss",
                "crossentropy+dice": "dlimaging.models.segmentation:CrossentropyDiceLoss"},
        metrics=(("dlimaging.models.segmentation:MeanIoU", "mean_iou", {}),
                 ("dlimaging.models.segmentation:MeanDice", "dice", {})),
        objective="val_mean_iou", directions={"mean_iou": "max", "dice": "max", "loss": "min"},
        label_dtype="int32", label_rank=None, labels="masks",
        outputs=("probabilities", "class_map"), class_names=True,
        description="a class per pixel: a softmax over C classes at every pixel, cross-entropy (or soft Dice, "
                    "or their sum); mean IoU and Dice.",
    ),
}
DEFAULT_TASK = "classification"


def task(name: Any) -> Task:
    return lookup(TASKS, "task", name)


def builder_default(task_name: Any, name: str, value: Any, default: Any) -> Any:
    """A builder argument: `value` as given, or when None the task's own default for it
    (`Task.builder_defaults`), else the builder's `default`. An unknown task is left to the
    builder's own check.

    Example:
    >>> builder_default("regression", "dropout", None, 0.2), builder_default("classification", "dropout", None, 0.2)
    (0.0, 0.2)
    """
    if value is not None:
        return value
    entry = TASKS.get(task_name) if isinstance(task_name, str) else None
    return entry.builder_defaults.get(name, default) if entry is not None else default


# The labels of a restoration task: the clean image or signal itself (see `Task.labels`).
CLEAN = "clean signals"
# The labels of a segmentation task: integer masks of the input's spatial shape.
MASKS = "masks"
LABEL_KINDS = ("classes", "two classes", "0/1 vectors", "numbers", CLEAN, MASKS)
# The data settings of tasks whose targets have the input's (spatial) shape, and the labels of the
# tasks each applies to: restoration's clean images, segmentation's masks.
PAIR_SETTINGS = {"corruption": (CLEAN,), "patch_size": (CLEAN, MASKS), "patches_per_epoch": (CLEAN, MASKS),
                 "augmentation": (CLEAN, MASKS)}
# `load_dataset(cache=...)`, `[data] cache` and `--cache`: what is kept of the decoded data
# (see `dlimaging.data.streaming`); "auto" is the default.
CACHE_MODES = ("auto", "memory", "disk", "none")
# `load_dataset(normalize=...)`, `[data] normalize` and `--normalize`: how image intensities are mapped
# ("percentile" also as "percentile:LOW,HIGH"; see `dlimaging.data.normalize`).
NORMALIZE_MODES = ("dtype", "percentile")


def task_for_labels(kind: str) -> str:
    """The task whose labels are of this kind (see `Task.labels`); "classes" gives `DEFAULT_TASK`."""
    if kind not in LABEL_KINDS:
        raise LookupError(f"no kind of labels {kind!r}; expected one of {LABEL_KINDS}")
    if TASKS[DEFAULT_TASK].labels == kind:
        return DEFAULT_TASK
    return next(name for name, entry in TASKS.items() if entry.labels == kind)


# ---------------------------------------------------------------- data sources


SOURCES: dict[str, Source] = {
    "digits": Source(
        "dlimaging.data.sources:load_digits",
        "scikit-learn's 8x8 handwritten digits: 1,797 images (8, 8, 1), 10 classes; ships offline."),
    "mnist1d": Source(
        "dlimaging.data.sources:load_mnist1d",
        "MNIST-1D (Greydanus & Kobak, ICML 2024): 4,000 + 1,000 signals (40, 1), 10 classes; generated locally.",
        clean="dlimaging.data.restoration:clean_samples"),
    "coffee": Source(
        "dlimaging.data.sources:load_coffee",
        "chemotools' coffee set: 60 ATR-FTIR spectra (1841, 1) of coffee from 3 origins; ships offline."),
    "spectra": Source(
        "dlimaging.data.sources:load_spectra",
        "synthetic spectra of 3-component mixtures: 2,000 + 500 spectra (256, 1), regression on the "
        "concentrations; generated locally.", clean="dlimaging.data.restoration:clean_samples"),
    "spectra:OPTIONS": Source(
        "dlimaging.data.sources:load_spectra",
        "the synthetic spectra with options, e.g. spectra:components=4,difficulty=hard,samples=4000,length=256.",
        prefix="spectra:", clean="dlimaging.data.restoration:clean_samples"),
    "skimage": Source(
        "dlimaging.data.restoration:unlabelled",
        "scikit-image's 17 sample photographs (camera, moon, coins, cell, coffee_cup, motorcycle, ...), grey, "
        "clean images for restoration; ship offline.", clean="dlimaging.data.restoration:clean_skimage"),
    "skimage:OPTIONS": Source(
        "dlimaging.data.restoration:unlabelled",
        "some of them (skimage:camera,moon,coins), or the colour ones in colour (skimage:rgb).",
        prefix="skimage:", clean="dlimaging.data.restoration:clean_skimage"),
    "cells": Source(
        "dlimaging.data.segmentation:masks_only",
        "synthetic fluorescence-like images of touching, textured cells and their masks (background, cell): "
        "64 images (64, 64, 1) for segmentation; generated locally.", masks="dlimaging.data.cells:cells_masks"),
    "cells:OPTIONS": Source(
        "dlimaging.data.segmentation:masks_only",
        "the synthetic cells with options, e.g. cells:count=200,size=128,noise=0.3,seed=1,classes=3 (3: a "
        "boundary class); cells:ndim=3 gives volumes (32, 32, 32, 1) and their masks.", prefix="cells:",
        masks="dlimaging.data.cells:cells_masks"),
    "blobs3d": Source(
        "dlimaging.data.restoration:unlabelled",
        "synthetic volumes of smooth textured blobs in [0, 1]: 16 clean volumes (32, 32, 32, 1) for restoration; "
        "generated locally.", clean="dlimaging.data.volumes:clean_blobs3d"),
    "blobs3d:OPTIONS": Source(
        "dlimaging.data.restoration:unlabelled",
        "the synthetic volumes with options, e.g. blobs3d:count=8,size=16,seed=1.", prefix="blobs3d:",
        clean="dlimaging.data.volumes:clean_blobs3d"),
    "pairs:LOW_DIR,HIGH_DIR": Source(
        "dlimaging.data.pairs:pairs_only",
        "paired restoration data: low- and high-quality images or volumes matched by name (a folder holding low/ "
        "and high/ is one too); no synthetic corruption.", prefix="pairs:"),
    "tfds:NAME[/CONFIG]": Source(
        "dlimaging.data.tfds_stream:stream_tfds",
        "any TensorFlow Datasets image classification set, e.g. tfds:mnist (needs its data); streamed.",
        prefix="tfds:", stream=True),
    "PATH.npz": Source(
        "dlimaging.data.sources:load_npz", "a .npz file with x and y, and optionally x_test and y_test; for "
        "segmentation, x and masks.", suffix=".npz", masks="dlimaging.data.segmentation:npz_masks"),
    "PATH.csv": Source(
        "dlimaging.data.sources:load_csv",
        "a CSV file with a header row, one row per sample: `target` names the target column(s); the other "
        "numeric columns form the signal.", suffix=".csv", options=("target", "features", "test")),
    "PATH/": Source(
        "dlimaging.data.streaming:list_class_folder",  # listed, not loaded: decoded inside tf.data
        "a folder with one sub-folder per class of images (png, jpg, bmp, gif, tif) or volumes (multi-page tif, "
        "3D .npy); for restoration, any folder of images (sub-folders included); for segmentation, images/ and "
        "masks/ matched by name (and classes.txt).",
        folder=True, clean="dlimaging.data.restoration:clean_folder", masks="dlimaging.data.segmentation:folder_masks"),
}


def named_sources() -> list[str]:
    """The built-in datasets, called by name."""
    return [name for name, entry in SOURCES.items() if not (entry.prefix or entry.suffix or entry.folder)]


# ---------------------------------------------------------------- optimizers


OPTIMIZERS: dict[str, Optimizer] = {
    "adam": Optimizer("keras.optimizers:Adam", ("beta_1", "beta_2", "epsilon")),
    "adamw": Optimizer("keras.optimizers:AdamW", ("beta_1", "beta_2", "epsilon", "weight_decay")),
    "sgd": Optimizer("keras.optimizers:SGD", ("momentum",)),
    "rmsprop": Optimizer("keras.optimizers:RMSprop", ("momentum", "epsilon")),
}
DEFAULT_OPTIMIZER = "adam"


def optimizer_arguments() -> list[str]:
    """Every optimizer argument that some optimizer takes, in table order."""
    return list(dict.fromkeys(a for entry in OPTIMIZERS.values() for a in entry.arguments))


# ---------------------------------------------------------------- augmentations


AUGMENTATIONS: dict[str, Augmentation] = {
    "flip": Augmentation(("image",), "dlimaging.models.augmentation:flip_layer", moves=True),
    "rotation": Augmentation(("image",), "dlimaging.models.augmentation:rotation_layer", moves=True),
    "zoom": Augmentation(("image",), "dlimaging.models.augmentation:zoom_layer", moves=True),
    "translation": Augmentation(("image",), "dlimaging.models.augmentation:translation_layer", moves=True),
    "contrast": Augmentation(("image",), "dlimaging.models.augmentation:contrast_layer"),
    "brightness": Augmentation(("image",), "dlimaging.models.augmentation:brightness_layer"),
    "shift": Augmentation(("signal",), "dlimaging.models.augmentation:shift_layer", settings=("shift_mode",), moves=True),
    "shift_mode": Augmentation(("signal",), "dlimaging.models.augmentation:shift_mode_setting"),
    "scale": Augmentation(("signal",), "dlimaging.models.augmentation:scale_layer"),
    "scatter": Augmentation(("signal",), "dlimaging.models.augmentation:scatter_layer"),
    "baseline": Augmentation(("signal",), "dlimaging.models.augmentation:baseline_layer"),
    "noise": Augmentation(("image", "signal"), "dlimaging.models.augmentation:noise_layer"),
}
# The input rank (without the batch axis) that each kind of input has.
AUGMENTATION_INPUTS = {2: "signal", 3: "image"}


def augmentation_keys(input_shape) -> tuple[str, ...]:
    """The augmentation options for inputs of this shape, in table order."""
    kind = AUGMENTATION_INPUTS.get(len(input_shape))
    return tuple(name for name, entry in AUGMENTATIONS.items() if kind in entry.inputs)


# ---------------------------------------------------------------- search algorithms and spaces

def bayesian_initial_points(settings) -> int:
    """Random trials before Bayesian optimisation fits its Gaussian process: the `[tuner]`
    setting `bayesian_initial_points`, else a third of `max_trials`, from 3 to 10.

    Keras Tuner's own default, 3 trials per hyperparameter, exceeds most budgets (33 random
    trials for an 11-hyperparameter space): a Bayesian search of 20 trials was a random search.
    """
    if settings.bayesian_initial_points is not None:
        return settings.bayesian_initial_points
    return min(10, max(3, settings.max_trials // 3))


TUNERS: dict[str, Tuner] = {
    "random": Tuner("keras_tuner:RandomSearch", {"max_trials": "max_trials"},
                    oracle="keras_tuner.oracles:RandomSearchOracle"),
    # Hyperband sizes its brackets from the epochs; it runs as many trials as they hold.
    "hyperband": Tuner("keras_tuner:Hyperband", {"max_epochs": "max_epochs", "factor": "hyperband_factor",
                                                 "hyperband_iterations": 1}),
    "bayesian": Tuner("keras_tuner:BayesianOptimization", {"max_trials": "max_trials",
                                                           "num_initial_points": bayesian_initial_points},
                      oracle="keras_tuner.oracles:BayesianOptimizationOracle"),
    "grid": Tuner("keras_tuner:GridSearch", {"max_trials": "max_trials"}, oracle="keras_tuner.oracles:GridSearchOracle"),
}
DEFAULT_TUNER = "random"

# Search-space keys that `fit` takes rather than the builder.
FIT_KEYS = ("batch_size", "epochs")


def space_keys(name: str) -> list[str]:
    """The keys a search space of family `name` may hold."""
    entry = family(name)
    return builder_arguments(name) + [entry.depth_key, entry.width_key] + list(FIT_KEYS)
