"""Reading exports as TF Serving would: the version folder, the metadata, and predictions
through the SavedModel's serving signature (no Keras model needed).
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from dlimaging.errors import InputError
from dlimaging.files import read_json
from dlimaging.serving.export import METADATA_FILE, SIGNATURE, list_versions


def resolve_version_dir(path: str | os.PathLike) -> pathlib.Path:
    """`saved_models/NAME` → its newest version; `saved_models/NAME/3` → itself."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    if path.is_file():
        raise InputError(f"No exported model at {str(path)!r}: it is a file, not a model or version folder.")
    if not path.is_dir():
        raise InputError(f"No exported model at {str(path)!r}: no such folder.")
    versions = list_versions(path)
    if not versions:
        raise InputError(
            f"No exported model at {str(path)!r}: it holds no version folder (a folder named by "
            "digits, e.g. 1, holding saved_model.pb)."
        )
    return path / str(versions[-1])


def read_metadata(version_dir: str | os.PathLike) -> dict[str, Any]:
    """The `assets/dlimaging.json` of an exported version; an InputError naming the file when it
    is missing, unreadable or lacks what `predict` and `request` need."""
    path = pathlib.Path(version_dir) / "assets" / METADATA_FILE
    if not path.is_file():
        raise InputError(f"{str(version_dir)!r} has no {METADATA_FILE}; was it exported by dlimaging?")
    info = read_json(path, "export metadata")
    try:
        shape = [int(d) for d in info["input"]["shape"]]
        if not isinstance(info["input"]["name"], str) or not isinstance(info["task"], str) or not shape:
            raise TypeError("input.name, input.shape or task")
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"{path}: incomplete export metadata (missing or bad {error}); "
                         "export the model again.") from None
    return info


def predict_exported(version_dir: str | os.PathLike, x: np.ndarray, metadata: dict[str, Any]) -> dict[str, np.ndarray]:
    """Runs the `serving_default` signature with TensorFlow alone, as TF Serving would.

    `metadata` is the version's `read_metadata`: it names the signature's input.
    """
    return exported_predictor(version_dir, metadata)(x)


def exported_predictor(version_dir: str | os.PathLike, metadata: dict[str, Any]):
    """The SavedModel loaded once: a function x → {output name: array}, as `predict_exported`."""
    import tensorflow as tf

    try:
        # Keep the loaded object: a signature alone does not keep its variables alive.
        loaded = tf.saved_model.load(str(version_dir))
        signature = loaded.signatures[SIGNATURE]
    except KeyError:
        raise InputError(f"{version_dir}: the SavedModel has no {SIGNATURE!r} signature.") from None
    except Exception as error:  # noqa: BLE001  TensorFlow raises many kinds for a damaged folder
        message = " ".join(str(error).split())[:200]
        raise InputError(f"{version_dir}: not a loadable SavedModel ({type(error).__name__}: {message}).") from None

    def predict(x: np.ndarray) -> dict[str, np.ndarray]:
        outputs = signature(**{metadata["input"]["name"]: tf.constant(np.asarray(x, "float32"))})
        return {key: value.numpy() for key, value in outputs.items()}

    predict.loaded = loaded  # the signature's variables live as long as the function
    return predict
