"""The `tuning/*.toml` experiment schema: parse, validate, describe.

A leaf of the package: it imports neither TensorFlow, Keras nor Keras Tuner, so checking a file is instant.
Names (families, tasks, algorithms) come from `dlimaging.registry`; number checks from `dlimaging.validation`.
Every mistake raises `ExperimentError` (an `InputError`) in one line naming file, key and value, before any write.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import numbers
import os
import pathlib
from typing import Any, Mapping

import dlimaging.data.n2v_options as n2v
from dlimaging import registry
from dlimaging.data.corruption import check_corruption
from dlimaging.data.joint_options import check_joint_options
from dlimaging.data.normalize_options import check_normalize_setting
from dlimaging.errors import InputError
from dlimaging.files import folder_name_problem
from dlimaging.serving.export import check_self_ensemble
from dlimaging.tuning import pruning
from dlimaging.validation import (
    ARGUMENT_CHECKS,
    at_least_two,
    boolean,
    check_export_choice,
    check_positive_int,
    check_seed,
    choice_of,
    column_names,
    fraction_below_one,
    image_size,
    non_empty_string,
    optional_positive_int,
    optional_string,
)

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover  (Python 3.10)
    import tomli as tomllib


STRATEGIES = ("none", "mirrored")
SAMPLINGS = ("linear", "log", "reverse_log")


class ExperimentError(InputError):
    """A mistake in an experiment file."""


def _setting(default, check):
    return dataclasses.field(default=default, metadata={"check": check})


@dataclasses.dataclass(frozen=True)
class DataSettings:
    """`[data]`: where the samples come from and how they are split and batched."""

    source: str = _setting(None, non_empty_string)
    batch_size: int = _setting(32, check_positive_int)
    validation_split: float = _setting(0.1, fraction_below_one)
    test_split: float = _setting(0.1, fraction_below_one)
    image_size: tuple[int, int] | None = _setting(None, image_size)
    target: str | tuple[str, ...] | None = _setting(None, column_names)  # CSV: the target column(s)
    features: str | tuple[str, ...] | None = _setting(None, column_names)  # CSV: the feature columns
    test: str | None = _setting(None, optional_string)  # a separate test file
    standardize: str | None = _setting(None, ARGUMENT_CHECKS["standardize"])  # a builder's, not searched
    corruption: tuple[dict, ...] | None = _setting(None, lambda name, value: check_corruption(value, name))  # and:
    patch_size: int | None = _setting(None, optional_positive_int)
    patches_per_epoch: int | None = _setting(None, optional_positive_int)
    augmentation: dict | None = _setting(None, lambda name, value: check_joint_options(value) or None)  # data's
    n2v_fraction: float | None = _setting(None, n2v.check_n2v_fraction)  # Noise2Void (target = "self")
    cache: str = _setting("auto", choice_of(registry.CACHE_MODES))  # what is kept of the decoded data
    normalize: str = _setting("dtype", check_normalize_setting)  # or "percentile[:LOW,HIGH]", images


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    """`[model]`: the family searched and the task it is built for."""

    family: str = _setting(registry.DEFAULT_FAMILY, choice_of(registry.FAMILIES))
    task: str = _setting(registry.DEFAULT_TASK, choice_of(registry.TASKS))


@dataclasses.dataclass(frozen=True)
class TunerSettings(pruning.PruningSettings):
    """`[tuner]`: the search algorithm, its objective and budgets; pruning's keys in `PruningSettings`."""

    algorithm: str = _setting(registry.DEFAULT_TUNER, choice_of(registry.TUNERS))
    objective: str | None = _setting(None, non_empty_string)  # and checked against the task
    max_trials: int = _setting(20, check_positive_int)
    max_epochs: int = _setting(20, check_positive_int)
    executions_per_trial: int = _setting(1, check_positive_int)
    early_stopping_patience: int = _setting(3, check_positive_int)
    hyperband_factor: int = _setting(3, at_least_two)
    # Random trials before Bayesian optimisation's Gaussian process takes over; None: see
    # `registry.bayesian_initial_points`.
    bayesian_initial_points: int | None = _setting(None, optional_positive_int)
    distribution: str = _setting("none", choice_of(STRATEGIES))


