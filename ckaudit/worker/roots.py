"""Which roots a worker imported model code from, and the import path of each build.

Loaded by path from server.py (this folder is no import root): standard library only. It lets one process
build many versions of a model from many roots (HEAD, index, history): modules imported from any root seen
so far are purged before every build, and a build of another tree imports that tree's folders in place of
the working tree (`origin`) the interpreter knows.
"""

from __future__ import annotations

import bisect
import contextlib
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

_NOTHING = (None,)  # `_outside.get`'s default: its module is None, never a loaded module
InProject = Callable[[str, str], bool]  # locations.in_project: is a file the project's code at a root?


class Roots:
    """The roots seen so far, and sys.path / sys.meta_path as the interpreter had them before any build.
    `on_enter` is a list (a warm child appends to it after creating the worker) of hooks run per root."""

    def __init__(self, in_project: InProject, on_enter: list[Callable[[str], None]]) -> None:
        self.seen: list[str] = []
        self.base_path = list(sys.path)
        self.base_meta_path = list(sys.meta_path)
        self.in_project = in_project
        self.on_enter = on_enter
        # name -> [module, its real paths]: resolving ~2,500 modules' paths at every build was most of a
        # build's time, and a loaded module (torch's, the standard library's) stays where it is: it need
        # only be checked against the roots added since (`seen[_checked:]`), found through `_index`, their
        # paths sorted: a root's files are one run of it (visiting each module in Python was ~6 ms a build).
        # A warm server's child starts from the paths the server resolved before it forked.
        self._outside: dict[str, list[Any]] = {
            name: [module, paths] for name, (module, paths) in _PRELOADED.items()
        }
        self._index = sorted((path, name) for name, (_, paths) in _PRELOADED.items() for path in paths)
        self._checked = 0

    def enter(self, root: str, origin: str | None = None) -> str:
        """Make `root` the one import root (purging what earlier roots imported); its real path."""
        root = os.path.realpath(root)
        if root not in self.seen:
            self.seen.append(root)
        self.purge()
        sys.path[:] = self.import_path(root, os.path.realpath(origin) if origin else root)
        importlib.invalidate_caches()
        os.chdir(root)
        for hook in self.on_enter:
            hook(root)
        return root

    def import_path(self, root: str, origin: str) -> list[str]:
        """The root first. Where the interpreter imports from the working tree itself (an editable install:
        `src/` on a `.pth`, setuptools' editable finder), a build of another tree (HEAD, the index) imports
        the same folder of that tree instead, and nothing from the working tree."""
        if root == origin:
            sys.meta_path[:] = self.base_meta_path
            return [root, *self.base_path]
        in_origin = self.in_project
        sys.meta_path[:] = [f for f in self.base_meta_path if not self._editable_into(f, origin)]
        mapped = [
            os.path.join(root, os.path.relpath(folder, origin))
            for folder in [*map(_real, self.base_path), *_editable_folders()]
            if in_origin(folder, origin)
        ]
        kept = [p for p in self.base_path if not in_origin(_real(p), origin)]
        return [root, *dict.fromkeys(m for m in mapped if os.path.isdir(m)), *kept]

    def purge(self) -> None:
        """Drop every module whose file lies in a root seen so far, so the next build imports afresh."""
        fresh, self._checked = self.seen[self._checked :], len(self.seen)
        outside = self._outside
        suspects = self._under(fresh)  # known modules with a path in a new root
        unknown = [n for n, m in sys.modules.items() if outside.get(n, _NOTHING)[0] is not m]
        for name in [*suspects, *unknown]:
            module = sys.modules.get(name)
            if module is None:
                continue
            known = outside.get(name)
            remembered = known is not None and known[0] is module  # only fixed-path modules are kept
            if known is None or not remembered:
                known = [module, module_paths(module)]
            roots = fresh if remembered else self.seen
            if any(p.startswith(r) and self.in_project(p, r) for r in roots for p in known[1]):
                del sys.modules[name]
                self._forget(name)
            elif not remembered and _fixed_paths(module):
                self._forget(name)
                self._remember(name, known)

    def _under(self, roots: list[str]) -> set[str]:
        """Names of the known modules with a path starting with one of `roots`."""
        names: set[str] = set()
        for root in roots:
            at = bisect.bisect_left(self._index, (root, ""))
            while at < len(self._index) and self._index[at][0].startswith(root):
                names.add(self._index[at][1])
                at += 1
        return names

    def _remember(self, name: str, known: list[Any]) -> None:
        self._outside[name] = known
        for path in known[1]:
            bisect.insort(self._index, (path, name))

    def _forget(self, name: str) -> None:
        known = self._outside.pop(name, None)
        for path in known[1] if known is not None else ():
            at = bisect.bisect_left(self._index, (path, name))
            if at < len(self._index) and self._index[at] == (path, name):
                del self._index[at]

    def _editable_into(self, finder: Any, origin: str) -> bool:
        """A meta-path finder of an editable install whose packages live in the working tree."""
        module = sys.modules.get(getattr(finder, "__module__", "") or "")
        mapping = getattr(module, "MAPPING", None) if module is not None else None
        return isinstance(mapping, dict) and any(
            self.in_project(_real(str(p)), origin) for p in mapping.values()
        )


def module_paths(module: Any) -> list[str]:
    """A module's file and package folders, real paths (namespace packages have only folders)."""
    known = _PRELOADED.get(getattr(module, "__name__", None) or "")
    if known is not None and known[0] is module:
        return known[1]
    return [os.path.realpath(p) for p in _raw_paths(module)]


def _fixed_paths(module: Any) -> bool:
    """Whether a module's paths stay as they are: not a namespace package, whose `__path__` follows
    sys.path (which each build sets), so it is checked anew each time."""
    return type(getattr(module, "__path__", None) or []) is list


def _raw_paths(module: Any) -> list[str]:
    paths = [getattr(module, "__file__", None) or ""]
    with contextlib.suppress(Exception):  # a namespace package's __path__ may be any iterable
        paths.extend(list(getattr(module, "__path__", None) or []))
    return [p for p in paths if p]


# The warm server's loaded modules and their real paths, resolved before it forks: each child would
# otherwise resolve them all at its first build (thousands with transformers: most of a warm build's time).
# They cannot move while the server lives, since a change to site-packages restarts it; a build's own
# files are not here, nor namespace packages.
_PRELOADED: dict[str, tuple[Any, list[str]]] = {}


def remember_module_paths() -> None:
    """In the warm server, after each preload: every loaded module's real paths, once for every child."""
    for name, module in list(sys.modules.items()):
        known = _PRELOADED.get(name)
        if (known is None or known[0] is not module) and _fixed_paths(module):
            _PRELOADED[name] = (module, module_paths(module))


def _real(path: str) -> str:
    return os.path.realpath(path or ".")


def _editable_folders() -> list[str]:
    """The folders setuptools' editable finders import packages from (`__editable___*_finder.MAPPING`)."""
    folders: list[str] = []
    for name, module in list(sys.modules.items()):
        mapping = getattr(module, "MAPPING", None) if name.startswith("__editable__") else None
        if isinstance(mapping, dict):
            folders.extend(os.path.dirname(_real(str(p))) for p in mapping.values())
    return folders
