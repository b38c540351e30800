"""safetensors: an 8-byte little-endian header length, a JSON header, then the tensor bytes."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from ckaudit.reader.dtypes import ITEMSIZE, SAFETENSORS_DTYPE, contiguous_stride, numel
from ckaudit.reader.errors import corrupt, truncated
from ckaudit.reader.types import CheckpointInfo, StateDictCandidate, TensorInfo

MAX_HEADER = 100 * 1024 * 1024  # the safetensors library's own limit


def looks_like_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= MAX_HEADER and head[8:9] == b"{"


def _tensor(key: str, entry: Any, data_size: int, file: str | None) -> tuple[TensorInfo, int, int]:
    if not isinstance(entry, dict):
        raise corrupt(f"safetensors header entry {key!r} is not an object")
    dtype = SAFETENSORS_DTYPE.get(str(entry.get("dtype")))
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    valid_shape = isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)
    valid_offsets = isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
    if dtype is None or not valid_shape or not valid_offsets:
        raise corrupt(f"safetensors header entry {key!r} is malformed: {entry!r:.120}")
    assert isinstance(shape, list) and isinstance(offsets, list)  # checked just above; for mypy
    begin, end = offsets
    nbytes = numel(tuple(shape)) * ITEMSIZE[dtype]
    if not 0 <= begin <= end or end - begin != nbytes:
        raise corrupt(f"tensor {key!r}: offsets {offsets} do not match {dtype} {shape} ({nbytes} bytes)")
    if end > data_size:
        raise truncated(f"tensor {key!r} ends at byte {end} of the data, which has only {data_size}")
    info = TensorInfo(
        key=key,
        shape=tuple(shape),
        dtype=dtype,
        stride=contiguous_stride(tuple(shape)),
        nbytes=nbytes,
        file=file,
    )
    return info, begin, end


def _parse_header(path: Path, size: int) -> tuple[dict[str, Any], int]:
    with path.open("rb") as handle:
        head = handle.read(8)
        (length,) = struct.unpack("<Q", head)
        if 8 + length > size:
            raise truncated(f"safetensors header says {length} bytes, the file has only {size - 8}")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise corrupt(f"safetensors header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise corrupt("safetensors header is not a JSON object")
    return header, 8 + length


def read_safetensors(path: Path, size: int, *, file: str | None = None) -> CheckpointInfo:
    header, data_start = _parse_header(path, size)
    metadata = header.pop("__metadata__", None)
    data_size = size - data_start
    tensors, covered = [], 0
    for key, entry in header.items():
        info, _begin, end = _tensor(key, entry, data_size, file)
        tensors.append(info)
        covered = max(covered, end)
    if covered < data_size:
        raise corrupt(
            f"{data_size - covered} bytes after the last tensor: the header does not describe the data"
        )
    candidate = StateDictCandidate(key="", tensors={t.key: t for t in tensors})
    details = {"header_bytes": data_start, "metadata": metadata if isinstance(metadata, dict) else None}
    return CheckpointInfo(
        path=str(path),
        format="safetensors",
        size=size,
        tensors=tuple(tensors),
        candidates=(candidate,) if tensors else (),
        details=details,
    )