@dataclasses.dataclass(frozen=True)
class ExportSettings:
    """`[export]`: where the best model goes, if anywhere."""

    dir: str = _setting("saved_models", non_empty_string)
    enabled: bool = _setting(True, boolean)
    # "best", or "smallest-within=T": the fewest parameters within T of the best objective.
    choice: str = _setting("best", check_export_choice)
    self_ensemble: bool = _setting(False, boolean)  # restoration: the mean over the 8 flips and rotations


SECTIONS = {"data": DataSettings, "model": ModelSettings, "tuner": TunerSettings, "export": ExportSettings}
TOP_LEVEL = ("name", "seed", "data", "model", "search", "tuner", "export")


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One validated experiment: what `dlimaging tune` runs."""

    name: str
    seed: int
    data: DataSettings
    model: ModelSettings
    search: dict[str, Any] | None
    tuner: TunerSettings
    export: ExportSettings
    path: str | None = None

    @property
    def objective(self) -> str:
        return self.tuner.objective

    @property
    def direction(self) -> str:
        """"min" or "max": how the objective improves."""
        return registry.task(self.model.task).direction(self.objective)

    @property
    def where(self) -> str:
        return self.path or self.name

    def to_dict(self) -> dict[str, Any]:
        result = dataclasses.asdict(self)
        result.pop("path")
        return result

    def fingerprint(self) -> str:
        """What must not change when a run resumes: everything but the budgets."""
        state = self.to_dict()
        state["tuner"] = {k: v for k, v in state["tuner"].items()  # older run folders still resume
                          if k not in ("max_trials", "max_epochs") and not pruning.unchanged_later_setting(k, v)}
        state["export"] = {}
        state["data"].pop("cache")  # where the decoded data is kept changes no result
        return json.dumps(state, sort_keys=True, default=str)

    def with_budgets(self, max_trials: int | None = None, max_epochs: int | None = None) -> "Experiment":
        """The experiment with its budgets overridden (`--max-trials`, `--max-epochs`), checked."""
        changes = {}
        for key, value in (("max_trials", max_trials), ("max_epochs", max_epochs)):
            if value is not None:
                changes[key] = _checked(f"--{key.replace('_', '-')}", key, check_positive_int, value)
        return dataclasses.replace(self, tuner=dataclasses.replace(self.tuner, **changes))


def _checked(where: str, key: str, check, value, name: str | None = None):
    """Runs one check and words its error as `where: key: message`."""
    name = name or key.split()[-1]
    try:
        return check(name, value)
    except InputError as error:
        message = str(error).removeprefix(f"`{name}` ")
        raise ExperimentError(f"{where}: {key}: {message}") from None


def _fail(where, key, message, value=dataclasses.MISSING):
    received = "" if value is dataclasses.MISSING else f" Received: {key} = {json.dumps(value, default=str)}"
    raise ExperimentError(f"{where}: {key}: {message}.{received}")


def _section(where: str, section: str, cls, table) -> Any:
    """A typed section from its TOML table: unknown keys refused, each value checked."""
    if not isinstance(table, Mapping):
        _fail(where, f"[{section}]", "must be a table", table)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        _fail(where, f"[{section}] {unknown[0]}", f"unknown key; allowed: {', '.join(fields)}", table[unknown[0]])
    values = {}
    for name, field in fields.items():
        if name not in table:
            continue
        values[name] = _checked(where, f"[{section}] {name}", field.metadata["check"], table[name], name)
    return cls(**values)


# Search keys without a rule in `validation.ARGUMENT_CHECKS`: `loss` (the task's, `_rule`), `optimizer`
# (`_check_optimizer_settings`), `augmentation` (per option), `activation` (Keras's: `search.check_with_keras`).
CHECKED_APART = ("loss", "optimizer", "augmentation", "activation")


def _rule(name, task):
    """The rule every value of search key `name` follows: the builder's own, or the task's losses."""
    if name == "loss":
        return choice_of(registry.task(task).losses)
    return ARGUMENT_CHECKS.get(name)


def _value_kind(value) -> str:
    """Keras Tuner's `Choice` holds one kind (the hypermodel makes ints and floats floats)."""
    if isinstance(value, bool):
        return "booleans"
    if isinstance(value, numbers.Real):
        return "numbers"
    return {str: "strings", list: "lists"}.get(type(value), "tables")


