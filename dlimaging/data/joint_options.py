"""The options of `dlimaging.data.joint`'s augmentation, and their check: no TensorFlow here, so
reading an experiment file (`dlimaging.tuning.experiment`) checks them without loading it.
"""

from __future__ import annotations

from typing import Any, Mapping

from dlimaging.errors import InputError

FLIPS = {"horizontal": (False, True), "vertical": (True, False), "horizontal_and_vertical": (True, True)}
MOVING = ("flip", "rotate90", "rotation", "zoom", "translation")
INTENSITY = ("contrast", "brightness", "noise")
SIGNAL_OPTIONS = ("flip",) + INTENSITY
# Volumes move in the (height, width) plane only: flips and quarter turns, which need no interpolation.
VOLUME_OPTIONS = ("flip", "rotate90") + INTENSITY


def check_joint_options(options: Mapping[str, Any] | None, image: bool = True,
                        moving_only: bool = False, volume: bool = False) -> dict[str, Any]:
    """The options, checked: known names, values of the right kind; those switched off (0, False,
    None) are left out. `moving_only`: the intensity options are refused (a restoration's).
    `volume`: the samples are volumes, which take flips and quarter turns in the (height, width)
    plane, not rotation, zoom or translation."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise InputError(f"`augmentation` must be a dict of options. Received: augmentation={options!r}")
    allowed = VOLUME_OPTIONS if volume else MOVING + INTENSITY if image else SIGNAL_OPTIONS
    allowed = tuple(k for k in allowed if k in MOVING) if moving_only else allowed
    checked = {}
    for key, value in options.items():
        if key not in allowed:
            kind = "volumes" if volume else "images" if image else "signals"
            raise InputError(f"`augmentation` option {key!r} is not one of {', '.join(allowed)} "
                             f"({kind}). Received: {key}={value!r}")
        if value is None or value is False or value == 0:
            continue
        if key == "flip":
            if value is True:
                value = "horizontal_and_vertical"
            if value not in FLIPS:
                raise InputError(f"`flip` must be True or one of {', '.join(FLIPS)}. Received: flip={value!r}")
        elif key == "rotate90":
            if value is not True:
                raise InputError(f"`rotate90` must be True or False. Received: rotate90={value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise InputError(f"`{key}` must be a number in [0, 1). Received: {key}={value!r}")
        checked[key] = value
    return checked
