"""TF Serving's REST bodies (the request from inputs, the answer from outputs) and `models.config`.
"""

from __future__ import annotations

import functools
import os
import pathlib
from typing import Any

import numpy as np

from dlimaging.errors import InputError
from dlimaging.serving.export import SERVING_CONFIG_MARK, SIGNATURE, list_versions
from dlimaging.serving.inputs import load_inputs
from dlimaging.serving.restoration import read_restoration_input


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


def request_inputs(path: str | os.PathLike, metadata: dict[str, Any]) -> np.ndarray:
    """The batch that a request for the file `path` sends to the export `metadata` describes: as
    `predict` reads it, so at the file's own size for an export that takes any size (restoration),
    never resized to the training patch; else at the model's input shape."""
    shape = metadata["input"]["shape"]
    if metadata["input"].get("any_size"):
        return read_restoration_input(path, shape)[0]
    return load_inputs([path], shape, axis=metadata["input"].get("axis"),
                       features=metadata["input"].get("features"))[0]


@functools.lru_cache(maxsize=None)
def model_server_config_class():
    """TF Serving's `tensorflow.serving.ModelServerConfig` message, built from its descriptor.

    The fields are those of tensorflow_serving/config/model_server_config.proto that dlimaging
    writes (a `model_config_list` of `config` entries: `name`, `base_path`, `model_platform`),
    with their numbers; `tensorflow-serving-api`, which holds the compiled proto, pins its own
    TensorFlow, so it is not a dependency. The messages live in a pool of their own.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    string = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    message = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    repeated = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    proto = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/model_server_config.proto", package="tensorflow.serving", syntax="proto3")
    config = proto.message_type.add(name="ModelConfig")
    for name, number in (("name", 1), ("base_path", 2), ("model_platform", 4)):
        config.field.add(name=name, number=number, type=string, label=optional)
    proto.message_type.add(name="ModelConfigList").field.add(
        name="config", number=1, type=message, label=repeated, type_name=".tensorflow.serving.ModelConfig")
    server = proto.message_type.add(name="ModelServerConfig")
    server.oneof_decl.add(name="config")
    server.field.add(name="model_config_list", number=1, type=message, label=optional, oneof_index=0,
                     type_name=".tensorflow.serving.ModelConfigList")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.ModelServerConfig"))


def serving_config(export_dir: str | os.PathLike, base_path: str = "/models") -> str:
    """A TF Serving `models.config` listing every exported model under `export_dir`.

    Written by protobuf's text format from a `ModelServerConfig` message, so a quote, a backslash
    or a newline in a path or a name is escaped as TF Serving's parser expects, and can never
    end a string early and add configuration of its own.
    """
    from google.protobuf import text_format

    export_dir = pathlib.Path(export_dir)
    if not export_dir.is_dir():
        raise InputError(f"`export_dir` {str(export_dir)!r}: no such folder.")
    names = sorted(p.name for p in export_dir.iterdir() if p.is_dir() and list_versions(p))
    if not names:
        raise InputError(f"`export_dir` {str(export_dir)!r} holds no exported model (NAME/VERSION/ folders).")
    for what, text in [("`base_path`", base_path)] + [(f"the model folder {export_dir / n}", n) for n in names]:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"{what} is not valid UTF-8 text, which a models.config holds; rename it. "
                             f"Received: {text!r}") from None
    config = model_server_config_class()()
    for name in names:
        config.model_config_list.config.add(
            name=name, base_path=f"{base_path.rstrip('/')}/{name}", model_platform="tensorflow")
    # ASCII only (other characters as octal escapes of their UTF-8 bytes): the same file whatever the locale.
    return f"{SERVING_CONFIG_MARK}\n" + text_format.MessageToString(config, as_utf8=False)
