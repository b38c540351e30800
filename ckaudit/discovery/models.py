"""Find models (and the configs they take) in a repository's Python files without importing them (for
`ckaudit init`).

Models: `nn.Module`, `LightningModule` and Hugging Face `PreTrainedModel` subclasses — also through a
base class of the repository (`class BertLike(MyPreTrainedModel)`) — and factory functions: a module-level
function annotated to return a module (`-> nn.Module`, `-> ResNet`) or whose returns all call a model class
of the repository (timm's `def resnet18(**kwargs): return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)`).
Configs: `@dataclass`es (nanoGPT's `GPTConfig`) and `PretrainedConfig` subclasses, whose fields are their
constructor's parameters; a model's `config_class = TinyConfig` names its own."""

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
    "transformers.PreTrainedModel",
}
_CONFIG_BASES = {"PretrainedConfig", "PreTrainedConfig", "transformers.PretrainedConfig"}


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
    config_class: str | None = None  # `config_class = TinyConfig` in the class body (Hugging Face)
    function: bool = False  # a factory function, not a class

    @property
    def required(self) -> tuple[Param, ...]:
        """The constructor parameters without a default: what a registry entry must supply."""
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
    """Every model class and factory function with its parameters, and every config class."""
    trees = [(rel, tree) for rel in sorted(python_files) if (tree := _parse(root / rel)) is not None]
    classes = [(rel, node) for rel, tree in trees for node in tree.body if isinstance(node, ast.ClassDef)]
    names = _model_class_names(node for _, node in classes)
    by_name = {node.name: node for _, node in classes if node.name in names}
    bases = {_last(b) for node in by_name.values() for b in node.bases} & names  # abstract bases
    models, configs = [], []
    for rel, node in classes:
        module = _module_name(rel)
        if node.name in bases:
            continue  # `MyPreTrainedModel`: the classes built on it are the models
        if node.name in names:
            params, config = _constructor(node, by_name)
            calls = frozenset(_called_names(node))
            models.append(ModelClass(f"{module}:{node.name}", rel, node.lineno, params, calls, config))
        elif _is_dataclass(node):
            configs.append(ConfigClass(module, node.name, _fields(node)))
        elif any(ast.unparse(base) in _CONFIG_BASES for base in node.bases):
            configs.append(ConfigClass(module, node.name, _init_params(node)))
    functions = [(rel, f) for rel, tree in trees for f in tree.body if isinstance(f, ast.FunctionDef)]
    for rel, function in functions:
        if _is_factory(function, names):
            params = _params(function.args, skip_self=False)
            calls = frozenset(_called_names(function))
            factory = f"{_module_name(rel)}:{function.name}"
            models.append(ModelClass(factory, rel, function.lineno, params, calls, function=True))
    return Found(tuple(models), tuple(configs))


def _last(node: ast.expr) -> str:
    return ast.unparse(node).rsplit(".", 1)[-1]


def _constructor(
    node: ast.ClassDef, by_name: dict[str, ast.ClassDef]
) -> tuple[tuple[Param, ...], str | None]:
    """The constructor's parameters and the `config_class`, inherited through the repository's bases; a
    Hugging Face model without its own `__init__` takes `config`."""
    config = _config_class(node)
    if any(isinstance(i, ast.FunctionDef) and i.name == "__init__" for i in node.body):
        return _init_params(node), config
    for base in node.bases:
        parent = by_name.get(_last(base))
        if parent is not None and parent is not node:
            params, inherited = _constructor(parent, {k: v for k, v in by_name.items() if v is not node})
            return params, config or inherited
        if _last(base) == "PreTrainedModel":
            return (Param("config", config, True),), config
    return (), config


def _model_class_names(nodes: Iterable[ast.ClassDef]) -> set[str]:
    """Classes with a module base, and (to a fixed point) classes whose base is one of them."""
    pending = list(nodes)
    names: set[str] = set()
    grew = True
    while grew:
        grew = False
        for node in pending:
            bases = {ast.unparse(b) for b in node.bases}
            if node.name not in names and (
                bases & _MODULE_BASES or {b.rsplit(".", 1)[-1] for b in bases} & names
            ):
                names.add(node.name)
                grew = True
    return names


def _is_factory(node: ast.FunctionDef, models: set[str]) -> bool:
    if node.name.startswith("_"):
        return False
    returns = _annotation(node.returns)
    if returns is not None:
        return returns in models or returns == "Module"
    values = [r.value for r in ast.walk(node) if isinstance(r, ast.Return) and r.value is not None]
    return bool(values) and all(
        isinstance(v, ast.Call) and ast.unparse(v.func).rsplit(".", 1)[-1] in models for v in values
    )


def _config_class(node: ast.ClassDef) -> str | None:
    for item in node.body:
        if (
            isinstance(item, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "config_class" for t in item.targets)
            and isinstance(item.value, (ast.Name, ast.Attribute))
        ):
            return ast.unparse(item.value).rsplit(".", 1)[-1]
    return None


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
            return _params(item.args, skip_self=True)
    return ()


def _params(args: ast.arguments, skip_self: bool) -> tuple[Param, ...]:
    positional = (args.posonlyargs + args.args)[1 if skip_self else 0 :]
    first_default = len(positional) - len(args.defaults)
    params = [Param(a.arg, _annotation(a.annotation), i < first_default) for i, a in enumerate(positional)]
    params += [
        Param(a.arg, _annotation(a.annotation), d is None)
        for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
    ]
    return tuple(params)


def _called_names(node: ast.ClassDef | ast.FunctionDef) -> set[str]:
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
