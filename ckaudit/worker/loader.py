"""Run BY PATH inside the worker (stdlib + torch only): a project's own state-dict loader on meta tensors.

`loader: package.module:function` in a registry entry names a function that takes a state dict and returns
the one the project passes to load_state_dict (or changes it in place and returns None).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def resolve(name: str) -> Any:
    """`package.module:function` -> the function, imported from the current import root."""
    module_name, _, attr = name.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{name} is a {type(target).__name__}, not a function")
    return target


def run(name: str, state: Any) -> Any:
    """The state dict as the project's loader leaves it."""
    result = resolve(name)(state)
    result = state if result is None else result
    if not isinstance(result, Mapping):
        raise TypeError(f"{name} returned {type(result).__name__}, not a state dict (a mapping)")
    return result


def tensors_of(state: Mapping[Any, Any]) -> list[list[Any]]:
    """[[key, shape, dtype], ...] of the tensor entries, in order (dtype without "torch.")."""
    return [
        [str(key), list(value.shape), str(value.dtype).removeprefix("torch.")]
        for key, value in state.items()
        if hasattr(value, "shape") and hasattr(value, "dtype")
    ]


def metadata_of(state: Any) -> dict[str, dict[str, Any]] | None:
    """The `_metadata` a loader's result carries (module name -> version info), JSON-able; None without."""
    metadata = getattr(state, "_metadata", None)
    if not isinstance(metadata, Mapping):
        return None
    return {str(k): dict(v) for k, v in metadata.items() if isinstance(v, Mapping)}
