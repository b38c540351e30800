"""Run BY PATH inside the worker (stdlib + torch, + safetensors for that format): `ckaudit fix`'s conversion.

Loads the checkpoint with `torch.load(weights_only=True)` only (a pickle that needs more is refused by
torch itself, never executed), takes the state dict out of its container, applies the key steps in the
registry's order (strip_prefix, add_prefix, rename, drop) and writes a new file without ever replacing an
existing one (see `_write`).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any


def convert(request: Mapping[str, Any]) -> dict[str, Any]:
    """The `convert` request: load `src` with weights_only, take the state dict under `key`, apply the
    rename/strip steps in order and write `dst` (torch or safetensors), never over an existing file; the
    number of tensors written."""
    import torch

    obj = torch.load(request["src"], map_location="cpu", weights_only=True)
    state: Mapping[str, Any] = _container(obj, request.get("key") or "")
    for steps in request.get("steps") or []:  # each step set in turn, as listed
        state = _apply(state, steps)
    if request.get("format") == "safetensors":
        _write(request["dst"], lambda tmp: _save_safetensors(state, tmp))
    else:
        _write(request["dst"], lambda tmp: torch.save(state, tmp))
    return {"tensors": len(state)}


def _container(obj: Any, key: str) -> Any:
    for part in key.split(".") if key else []:
        if not isinstance(obj, Mapping) or part not in obj:
            raise KeyError(f"no entry {key!r} in the file")
        obj = obj[part]
    if not isinstance(obj, Mapping):
        raise TypeError(f"{key or 'the top level'} is a {type(obj).__name__}, not a state dict")
    return obj


def _apply(state: Mapping[str, Any], steps: Mapping[str, Any]) -> OrderedDict[str, Any]:
    strip = steps.get("strip_prefix") or []
    strip = [strip] if isinstance(strip, str) else list(strip)
    add = steps.get("add_prefix") or ""
    rename = dict(steps.get("rename") or {})
    drop = list(steps.get("drop") or [])

    def key_of(key: str) -> str:
        for prefix in strip:
            key = key[len(prefix) :] if key.startswith(prefix) else key
        return _renamed(rename, add + key)

    result: OrderedDict[str, Any] = OrderedDict()
    for key, value in state.items():
        new = key_of(str(key))
        if not any(fnmatch.fnmatchcase(new, glob) for glob in drop):
            result[new] = value
    metadata = getattr(state, "_metadata", None)
    if isinstance(metadata, Mapping):
        result._metadata = OrderedDict(  # type: ignore[attr-defined]
            (_module_of(key_of, path), value) for path, value in metadata.items()
        )
    return result


def _renamed(rename: Mapping[str, str], key: str) -> str:
    """The closest enclosing entry of `rename` (the key itself, else its nearest module) applies."""
    parts = key.split(".")
    for cut in range(len(parts), 0, -1):
        head = ".".join(parts[:cut])
        if head in rename:
            return rename[head] + key[len(head) :]
    return key


def _module_of(key_of: Any, path: str) -> str:
    """A module path of `_metadata`, moved like a key under it would be."""
    moved = key_of(f"{path}.__leaf__" if path else "__leaf__")
    return moved[: -len(".__leaf__")] if moved.endswith(".__leaf__") else ""


def _save_safetensors(state: Mapping[str, Any], path: str) -> None:
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise RuntimeError(
            "--to safetensors needs the safetensors package in the project's interpreter"
        ) from None
    # tied weights share storage, which save_file refuses: every tensor gets its own copy
    save_file({k: v.detach().clone().contiguous() for k, v in state.items()}, path)


def _write(target: str, save: Any) -> None:
    """Save under the target's own name in a temporary folder beside it (torch names the archive after the
    file), then hard-link: a target that appeared meanwhile is never replaced."""
    folder = tempfile.mkdtemp(prefix=".ckaudit-fix-", dir=os.path.dirname(os.path.abspath(target)))
    tmp = os.path.join(folder, os.path.basename(target))
    try:
        save(tmp)
        os.link(tmp, target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
