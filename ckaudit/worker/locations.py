"""Where each layer of a model was defined: the first frame inside the repository root that assigned each
submodule, parameter and buffer during the build, and the model's class statement.

Loaded by path from server.py (this folder is no import root): standard library and torch only.
"""

from __future__ import annotations

import contextlib
import functools
import linecache
import os
import site
import sys
import sysconfig
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

_INSTALL_FOLDERS = frozenset({"site-packages", "dist-packages"})


def under(path: str, root: str) -> bool:
    """Whether `path` is `root` or inside it, component-wise (`/a/bc` is not under `/a/b`)."""
    return path == root or path.startswith(root + os.sep)


@functools.lru_cache(maxsize=1)
def interpreter_dirs() -> tuple[str, ...]:
    """Where this interpreter's own code lives: its prefixes, stdlib and site-packages (a virtualenv inside
    the repository included). Nothing in them is the project's code, wherever they are."""
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    found.update(v for v in sysconfig.get_paths().values() if v)
    with contextlib.suppress(Exception):
        found.update(site.getsitepackages())
    with contextlib.suppress(Exception):
        found.add(site.getusersitepackages())
    return tuple(sorted({os.path.realpath(p) for p in found}))


@functools.lru_cache(maxsize=4096)
def in_project(path: str, root: str) -> bool:
    """`path` (real) is the project's code in the tree at `root`: under the root, and neither part of this
    interpreter (a `.venv` inside the repository) nor of any installed environment (`site-packages`)."""
    if not under(path, root):
        return False
    if any(under(path, d) for d in interpreter_dirs() if d != root and under(d, root)):
        return False
    return not _INSTALL_FOLDERS.intersection(os.path.relpath(path, root).split(os.sep))


def in_root(filename: str, root: str) -> bool:
    """A code object's file is the project's code at the root; `<frozen importlib._bootstrap>`, `<string>`
    are no files."""
    return not filename.startswith("<") and in_project(os.path.realpath(filename), root)


class Recorder:
    """Records where (first frame inside the root) each submodule, parameter and buffer was assigned."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.sites: dict[int, dict[str, tuple[str, int]]] = {}
        self.keep: list[Any] = []  # holds recorded owners so their ids are not reused during the build
        self._relative: dict[str, str | None] = {}  # a code object's file -> its path in the root, or None

    def site(self) -> tuple[str, int] | None:
        """The nearest frame up the caller's stack whose file is inside the root, as (relative path, line);
        None when the assignment came from outside the repository only."""
        frame: FrameType | None = sys._getframe(2)
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename not in self._relative:
                inside = in_root(filename, self.root)
                self._relative[filename] = (
                    os.path.relpath(os.path.realpath(filename), self.root) if inside else None
                )
            relative = self._relative[filename]
            if relative is not None:
                return relative, frame.f_lineno
            frame = frame.f_back
        return None

    def note(self, owner: Any, name: str) -> None:
        """Record where `name` was assigned on `owner`, keeping `owner` alive so its id stays its own."""
        site = self.site()
        if site is not None:
            self.sites.setdefault(id(owner), {})[name] = site
            self.keep.append(owner)

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        """nn.Module's attribute and registration methods wrapped to record where each submodule, parameter
        and buffer is assigned; restored on exit."""
        import torch
        from torch import nn

        module_cls = nn.Module
        originals = {
            n: getattr(module_cls, n)
            for n in ("__setattr__", "register_buffer", "register_parameter", "add_module", "register_module")
        }
        recorder = self

        def setattr_(this: Any, name: str, value: Any) -> None:
            if isinstance(value, (nn.Module, torch.Tensor)):
                recorder.note(this, name)
            originals["__setattr__"](this, name, value)

        def wrap(method: str) -> Callable[..., Any]:
            def wrapper(this: Any, name: str, *args: Any, **kwargs: Any) -> Any:
                recorder.note(this, name)
                return originals[method](this, name, *args, **kwargs)

            return wrapper

        module_cls.__setattr__ = setattr_  # type: ignore[method-assign,assignment]
        for method in ("register_buffer", "register_parameter", "add_module", "register_module"):
            setattr(module_cls, method, wrap(method))
        try:
            yield
        finally:
            for method, original in originals.items():
                setattr(module_cls, method, original)

    def locations(self, model: Any) -> dict[str, list[Any]]:
        """state-dict key -> [path, line, source line] for every layer recorded, under every name the model
        reaches it by (shared modules too)."""
        result: dict[str, list[Any]] = {}
        for qualname, module in model.named_modules(remove_duplicate=False):
            for name, (path, line) in self.sites.get(id(module), {}).items():
                key = f"{qualname}.{name}" if qualname else name
                result.setdefault(key, [path, line, snippet(self.root, path, line)])
        return result


def class_location(model: Any, root: str) -> dict[str, list[Any]]:
    """Under the key "": the model's class statement, for keys that belong to no submodule."""
    import inspect

    try:
        source = os.path.realpath(inspect.getsourcefile(type(model)) or "")
        if not in_project(source, root):  # before the lines: finding them parses the whole file
            return {}
        line = class_line(inspect.unwrap(type(model)))  # what getsourcelines unwraps and names
    except (OSError, TypeError):
        return {}
    path = os.path.relpath(source, root)
    return {"": [path, line, snippet(root, path, line)]}


_CLASS_LINES: dict[tuple[str, str, object], int] = {}


def class_line(cls: type) -> int:
    """The line `inspect.getsourcelines(cls)` names, without the class block it tokenizes after finding it,
    and memoised on the source text and the class's qualified name (what `findsource` reads for a class):
    walking history, most builds meet a model file an earlier build parsed (~10 ms a build on nanochat).
    Only line numbers are kept: nothing of a build's modules outlives it."""
    import inspect

    file = inspect.getsourcefile(cls)
    module = sys.modules.get(cls.__module__)
    if file:
        linecache.checkcache(file)  # as findsource does: a file changed on disk is read again
    lines = linecache.getlines(file, module.__dict__) if file and module else []
    key = ("".join(lines), cls.__qualname__, vars(cls).get("__firstlineno__"))
    if not lines or key not in _CLASS_LINES:
        found = inspect.findsource(cls)[1] + 1
        if not lines:
            return found
        if len(_CLASS_LINES) > 256:
            _CLASS_LINES.clear()
        _CLASS_LINES[key] = found
    return _CLASS_LINES[key]


def snippet(root: str, path: str, line: int) -> str:
    """The stripped source line for a location (empty when the file cannot be read)."""
    return linecache.getline(os.path.join(root, path), line).strip()
