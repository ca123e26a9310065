"""The package's shape: one folder per concept, dependencies that flow one way, no import circle.

The import graph is read with `ast` from the sources, function-level imports included (an import
inside a function that exists only to dodge a circle is still a circle).
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "dlimaging"

# The rooms, from the top down: a module may import its own room and the rooms below it.
# `cli` → `tuning`/`training` → `serving`/`explain` → `models`/`data` → `plots` → the core.
LEVELS = {"cli": 5, "tuning": 4, "training": 4, "serving": 3, "explain": 3, "models": 2, "data": 2, "plots": 1}
# Between rooms of one level, the only allowed direction: explain reads exports, tuning trains.
SIDEWAYS = {("explain", "serving"), ("tuning", "training")}
CONCEPTS = ("models", "data", "tuning", "serving", "explain", "plots", "cli")
MAX_MODULE_LINES = 450
MAX_BODY_LINES = 80


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _imports(module: str, path: pathlib.Path) -> list[tuple[str, list[str], ast.AST]]:
    """(module imported, the names taken from it, the node) for every dlimaging import of `module`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dlimaging"):
            found.append((node.module, [a.name for a in node.names], node))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node) for a in node.names if a.name.startswith("dlimaging")]
    return found


def _target(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        edges = set()
        for imported, names, _ in _imports(module, path):
            for candidate in [imported] + [f"{imported}.{n}" for n in names]:
                target = _target(candidate)
                if target and target not in (module, "dlimaging"):
                    edges.add(target)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _level(module: str) -> int:
    return LEVELS.get(_room(module), 0)


def test_each_concept_is_a_folder():
    for concept in CONCEPTS:
        assert (PACKAGE / concept / "__init__.py").is_file(), concept
    flat = sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_"))
    assert flat == ["errors", "files", "registry", "training", "validation"]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_dependencies_flow_one_way():
    wrong = []
    for module, targets in import_graph().items():
        if module == "dlimaging":  # the facade re-exports every room, lazily
            continue
        for target in targets:
            same_room = _room(module) == _room(target)
            if _level(target) > _level(module) or (
                    _level(target) == _level(module) and not same_room and _level(module) > 0
                    and (_room(module), _room(target)) not in SIDEWAYS):
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_private_name_is_imported_across_modules():
    wrong = []
    for module, path in MODULES.items():
        for imported, names, _ in _imports(module, path):
            wrong += [f"{module}: from {imported} import {n}" for n in names if n.startswith("_") and n != "__version__"]
    assert wrong == []


def test_modules_and_functions_stay_readable():
    long = []
    for module, path in MODULES.items():
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            long.append(f"{module}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                    body = body[1:]
                if body and node.end_lineno - body[0].lineno + 1 > MAX_BODY_LINES:
                    long.append(f"{module}.{node.name}: {node.end_lineno - body[0].lineno + 1} lines")
    assert long == []


@pytest.mark.parametrize("module", ["dlimaging", "dlimaging.tuning.experiment", "dlimaging.registry",
                                    "dlimaging.data.corruption", "dlimaging.cli", "dlimaging.models",
                                    "dlimaging.plots"])
def test_light_modules_load_no_tensorflow(module):
    code = f"import sys, {module}; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_subpackages_export_their_public_names():
    import dlimaging
    import dlimaging.data
    import dlimaging.explain
    import dlimaging.models
    import dlimaging.plots
    import dlimaging.serving
    import dlimaging.tuning

    for package in (dlimaging, dlimaging.models, dlimaging.data, dlimaging.tuning, dlimaging.serving,
                    dlimaging.explain, dlimaging.plots):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
    assert dlimaging.models.build_cnn is dlimaging.build_cnn


def test_registry_references_name_public_code():
    from dlimaging import registry

    references = []
    for table in (registry.FAMILIES, registry.TASKS, registry.SOURCES, registry.OPTIMIZERS, registry.AUGMENTATIONS,
                  registry.TUNERS):
        for entry in table.values():
            for value in vars(entry).values():
                values = value if isinstance(value, (tuple, dict)) else (value,)
                for item in (values.values() if isinstance(values, dict) else values):
                    for text in (item if isinstance(item, tuple) else (item,)):
                        if isinstance(text, str) and ":" in text and text.startswith(("dlimaging.", "keras")):
                            references.append(text)
    assert len(references) > 30
    private = [r for r in references if r.partition(":")[2].startswith("_")]
    assert private == []
    for reference in references:
        if reference.startswith("dlimaging."):
            module, _, name = reference.partition(":")
            assert name in (PACKAGE.parent / (module.replace(".", "/") + ".py")).read_text(), reference


HARNESSES = {"tests/models/test_builders.py"}  # one harness over every family × rank × task


def test_tests_mirror_the_layout():
    """A module's tests are found by its name: tests/<room>/test_<module>.py (or test_<room>_<module>.py)
    tests dlimaging/<room>/<module>.py."""
    tests = PACKAGE.parent / "tests"
    for path in tests.glob("*/test_*.py"):
        relative = str(path.relative_to(PACKAGE.parent))
        if relative in HARNESSES:
            continue
        # test_<room>_<module>.py where two rooms have a module of one name (basenames must differ)
        name = path.stem.removeprefix("test_").removeprefix(f"{path.parent.name}_")
        room = PACKAGE / path.parent.name
        assert (room / f"{name}.py").is_file() or (room / f"_{name}.py").is_file(), \
            f"{relative} names no module of dlimaging/{path.parent.name}/"
    rooms = {p.parent.name for p in tests.glob("*/test_*.py")}
    assert {"models", "data", "tuning", "serving", "explain", "plots"} <= rooms
