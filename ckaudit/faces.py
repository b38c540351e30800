"""Lazy package faces (PEP 562): a package's `__init__` names what callers use, and importing the package
imports none of it until a name is first used.

Why lazy: the hook's fast path (no model file staged) must not import the reader, the worker client or torch,
yet it imports several packages whose faces name such modules. A face is written once, for mypy and readers
alike, as imports under `if TYPE_CHECKING:` plus `__all__`; `lazy_exports` reads those imports from the
`__init__`'s own source on first use, so the names are not listed a third time in a table.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path


def typing_imports(init_file: Path) -> dict[str, tuple[str, str]]:
    """Each name imported under `if TYPE_CHECKING:` in `init_file` -> (its module, its name there)."""
    where: dict[str, tuple[str, str]] = {}
    for node in ast.parse(init_file.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module:
                    for alias in stmt.names:
                        where[alias.asname or alias.name] = (stmt.module, alias.name)
    return where


def lazy_exports(package: str, init_file: str) -> Callable[[str], object]:
    """The module `__getattr__` of a face: imports a name's module on first use and caches the name."""
    where: dict[str, tuple[str, str]] = {}

    def __getattr__(name: str) -> object:
        if not where:
            where.update(typing_imports(Path(init_file)))
        if name not in where:  # also how `from package import submodule` falls back to importing it
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, original = where[name]
        value = getattr(importlib.import_module(module), original)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
