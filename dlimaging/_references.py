"""How the registry names code: references `"package.module:attribute"`, resolved only when used.

The machinery of `dlimaging.registry`, which re-exports these names; kept apart so that the
registry module holds the tables alone.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import pathlib
from typing import Any, Mapping

from dlimaging.errors import InputError


def resolve(reference: Any) -> Any:
    """Imports `"package.module:attribute"` and returns the attribute; anything else is returned
    as it is, so an entry added at run time may hold the function or class itself."""
    if not isinstance(reference, str):
        return reference
    module, _, attribute = reference.partition(":")
    value = importlib.import_module(module)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def lookup(table: Mapping[str, Any], kind: str, name: Any):
    """`table[name]`, or an `InputError` that names `kind`, the value and the valid names."""
    if isinstance(name, str) and name in table:
        return table[name]
    raise InputError(f"`{kind}` must be one of {', '.join(map(repr, table))}. Received: {kind}={name!r}")


@functools.lru_cache(maxsize=None)
def parameters_in_source(reference: str) -> tuple[str, ...]:
    """The parameter names of the function `"module:function"`, parsed once from its source."""
    module, _, function = reference.partition(":")
    spec = importlib.util.find_spec(module)
    tree = ast.parse(pathlib.Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            return tuple(a.arg for a in args)
    raise LookupError(f"{reference} not found")  # a broken registry entry
