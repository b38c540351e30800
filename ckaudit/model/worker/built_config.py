"""Run BY PATH inside the worker (stdlib + torch only): the hyperparameters a model was actually built with.

Two sources, flattened to leaf name -> plain value (numbers, strings, booleans, None, lists of them):
the factory's arguments as called (the registry's kwargs bound to its signature, defaults filled in), and
the configuration objects the model keeps — a dataclass, a transformers config (`to_dict()`), a Namespace,
Lightning's `hparams`, or a dict — under a conventional attribute name (`config`, `cfg`, `args`, `hparams`,
…). A leaf name that has two different values is left out: it is ambiguous.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

_ATTRIBUTES = ("config", "cfg", "args", "hparams", "_hparams", "hyper_parameters", "model_args", "params")
_PLAIN = (bool, int, float, str, type(None))
_DEPTH = 4
_SKIP = object()


def hyperparameters(model: Any, factory: Any | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    leaves: dict[str, Any] = {}
    conflicts: set[str] = set()
    if factory is not None:
        _collect(_bound_arguments(factory, kwargs), leaves, conflicts, _DEPTH)
    for name in _ATTRIBUTES:
        try:
            value = getattr(model, name, None)
        except Exception:
            continue
        if value is None or (callable(value) and not isinstance(value, Mapping)):
            continue
        _collect(value, leaves, conflicts, _DEPTH)
    return {k: v for k, v in leaves.items() if k not in conflicts}


def _bound_arguments(factory: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    try:
        bound = inspect.signature(factory).bind_partial(**kwargs)
    except (TypeError, ValueError):
        return dict(kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    for name, parameter in inspect.signature(factory).parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(name, {}) or {})
    return arguments


def _as_mapping(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        try:
            result = to_dict()
        except Exception:
            return None
        return result if isinstance(result, Mapping) else None
    if type(value).__name__ in ("Namespace", "SimpleNamespace"):
        return vars(value)
    return None


def _collect(value: Any, leaves: dict[str, Any], conflicts: set[str], depth: int) -> None:
    mapping = _as_mapping(value)
    if mapping is None or depth == 0:
        return
    for key, item in mapping.items():
        if not isinstance(key, str):
            continue
        plain = _plain(item)
        if plain is _SKIP:
            _collect(item, leaves, conflicts, depth - 1)
        elif key in leaves and leaves[key] != plain:
            conflicts.add(key)
        else:
            leaves[key] = plain


def _plain(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
        return list(value)
    return _SKIP
