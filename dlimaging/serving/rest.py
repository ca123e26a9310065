"""TF Serving's REST bodies (the request from inputs, the answer from outputs) and `models.config`.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from dlimaging.errors import InputError
from dlimaging.serving.export import SERVING_CONFIG_MARK, SIGNATURE, list_versions


def serving_response(outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """TF Serving's REST answer in row format: `{"predictions": [{...}, ...]}`."""
    rows = []
    count = len(next(iter(outputs.values())))
    for index in range(count):
        row = {}
        for key in sorted(outputs):
            value = outputs[key][index]
            if isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, (np.ndarray, np.generic)):
                value = value.tolist()
            row[key] = value
        rows.append(row)
    return {"predictions": rows}


def rest_request(x: np.ndarray, metadata: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a TF Serving REST `:predict` request in row format, for the
    exported version that `metadata` (its `read_metadata`) describes."""
    name = metadata["input"]["name"]
    return {
        "signature_name": metadata.get("signature", SIGNATURE),
        "instances": [{name: sample.tolist()} for sample in np.asarray(x, "float32")],
    }


def serving_config(export_dir: str | os.PathLike, base_path: str = "/models") -> str:
    """A TF Serving `models.config` listing every exported model under `export_dir`."""
    export_dir = pathlib.Path(export_dir)
    if not export_dir.is_dir():
        raise InputError(f"`export_dir` {str(export_dir)!r}: no such folder.")
    names = sorted(p.name for p in export_dir.iterdir() if p.is_dir() and list_versions(p))
    if not names:
        raise InputError(f"`export_dir` {str(export_dir)!r} holds no exported model (NAME/VERSION/ folders).")
    entries = "".join(
        "  config {\n"
        f'    name: "{name}"\n'
        f'    base_path: "{base_path.rstrip("/")}/{name}"\n'
        '    model_platform: "tensorflow"\n'
        "  }\n"
        for name in names
    )
    return f"{SERVING_CONFIG_MARK}\nmodel_config_list {{\n" + entries + "}\n"
