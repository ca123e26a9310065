"""The `tuning/*.toml` experiment schema: parse, validate, describe.

Every mistake raises `ExperimentError` (a `ValueError`) naming the file, the
key and the value, before anything is written.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import numbers
import os
import pathlib
import re
import sys
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from dlimaging.hypermodels import SAMPLINGS, augmentation_keys, space_keys

ALGORITHMS = ("random", "hyperband", "bayesian", "grid")
FAMILIES = ("cnn", "mlp")
TASKS = ("classification",)  # what load_dataset delivers today
STRATEGIES = ("none", "mirrored")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")

SCHEMA: dict[str, dict[str, Any]] = {
    "data": {"source": None, "batch_size": 32, "validation_split": 0.1, "test_split": 0.1, "image_size": None},
    "model": {"family": "cnn", "task": "classification"},
    "tuner": {
        "algorithm": "random", "objective": None, "max_trials": 20, "max_epochs": 20,
        "executions_per_trial": 1, "early_stopping_patience": 3, "hyperband_factor": 3,
        "distribution": "none",
    },
    "export": {"dir": "saved_models", "enabled": True},
}
TOP_LEVEL = {"name", "seed", "data", "model", "search", "tuner", "export"}


class ExperimentError(ValueError):
    """A mistake in an experiment file."""


@dataclasses.dataclass
class Experiment:
    """One validated experiment: what `dlimaging tune` runs."""

    name: str
    seed: int
    data: dict[str, Any]
    model: dict[str, Any]
    search: dict[str, Any] | None
    tuner: dict[str, Any]
    export: dict[str, Any]
    path: str | None = None

    @property
    def objective(self) -> str:
        return self.tuner["objective"]

    def to_dict(self) -> dict[str, Any]:
        result = dataclasses.asdict(self)
        result.pop("path")
        return result

    def fingerprint(self) -> str:
        """What must not change when a run resumes: everything but the budgets."""
        state = self.to_dict()
        state["tuner"] = {k: v for k, v in state["tuner"].items() if k not in ("max_trials", "max_epochs")}
        state["export"] = {}
        return json.dumps(state, sort_keys=True, default=str)


def _where(path, key):
    return f"{path}: {key}" if path else key


def _fail(path, key, message, value=dataclasses.MISSING):
    received = "" if value is dataclasses.MISSING else f" Received: {key} = {json.dumps(value, default=str)}"
    raise ExperimentError(f"{_where(path, key)}: {message}.{received}")


def _check_type(path, key, value, kind, what):
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        _fail(path, key, f"must be {what}", value)


def _check_table(path, section, table, allowed):
    if not isinstance(table, Mapping):
        _fail(path, f"[{section}]", "must be a table", table)
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        _fail(path, f"[{section}] {unknown[0]}", f"unknown key; allowed: {', '.join(sorted(allowed))}", table[unknown[0]])


def _check_spec(path, key, spec):
    """A fixed value, {choice = [...]} or {min, max, step?, sampling?, default?}."""
    if isinstance(spec, Mapping):
        keys = set(spec)
        if "choice" in keys:
            if keys - {"choice", "default"}:
                _fail(path, key, "a choice takes only `choice` and `default`", spec)
            if not isinstance(spec["choice"], list) or not spec["choice"]:
                _fail(path, key, "`choice` must be a non-empty list", spec)
            if "default" in spec and spec["default"] not in spec["choice"]:
                _fail(path, key, "`default` must be one of the choices", spec)
            return
        if "min" in keys or "max" in keys:
            extra = keys - {"min", "max", "step", "sampling", "default"}
            if extra:
                _fail(path, key, f"unknown range key `{sorted(extra)[0]}`; a range takes min, max, step, sampling, default", spec)
            for bound in ("min", "max"):
                if bound not in spec:
                    _fail(path, key, f"a range needs `{bound}`", spec)
                if isinstance(spec[bound], bool) or not isinstance(spec[bound], numbers.Real):
                    _fail(path, key, f"`{bound}` must be a number", spec)
            if spec["max"] <= spec["min"]:
                _fail(path, key, "`max` must be greater than `min`", spec)
            sampling = spec.get("sampling", "linear")
            if sampling not in SAMPLINGS:
                _fail(path, key, f"`sampling` must be one of {', '.join(SAMPLINGS)}", spec)
            if sampling != "linear" and spec["min"] <= 0:
                _fail(path, key, f"sampling = \"{sampling}\" needs `min` > 0", spec)
            step = spec.get("step")
            if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Real) or step <= 0):
                _fail(path, key, "`step` must be a positive number", spec)
            default = spec.get("default")
            if default is not None and not (spec["min"] <= default <= spec["max"]):
                _fail(path, key, "`default` must lie between `min` and `max`", spec)
            return
        _fail(path, key, "must be a value, {choice = [...]} or {min = ..., max = ...}", spec)


def parse_experiment(config: Mapping[str, Any], *, path: str | None = None, default_name: str | None = None) -> Experiment:
    """Validates a parsed TOML document and fills in the defaults."""
    where = path or "experiment"
    unknown = sorted(set(config) - TOP_LEVEL)
    if unknown:
        _fail(where, unknown[0], f"unknown key; allowed: {', '.join(sorted(TOP_LEVEL))}", config[unknown[0]])
    name = config.get("name", default_name)
    if name is None:
        _fail(where, "name", "is required")
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or name in (".", ".."):
        _fail(where, "name", "must be a plain folder name: letters, digits, _ . - only", name)
    seed = config.get("seed", 0)
    _check_type(where, "seed", seed, int, "an integer")

    sections = {}
    for section, defaults in SCHEMA.items():
        table = config.get(section, {})
        _check_table(where, section, table, defaults)
        sections[section] = {**copy.deepcopy(defaults), **table}

    data = sections["data"]
    if not data["source"]:
        _fail(where, "[data] source", "is required (e.g. \"digits\")")
    _check_type(where, "[data] source", data["source"], str, "a string")
    _check_type(where, "[data] batch_size", data["batch_size"], int, "a positive integer")
    if data["batch_size"] < 1:
        _fail(where, "[data] batch_size", "must be a positive integer", data["batch_size"])
    for key in ("validation_split", "test_split"):
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
            _fail(where, f"[data] {key}", "must be a number in [0, 1)", value)
    if data["validation_split"] == 0:
        _fail(where, "[data] validation_split", "must be above 0: the search scores trials on validation data", 0)
    if data["image_size"] is not None and (
        not isinstance(data["image_size"], list) or len(data["image_size"]) != 2
        or not all(isinstance(v, int) and v > 0 for v in data["image_size"])
    ):
        _fail(where, "[data] image_size", "must be [height, width]", data["image_size"])

    model = sections["model"]
    if model["family"] not in FAMILIES:
        _fail(where, "[model] family", f"must be one of {', '.join(FAMILIES)}", model["family"])
    if model["task"] not in TASKS:
        _fail(where, "[model] task", f"must be one of {', '.join(TASKS)}", model["task"])

    tuner = sections["tuner"]
    if tuner["algorithm"] not in ALGORITHMS:
        _fail(where, "[tuner] algorithm", f"must be one of {', '.join(ALGORITHMS)}", tuner["algorithm"])
    for key in ("max_trials", "max_epochs", "executions_per_trial", "early_stopping_patience"):
        value = tuner[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            _fail(where, f"[tuner] {key}", "must be a positive integer", value)
    if isinstance(tuner["hyperband_factor"], bool) or not isinstance(tuner["hyperband_factor"], int) or tuner["hyperband_factor"] < 2:
        _fail(where, "[tuner] hyperband_factor", "must be an integer >= 2", tuner["hyperband_factor"])
    if tuner["objective"] is not None:
        objectives = ("val_accuracy", "val_loss", "accuracy", "loss")
        if tuner["objective"] not in objectives:
            _fail(where, "[tuner] objective", f"must be one of {', '.join(objectives)}", tuner["objective"])
    else:
        tuner["objective"] = "val_accuracy"  # TASKS holds classification only
    if tuner["distribution"] not in STRATEGIES:
        _fail(where, "[tuner] distribution", f"must be one of {', '.join(STRATEGIES)}", tuner["distribution"])

    export = sections["export"]
    _check_type(where, "[export] dir", export["dir"], str, "a folder path")
    _check_type(where, "[export] enabled", export["enabled"], bool, "true or false")

    search = config.get("search")
    if search is not None:
        if not isinstance(search, Mapping):
            _fail(where, "[search]", "must be a table", search)
        allowed = space_keys(model["family"])
        for key, spec in search.items():
            if key == "augmentation":
                if not isinstance(spec, Mapping):
                    _fail(where, "[search] augmentation", "must be a table of augmentation options", spec)
                for option, option_spec in spec.items():
                    _check_spec(where, f"[search.augmentation] {option}", option_spec)
                continue
            if key not in allowed:
                _fail(where, f"[search] {key}", f"unknown key; allowed: {', '.join(allowed)}", spec)
            _check_spec(where, f"[search] {key}", spec)
        search = copy.deepcopy(dict(search))
    return Experiment(name=name, seed=seed, data=data, model=model, search=search,
                      tuner=tuner, export=export, path=path)


def load_experiment(path: str | os.PathLike) -> Experiment:
    """Reads and validates a `tuning/*.toml` file.

    Example:
    >>> experiment = load_experiment("tuning/digits_cnn.toml")  # doctest: +SKIP
    >>> experiment.name
    'digits_cnn'
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ExperimentError(f"{path}: no such experiment file.")
    try:
        config = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ExperimentError(f"{path}: not valid TOML ({error}).") from None
    return parse_experiment(config, path=str(path), default_name=path.stem)


def check_against_data(experiment: Experiment, input_shape) -> None:
    """Checks what needs the dataset: augmentation options fit the input rank."""
    options = (experiment.search or {}).get("augmentation")
    if not options:
        return
    allowed = augmentation_keys(input_shape)
    for option in options:
        if option not in allowed:
            raise ExperimentError(
                f"{experiment.path or 'experiment'}: [search.augmentation] {option}: not an option for "
                f"inputs of shape {tuple(input_shape)}; allowed: {', '.join(allowed) or 'none'}."
            )

