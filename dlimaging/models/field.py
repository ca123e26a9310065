"""What tiling a fully convolutional model needs to know, read from its layers: how far an
output pixel sees (the receptive field), the factor its sizes must be a multiple of (the
downsampling factor: 2^depth for a U-Net), and what one pixel of input costs in memory.

`dlimaging.serving.export` records these in an export's metadata; `dlimaging.serving.tiling`
uses them to cut a large image into tiles whose stitched result equals the whole image's.
"""

from __future__ import annotations

import math
from typing import Any

BYTES_PER_VALUE = 4  # float32 activations


def _history(value) -> list[str]:
    """The names of the layers whose outputs a serialized call argument holds (nested lists included)."""
    if isinstance(value, dict):
        history = value.get("config", {}).get("keras_history") if value.get("class_name") == "__keras_tensor__" else None
        if history:
            return [history[0]]
        return [name for item in value.values() for name in _history(item)]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in _history(item)]
    return []


def _pairs(value, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (int(value),) * rank


def _step(class_name: str, config: dict[str, Any], radius: float, jump: float, rank: int) -> tuple[float, float]:
    """(radius, jump) after one layer, in input pixels: `radius` is how far, on either side, an output
    value sees; `jump` the distance between two neighbouring values. Conservative where the exact
    extent depends on the padding of odd sizes (strided convolutions)."""
    if "kernel_size" in config:
        kernel = max(_pairs(config["kernel_size"], rank))
        dilation = max(_pairs(config.get("dilation_rate", 1), rank))
        stride = max(_pairs(config.get("strides", 1), rank))
        if "Transpose" in class_name:  # each input value spreads over `kernel` outputs, `stride` apart
            jump = jump / stride
            return radius + (kernel + stride - 1) * jump, jump
        if stride == 1 and config.get("padding") == "same":
            return radius + math.ceil((kernel - 1) * dilation / 2) * jump, jump
        return radius + ((kernel - 1) * dilation + stride - 1) * jump, jump * stride
    if "pool_size" in config and "Global" not in class_name:
        pool = max(_pairs(config["pool_size"], rank))
        stride = max(_pairs(config.get("strides") or pool, rank))
        return radius + (pool - 1) * jump, jump * stride
    if class_name.startswith("UpSampling"):
        size = max(_pairs(config.get("size", 2), rank))
        return radius + (size - 1) * jump / size, jump / size
    return radius, jump


def _functional_layers(config: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], list[str]]]:
    """(name, class, config, names of the layers it takes) for each layer, in order; a Sequential
    model's layers each take the one before."""
    layers, previous = [], []
    for entry in config.get("layers", []):
        name = entry.get("name") or entry["config"].get("name")
        if "inbound_nodes" in entry:
            sources = [n for node in entry["inbound_nodes"] for n in _history(node)]
        else:
            sources = previous
        layers.append((name, entry["class_name"], entry.get("config", {}), sources))
        previous = [name]
    return layers


def tiling_info(model) -> dict[str, Any]:
    """What tiling `model` needs, from its layers (convolution kernels, dilations, pooling, strides,
    transposed convolutions, up-sampling, and dlimaging's `PadToMultiple`):

    - "multiple": the downsampling factor; a tile starts at a multiple of it (2^depth for a U-Net);
    - "margin": the receptive field's reach on one side, in pixels, rounded up to that multiple;
      a tile carries this margin on each side, and only its interior is kept;
    - "bytes_per_pixel": the estimated memory of one input pixel's way through the network:
      4 bytes × the sum, over the layers, of each output's channels divided by that output's
      downsampling factor to the power of the rank (every activation held at once, an over-estimate
      of what TensorFlow keeps alive).

    For an ensemble, the members' largest multiple and margin, and the sum of their costs.
    """
    from dlimaging.models.ensemble import parallel_members

    members = parallel_members(model)
    if members:  # an ensemble (`dlimaging.models.ensemble`): each member sees the whole tile
        infos = [tiling_info(member) for member in members]
        multiple = max(info["multiple"] for info in infos)
        margin = int(math.ceil(max(info["margin"] for info in infos) / multiple)) * multiple
        return {"multiple": int(multiple), "margin": int(margin),
                "bytes_per_pixel": float(sum(info["bytes_per_pixel"] for info in infos))}
    rank = len(model.inputs[0].shape) - 2
    state: dict[str, tuple[float, float]] = {}
    multiple, cost = 1, 0.0
    for name, class_name, config, sources in _functional_layers(model.get_config()):
        known = [state[s] for s in sources if s in state]
        radius = max((r for r, _ in known), default=0.0)
        jump = max((j for _, j in known), default=1.0)
        radius, jump = _step(class_name, config, radius, jump, rank)
        state[name] = (radius, jump)
        multiple = max(multiple, int(round(jump)), int(config.get("multiple", 1)) if class_name == "PadToMultiple" else 1)
        try:
            channels = int(model.get_layer(name).output.shape[-1] or 1)
        except (ValueError, AttributeError):  # a layer used more than once, or a nested model
            channels = 1
        cost += channels / max(jump, 1e-9) ** rank
    reach = max((r for r, _ in state.values()), default=0.0)
    margin = int(math.ceil(reach / multiple)) * multiple
    return {"multiple": int(multiple), "margin": int(margin), "bytes_per_pixel": float(BYTES_PER_VALUE * cost)}
