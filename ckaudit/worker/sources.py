"""Which repository files define a model — found statically, without torch, in milliseconds.

The static closure starts at the factory's module (or the `build:` code), parses each repository module
with `ast` and follows `import a.b`, `from a import b` and relative imports to files inside the tree; add
the `sources:` globs and the files the worker reported in an earlier build. Imports that name no file in
the tree (the standard library, torch) are kept as *candidate* paths: a staged file appearing or
disappearing at such a path (a new `models/blocks.py`, a deleted one) still concerns the model. Dynamic
imports (`importlib.import_module(name)`) escape the static closure; the worker's record catches those.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from ckaudit.globs import glob_regex
from ckaudit.registry import ModelSpec
from ckaudit.vcs import Tree, tree_has, tree_paths

_BUILD = "<build>"


@dataclass(frozen=True)
class ModelSources:
    files: frozenset[str]  # existing files of the tree that define the model
    candidates: frozenset[str]  # every path whose appearance, change or removal concerns the model


# Where a tree's modules are imported from: its root, and `src/` (the src layout, importable once the project
# is installed editable; the worker imports a built tree's own `src/` in the working tree's place).
IMPORT_ROOTS = ("", "src/")


def module_paths(module: str) -> tuple[str, ...]:
    """The files a module may be in, under each import root a repository commonly uses (`src/`, the root)."""
    base = module.replace(".", "/")
    return tuple(f"{root}{base}{tail}" for root in IMPORT_ROOTS for tail in (".py", "/__init__.py"))


def with_parents(module: str) -> list[str]:
    """`a.b.c` -> [`a`, `a.b`, `a.b.c`]: importing a module runs every parent package's `__init__`."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _package_of(path: str) -> list[str]:
    for root in IMPORT_ROOTS[1:]:
        if path.startswith(root):
            path = path[len(root) :]
    return path.split("/")[:-1]


def _absolute(node: ast.ImportFrom, path: str) -> str | None:
    if node.level == 0:
        return node.module
    package = _package_of(path) if path != _BUILD else []
    if node.level - 1 > len(package):
        return None
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


@functools.lru_cache(maxsize=4096)
def imported_modules(source: bytes, path: str) -> frozenset[str]:
    """Absolute module names a file imports; for `from x import y`, both `x` and `x.y` (y may be a module).
    Memoised on the content: a walk over history meets the same few blobs in every commit, and parsing
    them again was most of `blame`'s own time."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return frozenset()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, path)
            if base:
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
            elif base == "" or base is None:
                names.update(alias.name for alias in node.names if alias.name != "*")
    return frozenset(names)


def _entry_modules(spec: ModelSpec) -> tuple[set[str], bytes | None]:
    if spec.factory:
        return {spec.factory.partition(":")[0]}, None
    return set(), (spec.build or "").encode()


def static_closure(tree: Tree, spec: ModelSpec) -> ModelSources:
    """Follow imports from the model's entry point through the tree, one batch read per import depth."""
    modules, build = _entry_modules(spec)
    if build is not None:
        modules |= imported_modules(build, _BUILD)
    candidates: set[str] = set()
    files: set[str] = set()
    frontier = _expand(modules)
    seen_modules: set[str] = set()
    while frontier:
        seen_modules |= frontier
        paths = {p for m in frontier for p in module_paths(m)}
        candidates |= paths
        found = tree.read_many(p for p in paths if p not in files)
        files |= set(found)
        nxt: set[str] = set()
        for path, data in found.items():
            nxt |= imported_modules(data, path)
        frontier = _expand(nxt) - seen_modules
    globbed = glob_paths(tree, spec.sources)
    return ModelSources(frozenset(files | globbed), frozenset(candidates | globbed))


def _expand(modules: Iterable[str]) -> set[str]:
    return {parent for m in modules for parent in with_parents(m)}


def glob_paths(tree: Tree, patterns: Iterable[str]) -> set[str]:
    """The tree's paths matched by the registry's `sources:` globs."""
    patterns = list(patterns)
    return glob_paths_of(tree_paths(tree), patterns) if patterns else set()


def glob_paths_of(paths: Iterable[str], patterns: Iterable[str]) -> set[str]:
    """`paths` matched by any of `patterns` (ckaudit's glob syntax, `**` across folders)."""
    regexes = [glob_regex(p) for p in patterns]
    return {p for p in paths if any(r.match(p) for r in regexes)} if regexes else set()


def model_sources(
    tree: Tree, spec: ModelSpec, reported: Iterable[str] = (), loaders: Iterable[str] = ()
) -> ModelSources:
    """The static closure plus the files the worker reported importing in an earlier build, and the
    closures of the `load: {loader: module:function}` functions of the model's checkpoints (the project's
    own loading code decides whether a checkpoint loads, as the model's does)."""
    static = static_closure(tree, spec)
    files, candidates = set(static.files), set(static.candidates)
    for loader in sorted(set(loaders)):
        found = static_closure(tree, ModelSpec(name=spec.name, factory=loader))
        files |= found.files
        candidates |= found.candidates
    extra = {p for p in reported if tree_has(tree, p)}
    return ModelSources(frozenset(files | extra), frozenset(candidates | set(reported)))