def _check_values(where, key, name, spec, task):
    """Every value a spec can give (a fixed value, each choice, a range's bounds and default),
    checked with the builder's own rule for argument `name` (`validation.ARGUMENT_CHECKS`)."""
    if isinstance(spec, Mapping) and "choice" in spec:
        kinds = list(dict.fromkeys(_value_kind(value) for value in spec["choice"]))
        if "tables" in kinds:
            _fail(where, key, "a choice takes strings, numbers, booleans or lists, not tables", spec)
        if len(kinds) > 1:
            _fail(where, key, f"the choices must be of one kind; these mix {' and '.join(kinds)}", spec)
    check = _rule(name, task)
    if check is None:
        return
    if not isinstance(spec, Mapping):
        values = [("", spec)]
    elif "choice" in spec:
        values = [("a choice: ", value) for value in spec["choice"]]
    else:
        values = [(f"`{bound}`: ", spec[bound]) for bound in ("min", "max", "default") if bound in spec]
    for what, value in values:
        try:
            check(name, value)
        except InputError as error:
            within = f" (in {key} = {json.dumps(spec, default=str)})" if what else ""
            raise ExperimentError(f"{where}: {key}: {what}{error}{within}") from None


def _check_spec(where, key, spec, name, task):
    """A fixed value, {choice = [...]} or {min, max, step?, sampling?, default?}; `name` is the
    argument whose rule every value must follow (for `task`)."""
    if not isinstance(spec, Mapping):
        _check_values(where, key, name, spec, task)
        return
    keys = set(spec)
    if "choice" in keys:
        if keys - {"choice", "default"}:
            _fail(where, key, "a choice takes only `choice` and `default`", spec)
        if not isinstance(spec["choice"], list) or not spec["choice"]:
            _fail(where, key, "`choice` must be a non-empty list", spec)
        if "default" in spec and spec["default"] not in spec["choice"]:
            _fail(where, key, "`default` must be one of the choices", spec)
        _check_values(where, key, name, spec, task)
        return
    if not keys & {"min", "max"}:
        _fail(where, key, "must be a value, {choice = [...]} or {min = ..., max = ...}", spec)
    extra = keys - {"min", "max", "step", "sampling", "default"}
    if extra:
        _fail(where, key, f"unknown range key `{sorted(extra)[0]}`; a range takes min, max, step, sampling, default", spec)
    for bound in ("min", "max"):
        if bound not in spec:
            _fail(where, key, f"a range needs `{bound}`", spec)
        if isinstance(spec[bound], bool) or not isinstance(spec[bound], numbers.Real):
            _fail(where, key, f"`{bound}` must be a number", spec)
        if not math.isfinite(spec[bound]):
            _fail(where, key, f"`{bound}` must be a finite number", spec)
    if spec["max"] <= spec["min"]:
        _fail(where, key, "`max` must be greater than `min`", spec)
    sampling = spec.get("sampling", "linear")
    if sampling not in SAMPLINGS:
        _fail(where, key, f"`sampling` must be one of {', '.join(SAMPLINGS)}", spec)
    if sampling != "linear" and spec["min"] <= 0:
        _fail(where, key, f"sampling = \"{sampling}\" needs `min` > 0", spec)
    step = spec.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Real)
                             or not math.isfinite(step) or step <= 0):
        _fail(where, key, "`step` must be a positive number", spec)
    default = spec.get("default")
    if default is not None and (isinstance(default, bool) or not isinstance(default, numbers.Real)):
        _fail(where, key, "`default` must be a number", spec)
    if default is not None and not (spec["min"] <= default <= spec["max"]):
        _fail(where, key, "`default` must lie between `min` and `max`", spec)
    _check_values(where, key, name, spec, task)


