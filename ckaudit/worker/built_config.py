"""Run BY PATH inside the worker (stdlib + torch only): the hyperparameters a model was actually built with.

Two sources: the factory's arguments as called (the registry's kwargs bound to its signature, defaults
filled in), and the configuration objects the model keeps — a dataclass, a transformers config
(`to_dict()`), a Namespace, Lightning's `hparams`, or a dict — under a conventional attribute name
(`config`, `cfg`, `args`, `hparams`, …). Answered as nested plain data (objects become dicts, other values
are left out); ckaudit flattens it as it flattens a checkpoint's saved hyperparameters.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

_ATTRIBUTES = ("config", "cfg", "args", "hparams", "_hparams", "hyper_parameters", "model_args", "params")
_PLAIN = (bool, int, float, str, type(None))
_DEPTH = 4


def hyperparameters(model: Any, factory: Any | None, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """{"arguments": the factory's bound arguments, "config": model.config, ...} as nested plain data."""
    found: dict[str, Any] = {}
    if factory is not None:
        found["arguments"] = _tree(_bound_arguments(factory, kwargs), _DEPTH)
    for name in _ATTRIBUTES:
        try:
            value = getattr(model, name, None)
        except Exception:
            continue
        if value is not None and (isinstance(value, Mapping) or not callable(value)):
            tree = _tree(value, _DEPTH)
            if isinstance(tree, dict) and tree:
                found[name] = tree
    return found


def _bound_arguments(factory: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    try:
        signature = inspect.signature(factory)
        bound = signature.bind_partial(**kwargs)
    except (TypeError, ValueError):
        return dict(kwargs)
    bound.apply_defaults()
    arguments = dict(bound.arguments)
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(name, {}) or {})
    return arguments


def _tree(value: Any, depth: int) -> Any:
    """Plain values and lists of them as they are; mappings and config objects as dicts; else None."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
        return list(value)
    mapping = _as_mapping(value) if depth > 0 else None
    if mapping is None:
        return None
    trees = {key: (item, _tree(item, depth - 1)) for key, item in mapping.items() if isinstance(key, str)}
    return {key: tree for key, (item, tree) in trees.items() if tree is not None or item is None}


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
