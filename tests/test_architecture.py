"""The import direction of docs/architecture.md, enforced: a package imports only from the layers below it,
and only through its face (the names its `__init__` exports in `__all__`).

Every `import ckaudit.…` counts, at module level, inside functions and under `TYPE_CHECKING` alike — a lazy
import is still a dependency a newcomer has to know about.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ckaudit"

# Lowest first. A name is a top-level module or subpackage of ckaudit.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(names.split())
    for names in (
        "__init__ errors findings finding_codec keyranges globs proc tracebacks progress atomic faces walk",
        "reader",
        "vcs",
        "cache",
        "registry",
        "files",
        "worker",
        "compat discovery",
        "scan",
        "compare",
        "report",
        "explain",
        "commands",
        "cli ci __main__",
    )
)


def _unit(path: Path) -> str:
    """The layer unit of a file: its top-level subpackage, or its module name at the top."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else path.stem


def _is_unit(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def _imported_units(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            if node.module == "ckaudit":  # `from ckaudit import x`: a submodule, or a name of __init__
                names.update(f"ckaudit.{alias.name}" for alias in node.names if _is_unit(alias.name))
    units = set()
    for name in names:
        parts = name.split(".")
        if parts[0] == "ckaudit":
            units.add(parts[1] if len(parts) > 1 else "__init__")
    return units


def _layer_of(unit: str) -> int:
    for index, layer in enumerate(LAYERS):
        if unit in layer:
            return index
    raise AssertionError(f"ckaudit/{unit} is in no layer of LAYERS (and docs/architecture.md): place it")


def _edges() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        for target in _imported_units(path):
            if target != unit:
                found.append((str(path.relative_to(PACKAGE.parent)), unit, target))
    return found


def test_every_unit_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        _layer_of(_unit(path))


def test_imports_point_down_only() -> None:
    upward = [
        f"{where}: {unit} (layer {_layer_of(unit)}) imports {target} (layer {_layer_of(target)})"
        for where, unit, target in _edges()
        if _layer_of(target) > _layer_of(unit)
    ]
    assert upward == []


def test_no_package_cycles_within_a_layer() -> None:
    graph: dict[str, set[str]] = {}
    for _, unit, target in _edges():
        if _layer_of(unit) == _layer_of(target) and len(LAYERS[_layer_of(unit)]) > 1:
            graph.setdefault(unit, set()).add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(unit for unit in graph if reaches(unit, unit, set()))
    assert cycles == []


@pytest.mark.parametrize("layer", range(len(LAYERS)))
def test_layers_name_real_units(layer: int) -> None:
    real = {_unit(p) for p in PACKAGE.rglob("*.py")}
    assert LAYERS[layer] <= real


def _packages() -> list[Path]:
    return sorted(p.parent for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE)


def _dotted(folder: Path) -> str:
    return ".".join(folder.relative_to(PACKAGE.parent).parts)


def test_every_folder_is_a_package() -> None:
    """A folder without `__init__.py` is a namespace package: setuptools' find leaves it out of a wheel."""
    folders = [p for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"]
    assert [str(p) for p in folders if not (p / "__init__.py").is_file()] == []


@pytest.mark.parametrize("folder", _packages(), ids=_dotted)
def test_every_package_has_a_face(folder: Path) -> None:
    """`__all__` names what callers use, and every name in it resolves (lazy faces import on first use)."""
    package = importlib.import_module(_dotted(folder))
    exported = getattr(package, "__all__", None)
    assert exported, f"{_dotted(folder)} has no __all__"
    assert [name for name in exported if not hasattr(package, name)] == []


def test_no_module_reaches_into_another_package() -> None:
    """Private, as docs/architecture.md defines it: every module of a top-level package other than its
    `__init__`. A module outside `ckaudit/<package>/` imports `ckaudit.<package>` (its face), never
    `ckaudit.<package>.<module>`; inside, modules and nested packages import each other directly."""
    reaching = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = _unit(path)
        for name in _imported_modules(path):
            parts = name.split(".")
            if len(parts) > 2 and (PACKAGE / parts[1]).is_dir() and parts[1] != here:
                reaching.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert reaching == []


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("ckaudit."))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("ckaudit.")
        ):
            names.add(str(node.module))
            folder = PACKAGE.parent.joinpath(
                *str(node.module).split(".")
            )  # `from ckaudit.vcs import queries`
            names.update(
                f"{node.module}.{alias.name}"
                for alias in node.names
                if (folder / f"{alias.name}.py").is_file() or (folder / alias.name).is_dir()
            )
    return names


MAX_LINES = 400
MAX_MODULES = 16


def test_no_module_over_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if len(path.read_text(encoding="utf-8").splitlines()) > MAX_LINES
    }
    assert sorted(long) == []


@pytest.mark.parametrize(
    "folder",
    [PACKAGE, *_packages()],
    ids=_dotted,
)
def test_no_package_of_more_than_16_modules_side_by_side(folder: Path) -> None:
    assert len(list(folder.glob("*.py"))) <= MAX_MODULES
