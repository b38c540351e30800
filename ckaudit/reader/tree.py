"""From a walked object tree to the reader's answer: tensors with dotted keys, and state-dict candidates."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckaudit.reader.audit import StreamAudit
from ckaudit.reader.dtypes import ITEMSIZE, numel
from ckaudit.reader.hparams import saved_hyperparameters
from ckaudit.reader.pickle import Call, PickleResult, StorageRef, TensorRef
from ckaudit.reader.types import CheckpointInfo, StateDictCandidate, TensorInfo

# Conventional container keys, best first (training checkpoints, Lightning, timm EMA, ...).
CONVENTIONAL_KEYS = (
    "state_dict",
    "model_state_dict",
    "model",
    "module",
    "net",
    "network",
    "params",
    "state_dict_ema",
    "model_ema",
    "ema",
)
_NEARLY_ALL = 0.9


def tensor_info(key: str, ref: TensorRef, file: str | None = None) -> TensorInfo:
    """The reader's TensorInfo for a tensor reference the walker rebuilt from the pickle (`file`: the shard
    it lives in)."""
    return TensorInfo(
        key=key,
        shape=ref.shape,
        dtype=ref.dtype,
        stride=ref.stride,
        storage_offset=ref.offset,
        storage=ref.storage.key if ref.storage else None,
        device=ref.device,
        nbytes=numel(ref.shape) * ITEMSIZE.get(ref.dtype, 1),
        file=file,
    )


def _join(prefix: str, key: Any) -> str:
    part = str(key)
    return f"{prefix}.{part}" if prefix else part


def _children(obj: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(obj, dict):
        yield from ((k, v) for k, v in obj.items() if isinstance(k, (str, int)))
    elif isinstance(obj, (list, tuple)):
        yield from enumerate(obj)
    elif isinstance(obj, Call):
        state = obj.state
        if isinstance(state, tuple) and state and isinstance(state[0], dict):  # (dict, slots)
            state = state[0]
        if isinstance(state, dict):
            yield from _children(state)
        for i, item in enumerate(obj.items):
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], (str, int)):
                yield item
            else:
                yield i, item


def walk_tree(root: Any) -> Iterator[tuple[str, Any]]:
    """(dotted path, object) for every node, depth first in stream order; shared nodes visited once."""
    seen: set[int] = set()
    pending: list[tuple[str, Any]] = [("", root)]
    while pending:
        path, obj = pending.pop()
        if not isinstance(obj, (dict, list, tuple, Call)):
            yield path, obj  # a leaf: a tensor, a value
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield path, obj
        children = [(_join(path, k), v) for k, v in _children(obj)]
        pending.extend(reversed(children))


@dataclass(frozen=True)
class WalkedTree:
    """A pickle's object tree, walked once: its tensors by dotted path and its state-dict candidates."""

    tensors: list[TensorInfo]
    candidates: list[StateDictCandidate]


def walk_checkpoint(root: Any, file: str | None = None) -> WalkedTree:
    """One walk for both answers; a state dict's records are the file's own (keyed by their full path)."""
    tensors: list[TensorInfo] = []
    mappings: list[tuple[str, dict[Any, Any]]] = []
    by_ref: dict[tuple[str, int], TensorInfo] = {}
    for path, obj in walk_tree(root):
        if isinstance(obj, TensorRef):
            info = by_ref[(path, id(obj))] = tensor_info(path, obj, file)
            tensors.append(info)
        elif isinstance(obj, dict):
            mappings.append((path, obj))
    found = (_candidate(path, mapping, file, by_ref) for path, mapping in mappings)
    return WalkedTree(tensors, sorted((c for c in found if c is not None), key=_rank))


def _metadata(value: Any) -> dict[str, dict[str, Any]] | None:
    if not isinstance(value, dict):
        return None
    plain = {}
    for key, entry in value.items():
        if isinstance(key, str) and isinstance(entry, dict):
            plain[key] = {
                k: v for k, v in entry.items() if isinstance(v, (str, int, float, bool, type(None)))
            }
    return plain


def _candidate(
    path: str, mapping: dict[Any, Any], file: str | None, known: dict[tuple[str, int], TensorInfo]
) -> StateDictCandidate | None:
    """A mapping of (nearly) all tensors; an empty mapping too: it is what a model without persistent state
    saves (no parameters, only `persistent=False` buffers), and torch loads it into such a model. Its
    records are the walk's (`known`, by full path), so a nested state dict costs no second record per tensor;
    a tensor the walk passed over (a mapping it met twice) gets one of its own."""
    tensors = {}
    for k, v in mapping.items():
        if isinstance(v, TensorRef):
            full = _join(path, k)
            tensors[k] = known.get((full, id(v))) or tensor_info(full, v, file)
    if mapping and (not tensors or len(tensors) < _NEARLY_ALL * len(mapping)):
        return None
    return StateDictCandidate(
        key=path, tensors=tensors, metadata=_metadata(getattr(mapping, "metadata", None))
    )


def _rank(candidate: StateDictCandidate) -> tuple[int, int, int]:
    """The top level first, then mappings that hold tensors, and empty ones (an optimizer's `state` before its
    first step) only after them; conventional container keys first, optimizers last."""
    if candidate.key == "":
        return (0, 0, 0)
    last = candidate.key.rsplit(".", 1)[-1]
    conventional = CONVENTIONAL_KEYS.index(last) if last in CONVENTIONAL_KEYS else len(CONVENTIONAL_KEYS)
    optimizer = 1 if "optim" in candidate.key else 0
    empty = 0 if candidate.tensors else 2
    return (1 + empty + optimizer, conventional, -len(candidate.tensors))


def pickled_checkpoint(
    path: Path,
    format: str,
    size: int,
    main: PickleResult,
    tree: WalkedTree,
    storages: Iterable[StorageRef],
    audit: StreamAudit,
    details: Mapping[str, Any],
) -> CheckpointInfo:
    """The answer of a pickle-based format (zip, legacy, tar): candidates and saved hyperparameters from the
    main pickle, the names every stream of the read named and called, and what its storages hold."""
    stored = list(storages)
    return CheckpointInfo(
        path=str(path),
        format=format,
        size=size,
        tensors=tuple(tree.tensors),
        candidates=tuple(tree.candidates),
        hyperparameters=saved_hyperparameters(main.root),
        globals=audit.sorted_globals(),
        calls=audit.sorted_calls(),
        details={
            **details,
            "storages": len(stored),
            "storage_bytes": sum(s.nbytes for s in stored),
            "locations": sorted({s.location for s in stored}),
            "opcodes_outside_weights_only": sorted(main.refused),
        },
    )
