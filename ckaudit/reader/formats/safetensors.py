"""safetensors: an 8-byte little-endian header length, a JSON header, then the tensor bytes.

Validated as the safetensors library validates (`read_metadata` and `Metadata::validate` in its Rust core;
tests hold the two to the same verdicts): the header length within 100 MB and within the file, UTF-8 JSON
whose top level is an object, `__metadata__` a map of strings, each tensor entry with a known dtype, a
shape of non-negative integers and two offsets, no field given twice; the tensors, ordered by offsets,
tile the data from byte 0 without gap or overlap, each exactly shape x itemsize long, and end where the
file ends. A file shorter than its header or its tensors say is `truncated`, anything else `corrupt`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from ckaudit.reader.dtypes import ITEMSIZE, SAFETENSORS_DTYPE, contiguous_stride, numel
from ckaudit.reader.errors import corrupt, truncated
from ckaudit.reader.types import CheckpointInfo, StateDictCandidate, TensorInfo

MAX_HEADER = 100_000_000  # the safetensors library's own limit (MAX_HEADER_SIZE)
_LIBRARY_DTYPES = {k: v for k, v in SAFETENSORS_DTYPE.items() if k != "C128"}  # the library has no C128
_SUB_BYTE = {"F4": ("float4_e2m1", 4), "F6_E2M3": ("float6_e2m3", 6), "F6_E3M2": ("float6_e3m2", 6)}
_JSON_SPACE = b" \t\r\n"
_USIZE = 1 << 64
SAFETENSORS_FORMAT = "safetensors"


def torch_load_unpickles(path: str, format: str) -> bool:
    """A safetensors file torch.load does not hand to the safetensors library: torch 2.13 does so only for
    a path ending in `.safetensors`, and unpickles any other from byte 0 (and refuses it)."""
    return format == SAFETENSORS_FORMAT and not path.endswith(".safetensors")


def looks_like_safetensors(head: bytes) -> bool:
    """A length prefix, then JSON (the library allows whitespace first; a top level other than an object
    is a broken safetensors file, not another format)."""
    return len(head) >= 9 and head[8:].lstrip(_JSON_SPACE)[:1] in (b"{", b"[")


class _Fields(dict[str, Any]):
    """A JSON object as parsed, remembering a key given twice (serde refuses that inside a tensor entry)."""

    repeated: str | None = None


def _object(pairs: list[tuple[str, Any]]) -> _Fields:
    fields = _Fields()
    for key, value in pairs:
        if key in fields and fields.repeated is None:
            fields.repeated = key
        fields[key] = value
    return fields


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _usize(value: Any) -> bool:
    return type(value) is int and 0 <= value < _USIZE


def _dtype(name: Any) -> tuple[str, int] | None:
    """(torch-style dtype name, bits per element) for a dtype the library knows."""
    if not isinstance(name, str):
        return None
    if name in _LIBRARY_DTYPES:
        dtype = _LIBRARY_DTYPES[name]
        return dtype, 8 * ITEMSIZE[dtype]
    return _SUB_BYTE.get(name)


def _tensor(key: str, entry: Any, file: str | None) -> tuple[TensorInfo, int, int]:
    if not isinstance(entry, dict):
        raise corrupt(f"safetensors header entry {key!r} is not an object")
    if isinstance(entry, _Fields) and entry.repeated is not None:
        raise corrupt(f"safetensors header entry {key!r} gives the field {entry.repeated!r} twice")
    dtype = _dtype(entry.get("dtype"))
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    valid_shape = isinstance(shape, list) and all(_usize(d) for d in shape)
    valid_offsets = isinstance(offsets, list) and len(offsets) == 2 and all(_usize(o) for o in offsets)
    if dtype is None or not valid_shape or not valid_offsets:
        raise corrupt(f"safetensors header entry {key!r} is malformed: {entry!r:.120}")
    assert isinstance(shape, list) and isinstance(offsets, list)  # checked just above; for mypy
    name, bits = dtype
    begin, end = offsets
    nbits = numel(tuple(shape)) * bits
    if nbits % 8:
        raise corrupt(f"tensor {key!r}: {name} {shape} does not end on a byte boundary")
    info = TensorInfo(
        key=key,
        shape=tuple(shape),
        dtype=name,
        stride=contiguous_stride(tuple(shape)),
        nbytes=nbits // 8,
        file=file,
    )
    return info, begin, end


def _parse_header(path: Path, size: int) -> tuple[dict[str, Any], int]:
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > MAX_HEADER:
            raise corrupt(f"safetensors header length {length} exceeds the library's limit of {MAX_HEADER}")
        if 8 + length > size:
            raise truncated(f"safetensors header says {length} bytes, the file has only {size - 8} after it")
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_object, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise corrupt(f"safetensors header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise corrupt("safetensors header is not a JSON object")
    return header, 8 + length


def _metadata(header: dict[str, Any]) -> dict[str, str] | None:
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise corrupt("safetensors __metadata__ must map names to strings")
    return dict(metadata)


def _check_layout(placed: list[tuple[TensorInfo, int, int]], data_size: int) -> None:
    """In offset order, each tensor starts where the previous one ended and is exactly its size."""
    position = 0
    for info, begin, end in sorted(placed, key=lambda p: (p[1], p[2])):
        if begin != position or end < begin:
            raise corrupt(
                f"tensor {info.key!r}: offsets [{begin}, {end}] leave a gap or overlap another tensor "
                f"(the data so far ends at {position})"
            )
        if end - begin != info.nbytes:
            raise corrupt(
                f"tensor {info.key!r}: offsets [{begin}, {end}] do not match {info.dtype} "
                f"{list(info.shape)} ({info.nbytes} bytes)"
            )
        position = end
    if position > data_size:
        raise truncated(f"the tensors end at byte {position} of the data, which has only {data_size}")
    if position < data_size:
        raise corrupt(
            f"{data_size - position} bytes after the last tensor: the header does not describe the data"
        )


def read_safetensors(path: Path, size: int, *, file: str | None = None) -> CheckpointInfo:
    """The header parsed and its tensors' byte ranges checked against the data size (the tensor data itself
    is not read). `file`: the shard's name, when read for an index."""
    header, data_start = _parse_header(path, size)
    metadata = _metadata(header)
    placed = [_tensor(key, entry, file) for key, entry in header.items()]
    _check_layout(placed, size - data_start)
    tensors = [info for info, _begin, _end in placed]
    candidate = StateDictCandidate(key="", tensors={t.key: t for t in tensors})
    details = {"header_bytes": data_start, "metadata": metadata}
    return CheckpointInfo(
        path=str(path),
        format=SAFETENSORS_FORMAT,
        size=size,
        tensors=tuple(tensors),
        candidates=(candidate,),
        details=details,
    )
