"""Noise2Void's settings (`[data] target = "self"`, `n2v_fraction`), checked without TensorFlow, so
that reading an experiment file (`dlimaging.tuning.experiment`) checks them at once.

Noise2Void (Krull et al., CVPR 2019) trains a denoiser from noisy images alone: at a few random
pixels of each patch the input is replaced by a random neighbour, and the loss is computed only
there, against the noisy value the network did not see (`dlimaging.data.n2v`).
"""

from __future__ import annotations

from typing import Any

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.validation import check_number

SELF = "self"  # `target = "self"`: the target is the noisy input itself
DEFAULT_FRACTION = 0.002  # about 0.2 % of the pixels of each patch, as in n2v
MAX_FRACTION = 0.1
WINDOW = 5  # the replacing neighbour is drawn from the 5×5 window (5 points for signals) around the pixel
# What the validation and test losses of a self-supervised run are scored by: no clean image to
# compute PSNR against, so the objective is the masked loss itself.
OBJECTIVE = "val_loss"


def is_self(target: Any) -> bool:
    return isinstance(target, str) and target == SELF


def check_n2v_fraction(name: str, value: Any) -> float | None:
    """None, or the fraction of each patch's pixels masked, in (0, `MAX_FRACTION`]."""
    if value is None:
        return None
    return float(check_number(name, value, low=0.0, high=MAX_FRACTION, low_inclusive=False))


def check_self_supervised(target: Any, n2v_fraction: Any, labels: str | None, task: Any) -> float | None:
    """The masking fraction of a Noise2Void run (`target="self"`), or None for a supervised one.

    `labels` is the kind of labels of `task` (`registry.Task.labels`; "clean signals" for
    restoration). Refused: `target="self"` for a task other than restoration, and `n2v_fraction`
    without `target="self"`.
    """
    if not is_self(target):
        if n2v_fraction is not None:
            raise InputError(f"`n2v_fraction` applies to Noise2Void training, target={SELF!r}. "
                             f"Received: n2v_fraction={n2v_fraction!r} with target={target!r}")
        return None
    if labels != registry.CLEAN:
        raise InputError(f"target={SELF!r} (Noise2Void: the noisy input is its own target) applies to task "
                         f"'restoration', not to task={task!r}. Received: target={SELF!r}")
    fraction = check_n2v_fraction("n2v_fraction", n2v_fraction)
    return DEFAULT_FRACTION if fraction is None else fraction


def schema_fraction(source: str, target: Any, n2v_fraction: Any, task: str) -> float | None:
    """`check_self_supervised` for an experiment file's `[data]`: a CSV file's `target` is a column
    (whatever its name), so `target = "self"` means Noise2Void for the other sources only."""
    csv = any(e.suffix and "target" in e.options and source.lower().endswith(e.suffix)
              for e in registry.SOURCES.values())
    return check_self_supervised(None if csv else target, n2v_fraction, registry.task(task).labels, task)


def check_objective(name: str, objective: str | None) -> str:
    """A Noise2Void search's objective: the masked validation loss (no clean image to score PSNR on)."""
    if objective not in (None, OBJECTIVE):
        raise InputError(f"must be {OBJECTIVE!r} for Noise2Void (target = {SELF!r}): with no clean image there is "
                         f"no PSNR or SSIM to rank trials by, only the masked loss. Received: objective={objective!r}")
    return OBJECTIVE
