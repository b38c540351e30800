"""Find model classes (and the config dataclasses they take) in a repository's Python files without
importing them (for `ckaudit init`)."""

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
class Param:
    name: str
    annotation: str | None  # the annotation's last dotted name: "GPTConfig"
    required: bool  # no default


@dataclass(frozen=True)
class ModelClass:
    factory: str  # "package.module:Class"
    path: str
    line: int
    params: tuple[Param, ...] = ()  # the constructor's parameters after self (keyword-capable ones)
    calls: frozenset[str] = frozenset()  # names the class body calls: the components it builds

    @property
    def required(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.required)


@dataclass(frozen=True)
class ConfigClass:
    """A `@dataclass` of the repository: what a model constructor may take as its configuration."""

    module: str
    name: str
    fields: tuple[Param, ...]


@dataclass(frozen=True)
class Found:
    models: tuple[ModelClass, ...]
    configs: tuple[ConfigClass, ...]

    def components(self) -> set[str]:
        """Class names that another model class of the repository builds (blocks, heads, layers)."""
        return {name for m in self.models for name in m.calls if name != m.factory.rsplit(":", 1)[1]}


def find_classes(root: Path, python_files: Iterable[str]) -> Found:
    """Every nn.Module subclass (by base name) with its constructor's parameters, and every dataclass."""
    models, configs = [], []
    for rel in sorted(python_files):
        tree = _parse(root / rel)
        if tree is None:
            continue
        module = _module_name(rel)
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            if _is_module_class(node):
                calls = frozenset(_called_names(node))
                models.append(
                    ModelClass(f"{module}:{node.name}", rel, node.lineno, _init_params(node), calls)
                )
            elif _is_dataclass(node):
                configs.append(ConfigClass(module, node.name, _fields(node)))
    return Found(tuple(models), tuple(configs))


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


def _is_dataclass(node: ast.ClassDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if ast.unparse(target).rsplit(".", 1)[-1] == "dataclass":
            return True
    return False


def _annotation(node: ast.expr | None) -> str | None:
    if node is None:
        return None
    text = ast.unparse(node).strip("'\"")
    return text.rsplit(".", 1)[-1] if text.replace(".", "").replace("_", "").isalnum() else None


def _init_params(node: ast.ClassDef) -> tuple[Param, ...]:
    """The constructor's parameters after self; *args/**kwargs are left out (they need nothing)."""
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            args = item.args
            positional = (args.posonlyargs + args.args)[1:]
            first_default = len(positional) - len(args.defaults)
            params = [
                Param(a.arg, _annotation(a.annotation), i < first_default) for i, a in enumerate(positional)
            ]
            params += [
                Param(a.arg, _annotation(a.annotation), d is None)
                for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
            ]
            return tuple(params)
    return ()


def _called_names(node: ast.ClassDef) -> set[str]:
    return {
        ast.unparse(call.func).rsplit(".", 1)[-1] for call in ast.walk(node) if isinstance(call, ast.Call)
    }


def _fields(node: ast.ClassDef) -> tuple[Param, ...]:
    return tuple(
        Param(item.target.id, _annotation(item.annotation), item.value is None)
        for item in node.body
        if isinstance(item, ast.AnnAssign)
        and isinstance(item.target, ast.Name)
        and not ast.unparse(item.annotation).startswith(("ClassVar", "typing.ClassVar"))
    )
