"""torch.distributed.checkpoint directories: `.metadata` (a pickled Metadata) names every tensor and the
data files holding its chunks. Walked with the restricted unpickler; tensor data is only stat'ed.

A non-tensor value (BytesStorageMetadata) is a `torch.save` of it stored as a slice of a `.distcp` file,
which DCP's load planner reads back with `torch.load(BytesIO(slice), weights_only=False)`: every such slice
is read as a checkpoint of its own and its names join the directory's. A slice behind stream transforms
(DCP's experimental extensions) is not decoded: it cannot be proven inert."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ckaudit.reader.audit import StreamAudit
from ckaudit.reader.dtypes import ITEMSIZE, contiguous_stride, dtype_from_global, numel
from ckaudit.reader.errors import corrupt, truncated
from ckaudit.reader.formats.index import spread_info
from ckaudit.reader.pickle import Call, Global, unproven_call
from ckaudit.reader.types import CheckpointInfo, CheckpointReadError, TensorInfo

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


ReadCheckpoint = Callable[[Path], CheckpointInfo]


def _byte_slices(entries: dict[Any, Any], storage_data: Any) -> list[dict[Any, Any]]:
    """The _StorageInfo states of the entries stored as torch.save'd bytes."""
    byte_fqns = {
        key
        for key, entry in entries.items()
        if isinstance(entry, Call) and (entry.func_name or "").endswith("BytesStorageMetadata")
    }
    slices = []
    for index, info in storage_data.items() if isinstance(storage_data, dict) else ():
        if _state(index).get("fqn") in byte_fqns:
            slices.append(_state(info))
    return slices


def _audit_byte_slices(
    directory: Path, slices: list[dict[Any, Any]], read: ReadCheckpoint, audit: StreamAudit
) -> None:
    with tempfile.TemporaryDirectory(prefix="ckaudit-dcp-") as scratch:
        for number, state in enumerate(slices):
            name, offset, length = state.get("relative_path"), state.get("offset"), state.get("length")
            if state.get("transform_descriptors"):
                audit.add((), (unproven_call(f"DCP byte entry in {name} behind stream transforms"),))
                continue
            if not (isinstance(name, str) and type(offset) is int and type(length) is int):
                continue  # _data_files reports what is malformed or missing
            with (directory / name).open("rb") as handle:
                handle.seek(offset)
                data = handle.read(length)
            piece = Path(scratch) / f"entry{number}.pt"
            piece.write_bytes(data)
            try:
                seen = read(piece)
                audit.add(seen.globals, seen.calls)
            except CheckpointReadError as exc:
                audit.add(exc.globals, exc.calls)


def read_dcp(directory: Path, audit: StreamAudit, read: ReadCheckpoint) -> CheckpointInfo:
    """A torch.distributed.checkpoint folder: the `.metadata` pickle audited and read for the tensors'
    shapes and dtypes; the pickled (byte-serialised) entries of its data files audited too."""
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
    _audit_byte_slices(directory, _byte_slices(entries, state.get("storage_data")), read, audit)
    total = size + sum((directory / name).stat().st_size for name in files)
    details = {
        "data_files": sorted(files),
        "entries": len(entries),
        "non_tensor_entries": len(entries) - len(tensors),
    }
    return spread_info(directory, "dcp", total, tensors, audit, details)
