"""The `>>>` examples of the modules that import no TensorFlow run, and print what they show."""

from __future__ import annotations

import ast
import doctest
import importlib
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "dlimaging"
HEAVY = ("keras", "tensorflow", "keras_tuner", "tensorflow_datasets")


def _light_modules_with_examples() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if ">>>" not in text:
            continue
        top = [node for node in ast.parse(text).body if isinstance(node, (ast.Import, ast.ImportFrom))]
        names = [a.name for node in top if isinstance(node, ast.Import) for a in node.names]
        names += [node.module or "" for node in top if isinstance(node, ast.ImportFrom)]
        if any(name.split(".")[0] in HEAVY for name in names):
            continue
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


MODULES = _light_modules_with_examples()
# Their examples train or export a model, which a doctest does not run (`# doctest: +SKIP`).
ONLY_SKIPPED = ("dlimaging.serving.export", "dlimaging.training")


def test_there_are_examples_to_run():
    assert {"dlimaging.tuning.experiment", "dlimaging.data.corruption", "dlimaging.data.spectra"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_module_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0
    assert result.attempted > 0 or name in ONLY_SKIPPED
