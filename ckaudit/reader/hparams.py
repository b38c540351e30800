"""The hyperparameters a checkpoint records about the model it was saved from — read, never executed.

Sources, by their key at the top level of the file: `model_args` (nanoGPT), `hyper_parameters` (Lightning),
`hparams`, `model_config`, `config`, `args` and `cfg` (argparse Namespaces and dataclasses are pickled
objects: their state is read like a dict); a transformers `config.json` beside the file; and a training
script's meta JSON beside it (nanochat keeps `meta_000100.json` beside `model_000100.pt`; also `<stem>.json`),
read only under the same source keys (`model_config`, …). Each source
is flattened to leaf name -> value, keeping plain values (numbers, strings, booleans, None, lists of them);
a leaf name found twice with different values in one source is left out (it is ambiguous).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ckaudit.reader.pickle import Call

SOURCE_KEYS = ("model_args", "hyper_parameters", "hparams", "model_config", "config", "args", "cfg")
SIDECAR = "config.json"
_SIDECAR_MAX = 1024 * 1024
_DEPTH = 4
_PLAIN = (bool, int, float, str, type(None))


def saved_hyperparameters(root: Any) -> dict[str, dict[str, Any]]:
    """source key -> flat hyperparameters, for each source at the top level of the pickled object."""
    if not isinstance(root, Mapping):
        return {}
    found = {}
    for key in SOURCE_KEYS:
        if key in root:
            flat = flatten(root[key])
            if flat:
                found[key] = flat
    return found


def sidecar_config(path: Path) -> dict[str, Any] | None:
    """A transformers `config.json` beside the checkpoint (it names a `model_type` or `architectures`)."""
    data = json_beside(path.parent / SIDECAR if path.is_file() else path / SIDECAR)
    if data is None or not ({"model_type", "architectures"} & set(data)):
        return None
    return flatten(data) or None


def meta_sidecar(path: Path) -> dict[str, dict[str, Any]]:
    """source (`meta_000100.json:model_config`) -> flat hyperparameters, from the meta JSON beside a
    checkpoint file: `meta_<suffix>.json` for `<name>_<suffix>.pt`, or `<stem>.json`."""
    if not path.is_file():
        return {}
    stem = path.stem
    names = [f"{stem}.json"]
    if "_" in stem:
        names.insert(0, f"meta_{stem.split('_', 1)[1]}.json")
    for name in names:
        data = json_beside(path.parent / name)
        if data is not None:
            found = {
                f"{name}:{key}": flat for key in SOURCE_KEYS if key in data and (flat := flatten(data[key]))
            }
            if found:
                return found
    return {}


def json_beside(candidate: Path) -> dict[str, Any] | None:
    """A small JSON object file (a config or meta file beside a checkpoint), or None."""
    try:
        if not candidate.is_file() or candidate.stat().st_size > _SIDECAR_MAX:
            return None
        data = json.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def flatten(value: Any) -> dict[str, Any]:
    """Nested saved hyperparameters as one flat name -> plain value mapping (the innermost names); a name
    found with two different values is dropped, as it cannot be compared."""
    leaves: dict[str, Any] = {}
    conflicts: set[str] = set()
    _collect(value, leaves, conflicts, _DEPTH)
    return {k: v for k, v in leaves.items() if k not in conflicts}


def _collect(value: Any, leaves: dict[str, Any], conflicts: set[str], depth: int) -> None:
    mapping = _as_mapping(value)
    if mapping is None or depth == 0:
        return
    for key, item in mapping.items():
        if not isinstance(key, str):
            continue
        plain = _plain(item)
        if plain is not _NOT_PLAIN:
            if key in leaves and leaves[key] != plain:
                conflicts.add(key)
            leaves.setdefault(key, plain)
        else:
            _collect(item, leaves, conflicts, depth - 1)


def _as_mapping(value: Any) -> Mapping[Any, Any] | None:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, Call):  # an object: Namespace, dataclass, AttributeDict — its state or its items
        state = value.state
        if isinstance(state, tuple) and state and isinstance(state[0], Mapping):  # (dict, slots)
            state = state[0]
        if isinstance(state, Mapping):
            return state
        pairs = [i for i in value.items if isinstance(i, tuple) and len(i) == 2]
        return dict(pairs) if pairs else None
    return None


_NOT_PLAIN = object()


def _plain(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
        return list(value)
    return _NOT_PLAIN