def _plain_values(where, key, value):
    """TOML values a search space can hold: strings, numbers, booleans, and lists and tables of them."""
    if isinstance(value, Mapping):
        for inner, item in value.items():
            _plain_values(where, key, item)
    elif isinstance(value, list):
        for item in value:
            _plain_values(where, key, item)
    elif not isinstance(value, (str, int, float, bool)):
        _fail(where, key, f"holds a {type(value).__name__}; a search space takes strings, numbers and booleans",
              str(value))


def _spec_values(spec) -> list:
    """The values a spec may take: its choices, or its one fixed value (ranges: none listed)."""
    if isinstance(spec, Mapping):
        return list(spec.get("choice", []))
    return [spec]


def _check_optimizer_settings(where: str, search: Mapping[str, Any]) -> None:
    """Optimizer names are known, and each optimizer setting searched applies to some optimizer searched."""
    names = _spec_values(search.get("optimizer", registry.DEFAULT_OPTIMIZER))
    for name in names:
        if name not in registry.OPTIMIZERS:
            _fail(where, "[search] optimizer", f"must be one of {', '.join(registry.OPTIMIZERS)}", name)
    taken = {argument for name in names for argument in registry.OPTIMIZERS[name].arguments}
    for key in search:
        if key in registry.optimizer_arguments() and key not in taken:
            takers = [n for n, entry in registry.OPTIMIZERS.items() if key in entry.arguments]
            _fail(where, f"[search] {key}",
                  f"does not apply to optimizer {' or '.join(map(repr, names))} (it applies to {', '.join(takers)})",
                  search[key])


def _search(where: str, search, family: str, task: str) -> dict[str, Any] | None:
    if search is None:
        return None
    if not isinstance(search, Mapping):
        _fail(where, "[search]", "must be a table", search)
    _plain_values(where, "[search]", search)
    entry = registry.family(family)
    if entry.width_key in search and entry.depth_key not in search:
        _fail(where, f"[search] {entry.width_key}",
              f"sets the width of each layer and needs `{entry.depth_key}` for the depth", search[entry.width_key])
    allowed = registry.space_keys(family)
    for key, spec in search.items():
        if key == "augmentation":
            if not isinstance(spec, Mapping):
                _fail(where, "[search] augmentation", "must be a table of augmentation options", spec)
            for option, option_spec in spec.items():
                if option not in registry.AUGMENTATIONS:
                    _fail(where, f"[search.augmentation] {option}",
                          f"unknown option; allowed: {', '.join(registry.AUGMENTATIONS)}", option_spec)
                _check_spec(where, f"[search.augmentation] {option}", option_spec, option, task)
            continue
        if key not in allowed:
            _fail(where, f"[search] {key}", f"unknown key; allowed: {', '.join(allowed)}", spec)
        _check_spec(where, f"[search] {key}", spec, key, task)
    _check_optimizer_settings(where, search)
    return copy.deepcopy(dict(search))


def _objective(where: str, tuner: TunerSettings, task_name: str) -> TunerSettings:
    task = registry.task(task_name)
    if tuner.objective is None:
        return dataclasses.replace(tuner, objective=task.objective)
    if tuner.objective not in task.objectives:
        _fail(where, "[tuner] objective", f"must be one of {', '.join(task.objectives)} for task {task_name!r}",
              tuner.objective)
    return tuner


