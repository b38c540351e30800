"""What the worker changes while a model builds on `meta`, and what it reports about the packages it used.

Loaded by server.py from its own folder (it runs under the project's interpreter: the standard library and
torch only, never ckaudit).

- `no_init`: `nn.init` functions and random Tensor fills are no-ops (initialising on meta is pointless, and
  the first random op on meta imports `torch._dynamo` and sympy: seconds).
- `no_dynamo`: torch's Python reference ops (what `torch.tril`, `masked_fill`, … run on meta) are wrapped in
  `torch._disable_dynamo`, which imports `torch._dynamo` (1–2 s) on the first call only to mark the function
  "never compile". Nothing is compiled in the worker, so while a model builds a stand-in module answers
  `disable(fn)` with `fn` itself; any other use of the stand-in loads the real `torch._dynamo`. For the same
  reason `torch.compile(fn)` on a function (a module-level `@torch.compile` in the project's code: 4-8 s of
  dynamo and inductor imports) is deferred to the function's first call, which a build never makes;
  `torch.compile(module)` is compiled as is (its wrapper's state dict is what a checkpoint of it holds).
- `distributions`: the installed distributions (name -> version) whose code the build used — the packages
  of the model's layer classes, of what the repository's modules imported, and of modules new in this build.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterable, Iterator
from typing import Any

RANDOM_TENSOR_METHODS = (
    "normal_",
    "uniform_",
    "random_",
    "bernoulli_",
    "exponential_",
    "log_normal_",
    "cauchy_",
    "geometric_",
)
_DYNAMO = "torch._dynamo"


@contextlib.contextmanager
def no_init() -> Iterator[None]:
    """nn.init functions and random Tensor fills become no-ops during the build."""
    import torch

    saved: list[tuple[Any, str, Any]] = []
    for name in dir(torch.nn.init):
        func = getattr(torch.nn.init, name)
        if name.endswith("_") and not name.startswith("_") and callable(func):
            saved.append((torch.nn.init, name, func))
    for name in RANDOM_TENSOR_METHODS:
        saved.append((torch.Tensor, name, getattr(torch.Tensor, name)))

    def identity(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        return tensor

    for owner, name, _ in saved:
        setattr(owner, name, identity)
    try:
        yield
    finally:
        for owner, name, func in saved:
            setattr(owner, name, func)


def _real_dynamo() -> types.ModuleType:
    import torch

    if isinstance(sys.modules.get(_DYNAMO), _StandIn):
        del sys.modules[_DYNAMO]
        with contextlib.suppress(AttributeError):
            delattr(torch, "_dynamo")
    return importlib.import_module(_DYNAMO)


class _StandIn(types.ModuleType):
    """`torch._dynamo` as far as `torch._disable_dynamo` needs it; anything else loads the real module."""

    def disable(self, fn: Any = None, recursive: bool = True, **kwargs: Any) -> Any:
        return fn if fn is not None else (lambda f: f)

    def __getattr__(self, name: str) -> Any:
        return getattr(_real_dynamo(), name)


def needs_real_dynamo(exc: BaseException | None) -> bool:
    """The stand-in loaded the real `torch._dynamo` in the middle of another import and that failed (a
    circular import: `torch.distributed.tensor`, imported by transformers, touches torch._dynamo while it is
    half initialised). Importing torch._dynamo first (`load_real_dynamo`) is the order torch expects."""
    seen = 0
    while exc is not None and seen < 8:
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code is _real_dynamo.__code__:
                return True
            tb = tb.tb_next
        exc, seen = exc.__context__, seen + 1
    return False


def load_real_dynamo() -> bool:
    """Import the real torch._dynamo (for a build that needs it after all); False when that fails."""
    try:
        _real_dynamo()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def no_dynamo() -> Iterator[None]:
    """Keep torch._dynamo unimported during a build: a stand-in answers torch's "do not compile this"
    markers that would otherwise import it (seconds) on meta; a no-op when it is already loaded."""
    import torch

    if _DYNAMO in sys.modules:
        yield
        return
    stand_in = _StandIn(_DYNAMO)
    # code that only asks where torch._dynamo lives (torch.library, while transformers imports) must not
    # load it halfway through another torch package's initialisation: answer __file__ without importing it
    found = importlib.util.find_spec(_DYNAMO)
    if found is not None and found.origin:
        stand_in.__file__ = found.origin
    sys.modules[_DYNAMO] = stand_in
    torch._dynamo = stand_in
    real_compile = torch.compile
    torch.compile = deferred_compile(real_compile, torch.nn.Module)
    try:
        yield
    finally:
        torch.compile = real_compile
        if sys.modules.get(_DYNAMO) is stand_in:
            del sys.modules[_DYNAMO]
        if torch.__dict__.get("_dynamo") is stand_in:
            del torch._dynamo


def deferred_compile(real: Any, module_type: type) -> Any:
    """`torch.compile` that compiles a function on its first call instead of now (a module: now)."""

    def compile(model: Any = None, **options: Any) -> Any:
        if model is None:  # @torch.compile(mode=...): the decorator comes back
            return lambda target: compile(target, **options)
        if isinstance(model, module_type) or not callable(model):
            return real(model, **options)
        compiled: list[Any] = []

        @functools.wraps(model)
        def first_call_compiles(*args: Any, **kwargs: Any) -> Any:
            if not compiled:
                compiled.append(real(model, **options))
            return compiled[0](*args, **kwargs)

        return first_call_compiles

    return compile


_top_level_dists: dict[str, list[str]] | None = None


def _packages_to_dists() -> dict[str, list[str]]:
    global _top_level_dists
    if _top_level_dists is None:
        import importlib.metadata

        try:
            _top_level_dists = dict(importlib.metadata.packages_distributions())
        except Exception:  # a broken distribution's metadata must not fail the build
            _top_level_dists = {}
    return _top_level_dists


def used_packages(model: Any, new_modules: Iterable[str], root_modules: Iterable[Any]) -> set[str]:
    """Top-level package names: of the model's layer classes, of modules new in this build, and of what the
    repository's own modules hold (modules, classes and functions they imported)."""
    names = {type(m).__module__ for m in model.modules()} if model is not None else set()
    names |= set(new_modules)
    for module in root_modules:
        for value in list(vars(module).values()):
            is_module = isinstance(value, types.ModuleType)
            owner = value.__name__ if is_module else getattr(value, "__module__", None)
            if isinstance(owner, str):
                names.add(owner)
    stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
    return {n.split(".")[0] for n in names if n and n.split(".")[0] not in stdlib}


