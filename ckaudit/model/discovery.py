"""Find model classes in a repository's Python files without importing them (for `ckaudit init`)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_MODULE_BASES = {
    "Module",
    "nn.Module",
    "torch.nn.Module",
    "LightningModule",
    "pl.LightningModule",
    "L.LightningModule",
    "PreTrainedModel",
}


@dataclass(frozen=True)
class ModelClass:
    factory: str  # "package.module:Class"
    path: str
    line: int


def find_model_classes(root: Path, python_files: Iterable[str]) -> list[ModelClass]:
    """Classes deriving from nn.Module (by name) whose constructor needs no arguments."""
    found = []
    for rel in sorted(python_files):
        tree = _parse(root / rel)
        if tree is None:
            continue
        module = _module_name(rel)
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and _is_module_class(node) and _constructible(node):
                found.append(ModelClass(f"{module}:{node.name}", rel, node.lineno))
    return found


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None


def _module_name(rel: str) -> str:
    parts = list(Path(rel).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module_class(node: ast.ClassDef) -> bool:
    return any(ast.unparse(base) in _MODULE_BASES for base in node.bases)


def _constructible(node: ast.ClassDef) -> bool:
    """True when __init__ (if any) has a default for every parameter after self."""
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            args = item.args
            positional = args.posonlyargs + args.args
            required = len(positional) - 1 - len(args.defaults)
            required_kw = sum(default is None for default in args.kw_defaults)
            return required <= 0 and required_kw == 0
    return True
