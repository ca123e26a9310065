"""The tables: every entry resolves, and its names appear nowhere else in the code."""

import ast
import inspect
import pathlib

import pytest

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.models.augmentation import image_augmentation, signal_augmentation

PACKAGE = pathlib.Path(registry.__file__).parent


@pytest.mark.parametrize("name", list(registry.FAMILIES))
def test_each_family_resolves_and_its_hypermodel_maps_back(name):
    entry = registry.family(name)
    builder = entry.load_builder()
    assert callable(builder)
    assert registry.family_of_hypermodel(entry.load_hypermodel()) == name
    space = entry.load_default_space()
    assert {entry.depth_key, entry.width_key} <= set(space)
    # The searchable arguments, read from the source without importing it, match the signature.
    params = [p for p in inspect.signature(builder).parameters if p not in registry.NOT_SEARCHABLE]
    assert registry.builder_arguments(name) == params
    assert entry.layers_argument in params


def test_every_task_is_consistent():
    for name, entry in registry.TASKS.items():
        assert entry.objective in entry.objectives, name
        assert set(entry.objectives.values()) <= {"min", "max"}
        assert entry.losses and entry.outputs
        assert entry.units in ("num_classes", "num_outputs", "channels") or isinstance(entry.units, int)


def test_each_family_builds_its_tasks_and_takes_its_data_arguments():
    tasks = set()
    for name, entry in registry.FAMILIES.items():
        assert entry.tasks and set(entry.tasks) <= set(registry.TASKS), name
        tasks |= set(entry.tasks)
        params = inspect.signature(entry.load_builder()).parameters
        assert set(entry.data_arguments) <= set(params) and set(entry.data_arguments) <= set(registry.NOT_SEARCHABLE)
        for task in registry.TASKS:
            if task in entry.tasks:
                registry.check_family_task(name, task)
            else:
                with pytest.raises(InputError, match=rf"model={name!r} is built for task .*Received: task={task!r}"):
                    registry.check_family_task(name, task)
    assert tasks == set(registry.TASKS)  # every task has a family that builds it
    for kind in registry.LABEL_KINDS:
        assert registry.TASKS[registry.task_for_labels(kind)].labels == kind


def test_optimizers_and_tuners_resolve():
    for entry in registry.OPTIMIZERS.values():
        assert callable(registry.resolve(entry.factory))
    for entry in registry.TUNERS.values():
        assert callable(registry.resolve(entry.factory))


def test_augmentation_keys_come_from_the_table_and_match_the_factories():
    image = [p for p in inspect.signature(image_augmentation).parameters if p not in ("seed", "name")]
    signal = [p for p in inspect.signature(signal_augmentation).parameters if p not in ("seed", "name")]
    assert list(registry.augmentation_keys((8, 8, 1))) == image
    assert list(registry.augmentation_keys((40, 1))) == signal
    assert registry.augmentation_keys((4,)) == ()
    for entry in registry.AUGMENTATIONS.values():
        assert callable(registry.resolve(entry.factory))


def test_lookup_names_the_kind_the_value_and_the_valid_names():
    with pytest.raises(InputError, match=r"`model` must be one of 'cnn', 'mlp', 'unet'. Received: model='rnn'"):
        registry.family("rnn")
    with pytest.raises(InputError, match=r"`task` must be one of 'classification'.*Received: task=3"):
        registry.task(3)


def _string_constants(path):
    """String literals of a module that are not docstrings, with their line numbers."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


@pytest.mark.parametrize("table", ["FAMILIES", "TASKS", "SOURCES", "OPTIMIZERS", "TUNERS"])
def test_names_appear_only_in_their_registry(table):
    names = set(getattr(registry, table))
    found = []
    paths = sorted(PACKAGE.rglob("*.py"))
    assert len(paths) > 40 and any(p.parent.name == "models" for p in paths)  # every subfolder is walked
    for path in paths:
        if path.name in ("registry.py", "_entries.py", "__init__.py"):  # the registry; an __init__ names modules
            continue
        for line, value in _string_constants(path):
            if value in names:
                found.append(f"{path.relative_to(PACKAGE)}:{line}: {value!r}")
    assert not found, f"names of registry.{table} written outside the registry: {found}"
