"""Sharded checkpoints: `*.index.json` with a `weight_map` (tensor key -> shard file), as written by
transformers/huggingface_hub for both safetensors and pytorch_model.bin shards."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ckaudit.findings import Rule
from ckaudit.reader.audit import StreamAudit
from ckaudit.reader.errors import corrupt
from ckaudit.reader.types import CheckpointInfo, CheckpointReadError, StateDictCandidate, TensorInfo

ShardReader = Callable[[Path], CheckpointInfo]


def parse_index(head: bytes) -> dict[str, Any] | None:
    """The index object when `head` (the whole small file) is a weight_map index, else None."""
    try:
        data = json.loads(head)
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("weight_map"), dict):
        return data
    return None


def _weight_map(index: dict[str, Any]) -> dict[str, str]:
    weight_map = index["weight_map"]
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
        raise corrupt("weight_map must map tensor names to shard file names")
    return weight_map


def _shard_tensors(
    path: Path, name: str, wanted: set[str], read: ShardReader
) -> tuple[list[TensorInfo], CheckpointInfo]:
    shard = path.parent / name
    if not shard.exists():
        raise CheckpointReadError(
            Rule.FILE_MISSING,
            f"shard {name} named by the index does not exist",
            {"shard": name},
        )
    try:
        info = read(shard)
    except CheckpointReadError as exc:
        raise CheckpointReadError(
            exc.rule, f"shard {name}: {exc.message}", exc.details, globals=exc.globals, calls=exc.calls
        ) from None
    candidate = info.candidates[0].tensors if info.candidates else {}
    absent = sorted(wanted - set(candidate))
    if absent:
        raise corrupt(
            f"shard {name} lacks {len(absent)} tensor(s) the index assigns to it, e.g. {absent[0]!r}"
        )
    return [replace(candidate[k], file=name) for k in candidate if k in wanted], info


def read_index(path: Path, index: dict[str, Any], read: ShardReader, audit: StreamAudit) -> CheckpointInfo:
    """A sharded save's `*.index.json`: every shard it names read (and audited) with `read`, the tensors in
    the index's order."""
    weight_map = _weight_map(index)
    by_shard: dict[str, set[str]] = {}
    for key, shard in weight_map.items():
        by_shard.setdefault(shard, set()).add(key)
    tensors: list[TensorInfo] = []
    size = path.stat().st_size
    for shard in sorted(by_shard):
        found, info = _shard_tensors(path, shard, by_shard[shard], read)
        tensors.extend(found)
        size += info.size
        audit.add(info.globals, info.calls)
    order = {key: i for i, key in enumerate(weight_map)}
    tensors.sort(key=lambda t: order[t.key])
    style = "safetensors-index" if all(s.endswith(".safetensors") for s in by_shard) else "bin-index"
    details = {"shards": sorted(by_shard), "metadata": index.get("metadata")}
    return spread_info(path, style, size, tensors, audit, details)


def spread_info(
    path: Path, format: str, size: int, tensors: list[TensorInfo], audit: StreamAudit, details: dict[str, Any]
) -> CheckpointInfo:
    """The answer for one state dict spread over many files (a sharded index, a DCP folder): its tensors
    form the one candidate, at the top (none when there are no tensors), and the audit covers every file."""
    candidate = StateDictCandidate(key="", tensors={t.key: t for t in tensors})
    return CheckpointInfo(
        path=str(path),
        format=format,
        size=size,
        tensors=tuple(tensors),
        candidates=(candidate,) if tensors else (),
        globals=audit.sorted_globals(),
        calls=audit.sorted_calls(),
        details=details,
    )
