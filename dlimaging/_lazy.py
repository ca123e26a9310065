"""Lazy re-exports: a package names its public API without importing it (so no TensorFlow loads).

Each subpackage's `__init__.py` maps its public names to the modules that define them; a name is
imported on first use, as `dlimaging/__init__.py` does for the whole API.
"""

from __future__ import annotations

import importlib
from typing import Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable, Callable, list[str]]:
    """`__getattr__`, `__dir__` and `__all__` for a package whose names live in its modules.

    Args:
        package: str. The package's `__name__`.
        exports: public name → module (relative to the package, e.g. `"cnn"`, or absolute).

    Example:
    >>> getattr_, dir_, all_ = lazy_exports("dlimaging.models", {"build_cnn": "cnn"})
    >>> all_
    ['build_cnn']
    """

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        path = module if module.startswith("dlimaging") else f"{package}.{module}"
        value = getattr(importlib.import_module(path), name)
        importlib.import_module(package).__dict__[name] = value
        return value

    names = sorted(exports)

    def __dir__():
        return names

    return __getattr__, __dir__, names
