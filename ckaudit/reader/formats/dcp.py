"""torch.distributed.checkpoint directories: `.metadata` (a pickled Metadata) names every tensor and the
data files holding its chunks. Walked with the restricted unpickler; data files are only stat'ed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ckaudit.reader.audit import StreamAudit
from ckaudit.reader.dtypes import ITEMSIZE, contiguous_stride, dtype_from_global, numel
from ckaudit.reader.errors import corrupt, truncated
from ckaudit.reader.pickle import Call, Global
from ckaudit.reader.types import CheckpointInfo, StateDictCandidate, TensorInfo

METADATA = ".metadata"


def _state(obj: Any) -> dict[Any, Any]:
    return obj.state if isinstance(obj, Call) and isinstance(obj.state, dict) else {}


def _size(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, Call) and value.args:
        value = value.args[0]
    if isinstance(value, (tuple, list)) and all(type(v) is int and v >= 0 for v in value):
        return tuple(value)
    return None


def _dtype(properties: Any) -> str | None:
    state = properties.state if isinstance(properties, Call) else None
    first = state[0] if isinstance(state, tuple) and state else _state(properties).get("dtype")
    return dtype_from_global(first.name) if isinstance(first, Global) else None


def _tensor(key: str, entry: Any) -> TensorInfo | None:
    """A TensorStorageMetadata entry -> TensorInfo; None for BytesStorageMetadata (pickled non-tensors)."""
    if not (
        isinstance(entry, Call) and entry.func_name and entry.func_name.endswith("TensorStorageMetadata")
    ):
        return None
    state = _state(entry)
    shape, dtype = _size(state.get("size")), _dtype(state.get("properties"))
    if shape is None or dtype is None:
        raise corrupt(f".metadata entry {key!r} has no valid size/dtype")
    return TensorInfo(
        key=key,
        shape=shape,
        dtype=dtype,
        stride=contiguous_stride(shape),
        nbytes=numel(shape) * ITEMSIZE[dtype],
    )


def _data_files(directory: Path, storage_data: Any) -> dict[str, int]:
    """Each referenced data file and the bytes the metadata needs from it; missing or short files raise."""
    needed: dict[str, int] = {}
    for info in storage_data.values() if isinstance(storage_data, dict) else ():
        state = _state(info)
        name, offset, length = state.get("relative_path"), state.get("offset"), state.get("length")
        if isinstance(name, str) and type(offset) is int and type(length) is int:
            needed[name] = max(needed.get(name, 0), offset + length)
    for name, end in needed.items():
        file = directory / name
        if not file.is_file():
            raise truncated(f"data file {name} named by .metadata is missing")
        if file.stat().st_size < end:
            raise truncated(f"data file {name} has {file.stat().st_size} bytes, .metadata needs {end}")
    return needed


def read_dcp(directory: Path, audit: StreamAudit) -> CheckpointInfo:
    meta = directory / METADATA
    size = meta.stat().st_size
    with meta.open("rb") as handle:
        walked = audit.walk_stream(handle, size, ".metadata")
    state = _state(walked.root)
    entries = state.get("state_dict_metadata")
    if not isinstance(entries, dict):
        raise corrupt(".metadata holds no state_dict_metadata")
    tensors = [t for k, v in entries.items() if isinstance(k, str) and (t := _tensor(k, v)) is not None]
    files = _data_files(directory, state.get("storage_data"))
    total = size + sum((directory / name).stat().st_size for name in files)
    candidate = StateDictCandidate(key="", tensors={t.key: t for t in tensors})
    details = {
        "data_files": sorted(files),
        "entries": len(entries),
        "non_tensor_entries": len(entries) - len(tensors),
    }
    return CheckpointInfo(
        path=str(directory),
        format="dcp",
        size=total,
        tensors=tuple(tensors),
        candidates=(candidate,) if tensors else (),
        globals=audit.sorted_globals(),
        calls=audit.sorted_calls(),
        details=details,
    )