def distributions(packages: Iterable[str]) -> dict[str, str]:
    """Installed distribution name -> version for the given top-level packages (unknown ones are skipped)."""
    mapping = _packages_to_dists()
    found = {dist: _version(dist) for package in set(packages) for dist in mapping.get(package, [])}
    return {dist: version for dist, version in sorted(found.items()) if version is not None}


_versions: dict[str, str | None] = {}


def _version(dist: str) -> str | None:
    """Read once per process (a warm server reads them all before forking: `known_versions`): parsing a
    distribution's metadata costs about a millisecond, and a build asks for every package it touches."""
    if dist not in _versions:
        import importlib.metadata

        try:
            _versions[dist] = importlib.metadata.version(dist)
        except Exception:  # a broken distribution's metadata must not fail the build
            _versions[dist] = None
    return _versions[dist]


def warm_decompositions() -> None:
    """For the warm server, once its preload holds what torch's meta decompositions import (an earlier
    session's model ran one: a causal mask's `tril` on meta imports ~800 modules, sympy's among them, which
    the server then preloads): run one, so that the first-call set-up every forked child would repeat
    (~0.15 s) is done once. Before that, it would add sympy, mpmath and numpy to every child's first build."""
    if "sympy" not in sys.modules:
        return
    import torch

    with torch.device("meta"):
        torch.tril(torch.ones(2, 2))


def known_versions() -> None:
    """Every installed distribution's version, read ahead (the warm server, before it forks)."""
    for dists in _packages_to_dists().values():
        for dist in dists:
            _version(dist)