def parse_experiment(config: Mapping[str, Any], *, path: str | None = None, default_name: str | None = None) -> Experiment:
    """Validates a parsed TOML document and fills in the defaults."""
    where = path or "experiment"
    unknown = sorted(set(config) - set(TOP_LEVEL))
    if unknown:
        _fail(where, unknown[0], f"unknown key; allowed: {', '.join(TOP_LEVEL)}", config[unknown[0]])
    name = config.get("name", default_name)
    if name is None:
        _fail(where, "name", "is required")
    if folder_name_problem(name):
        _fail(where, "name", folder_name_problem(name), name if not isinstance(name, str) else name[:60])
    seed = _checked(where, "seed", check_seed, config.get("seed", 0))

    sections = {key: _section(where, key, cls, config.get(key, {})) for key, cls in SECTIONS.items()}
    if sections["data"].source is None:
        _fail(where, "[data] source", "is required (e.g. \"digits\")")
    if sections["data"].validation_split == 0:
        _fail(where, "[data] validation_split", "must be above 0: the search scores trials on validation data", 0)
    model = sections["model"]
    if not isinstance(config.get("model", {}), Mapping) or "task" not in config.get("model", {}):
        # No task given: the family's first (a U-Net's is restoration, a CNN's classification).
        model = dataclasses.replace(model, task=registry.family(model.family).tasks[0])
    try:
        registry.check_family_task(model.family, model.task)
    except InputError as error:
        _fail(where, "[model] task", str(error).split(". Received")[0], model.task)
    data = sections["data"]
    fraction = lambda _, v: n2v.schema_fraction(data.source, v, data.n2v_fraction, model.task)  # noqa: E731
    if _checked(where, "[data] target", fraction, data.target):  # Noise2Void: ranked by its masked val_loss
        objective = _checked(where, "[tuner] objective", n2v.check_objective, sections["tuner"].objective)
        sections["tuner"] = dataclasses.replace(sections["tuner"], objective=objective)
    elif registry.task(model.task).labels == registry.CLEAN and sections["data"].corruption is None:
        _fail(where, "[data] corruption", f"is required for task \"{model.task}\" (e.g. corruption = "
              "{kind = \"gaussian\", sigma = 0.098})")
    for key, kinds in registry.PAIR_SETTINGS.items():
        if registry.task(model.task).labels not in kinds and getattr(sections["data"], key) is not None:
            takers = " or ".join(f'"{n}"' for n, e in registry.TASKS.items() if e.labels in kinds)
            _fail(where, f"[data] {key}", f"applies to [model] task {takers}, not \"{model.task}\"",
                  config["data"][key])
    _checked(where, "[export] self_ensemble", lambda _, v: check_self_ensemble(v, model.task),
             sections["export"].self_ensemble)
    if sections["data"].standardize is not None and "standardize" not in registry.builder_arguments(model.family):
        takers = " or ".join(f'"{n}"' for n in registry.FAMILIES if "standardize" in registry.builder_arguments(n))
        _fail(where, "[data] standardize", f"applies to [model] family {takers}, not \"{model.family}\"",
              sections["data"].standardize)
    search = config.get("search")
    if sections["data"].standardize is not None and isinstance(search, Mapping) and "standardize" in search:
        _fail(where, "[search] standardize", "is set in [data] already; set it in one place", search["standardize"])
    return Experiment(
        name=name, seed=seed, data=sections["data"], model=model,
        search=_search(where, config.get("search"), model.family, model.task),
        tuner=pruning.check_pruning(where, _objective(where, sections["tuner"], model.task), ExperimentError), export=sections["export"], path=path,
    )


def load_experiment(path: str | os.PathLike) -> Experiment:
    """Reads and validates a `tuning/*.toml` file.

    Example:
    >>> experiment = load_experiment("tuning/digits_cnn.toml")  # doctest: +SKIP
    >>> experiment = parse_experiment({"name": "demo", "data": {"source": "digits"}})
    >>> experiment.model.family, experiment.model.task, experiment.tuner.algorithm
    ('cnn', 'classification', 'random')
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ExperimentError(f"{path}: no such experiment file.")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ExperimentError(
            f"{path}: not a TOML text file: byte {error.start} is not UTF-8 (is it a binary file?)."
        ) from None
    except OSError as error:
        raise ExperimentError(f"{path}: cannot be read ({error.strerror or error}).") from None
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ExperimentError(f"{path}: not valid TOML ({error}).") from None
    return parse_experiment(config, path=str(path), default_name=path.stem)
