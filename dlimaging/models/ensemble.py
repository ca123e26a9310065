"""An ensemble of trained models: one Keras model whose output is the mean of its members' outputs.

A search trains many models and keeps one. Averaging the outputs of the few best (ensemble
selection, Caruana et al. 2004; what AutoGluon and auto-sklearn export by default) is often more
accurate than the best alone, at no cost in training: the members are trials already trained. The
cost is at inference: an ensemble of K members is about K times the size and takes about K times as
long. `dlimaging tune` exports one with `[export] choice = "ensemble=K"`.
"""

from __future__ import annotations

from typing import Sequence

import keras

from dlimaging.errors import InputError


def ensemble_model(members: Sequence[keras.Model], name: str = "ensemble") -> keras.Model:
    """A functional model whose output is the mean of `members`' outputs on the same input.

    Each member keeps its own layers (standardisation, and augmentation, which acts only in
    training) and is renamed `member_<i>` inside the ensemble. The ensemble records the members'
    task (`dlimaging_task`, which export reads; when the members record none, export reads the
    first member's output layer) and,
    when the first member is compiled, is compiled with its loss and metrics (new metric objects,
    not shared with it), so that it is evaluated as its members are.

    Args:
        members: two or more Keras models of one task, each with one input and one output, all
            of the same shapes.
        name: str. The ensemble's name. Defaults to "ensemble".

    Returns:
        A `keras.Model`.

    Example:

    >>> import numpy as np, dlimaging as dli
    >>> from dlimaging.models.ensemble import ensemble_model
    >>> a, b = (dli.build_mlp((4,), num_classes=3, hidden_units=(8,)) for _ in range(2))
    >>> both = ensemble_model([a, b])
    >>> x = np.ones((2, 4), "float32")
    >>> mean = (a.predict(x, verbose=0) + b.predict(x, verbose=0)) / 2
    >>> bool(np.allclose(both.predict(x, verbose=0), mean, atol=1e-6))
    True
    """
    members = list(members)
    if len(members) < 2:
        raise InputError(f"An ensemble needs at least 2 models. Received: {len(members)} model(s)")
    if any(len(m.inputs) != 1 or len(m.outputs) != 1 for m in members):
        raise InputError("Each model of an ensemble must have one input and one output. Received: "
                         f"{[(len(m.inputs), len(m.outputs)) for m in members]} (inputs, outputs)")
    shapes = [(tuple(m.inputs[0].shape[1:]), tuple(m.outputs[0].shape[1:])) for m in members]
    if len(set(shapes)) != 1:
        raise InputError(f"The models of an ensemble must take and give the same shapes. Received: {shapes}")
    tasks = {getattr(m, "dlimaging_task", None) for m in members}
    if len(tasks) != 1:
        raise InputError(f"The models of an ensemble must be of one task. Received: {sorted(map(str, tasks))}")
    for index, member in enumerate(members):
        member.name = f"member_{index}"  # a functional model needs unique layer names
    inputs = keras.Input(shape=members[0].inputs[0].shape[1:])
    outputs = keras.layers.Average(name="mean")([member(inputs) for member in members])
    model = keras.Model(inputs, outputs, name=name)
    task = tasks.pop()
    if task is not None:  # else export reads it from the first member's output (`parallel_members`)
        model.dlimaging_task = task
    arguments = getattr(members[0], "dlimaging_compile_arguments", None)  # recorded by `compile_model`
    compiled = arguments() if arguments is not None else None
    if compiled is None and getattr(members[0], "compiled", False):
        # A model compiled elsewhere: what Keras 3's `Model.compile` kept of its arguments.
        config = getattr(getattr(members[0], "_compile_config", None), "config", None)
        if config is None:
            raise InputError("The first model of the ensemble is compiled, but its loss and metrics cannot be "
                             "read: compile the ensemble yourself, or pass models built by dlimaging")
        compiled = {"loss": config.get("loss"), "metrics": config.get("metrics")}
    if compiled is not None:
        from dlimaging.models.compile import build_metrics

        model.compile(loss=compiled["loss"], metrics=compiled["metrics"])
        if task is not None:
            build_metrics(model, task)  # their variables now, eagerly, as a builder's
    return model


def parallel_members(model) -> list:
    """The models of an ensemble (models side by side on one input, then averaged), else []."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    others = [layer for layer in model.layers if not isinstance(layer, keras.Model)]
    if len(nested) < 2 or any(type(layer).__name__ not in ("InputLayer", "Average") for layer in others):
        return []
    return nested
