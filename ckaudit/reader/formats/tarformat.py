"""torch's oldest format (torch.save before 0.4): a tar archive, read by torch.load's `legacy_load`.

Members: `sys_info` (a pickle torch never reads, audited all the same), `storages` (a count, then per
storage a (key, location, storage type) pickle, an int64 element count and the raw bytes; then a pickled
list of storage views), `tensors` (a count, then per tensor a (key, storage key, tensor type) pickle and
its int32 ndim, 4 spare bytes, int64 sizes, strides and offset) and `pickle` (the object; tensors are
persistent ids naming their keys). Members are found with Python's tarfile, as torch does. Every pickle of
every member is walked through the audit; raw bytes are skipped with seeks.
"""

from __future__ import annotations

import contextlib
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ckaudit.reader.audit import StreamAudit
from ckaudit.reader.dtypes import ITEMSIZE, storage_dtype
from ckaudit.reader.errors import corrupt, truncated
from ckaudit.reader.pickle import Global, StorageRef, TensorRef
from ckaudit.reader.tree import pickled_checkpoint, walk_checkpoint
from ckaudit.reader.types import CheckpointInfo, CheckpointReadError
from ckaudit.reader.views import check_views

TAR_FORMAT = "torch-tar"
_MEMBERS = ("sys_info", "storages", "tensors", "pickle")


def tarfile_accepts(path: Path) -> bool:
    """Whether torch.load's `tarfile.open(fileobj=f, mode="r:")` succeeds: any first header with a valid
    checksum, a V7 header without the `ustar` magic included."""
    try:
        with path.open("rb") as handle, tarfile.open(fileobj=handle, mode="r:"):
            return True
    except Exception:  # tarfile.TarError and anything else: torch does not take the tar path
        return False


@dataclass
class _Region:
    """One member's bytes inside the tar file: a handle positioned in [start, end)."""

    handle: BinaryIO
    name: str
    start: int
    end: int

    def read_exact(self, count: int, what: str) -> bytes:
        data = self.handle.read(count)
        if len(data) < count or self.handle.tell() > self.end:
            raise truncated(f"tar member {self.name} ends inside {what}")
        return data


def _regions(path: Path, handle: BinaryIO, size: int) -> tuple[dict[str, _Region], list[_Region]]:
    """Each member name's region as torch reads it (the last of a repeated name), and the shadowed copies."""
    try:
        with tarfile.open(path, "r:") as tar:
            members = tar.getmembers()
    except tarfile.ReadError as exc:
        raise truncated(f"tar archive ends early: {exc}") from None
    except (tarfile.TarError, UnicodeDecodeError, ValueError) as exc:
        raise corrupt(f"tar archive is unreadable: {exc}") from None
    regions: dict[str, _Region] = {}
    shadowed: list[_Region] = []
    for member in members:  # a later member of the same name wins, as tarfile.getmember does for torch
        if member.offset_data + member.size > size:
            raise truncated(f"tar member {member.name} runs past the end of the file")
        if member.name in regions:
            shadowed.append(regions[member.name])
        regions[member.name] = _Region(
            handle, member.name, member.offset_data, member.offset_data + member.size
        )
    return regions, shadowed


def _require(regions: dict[str, _Region], name: str) -> _Region:
    """torch extracts storages, then tensors, then pickle, reading each before it looks for the next: a
    missing member fails the load only once the ones before it have been unpickled."""
    if name not in regions:
        missing = [n for n in _MEMBERS[1:] if n not in regions]
        raise corrupt(f"tar archive lacks the member(s) {', '.join(missing)} of torch's tar format")
    return regions[name]


class _TarReader:
    def __init__(self, audit: StreamAudit, regions: dict[str, _Region]) -> None:
        self.audit, self.regions = audit, regions
        self.storages: dict[str, StorageRef] = {}
        self.tensors: dict[str, TensorRef] = {}

    def walk(self, region: _Region, what: str, **kwargs: Any) -> Any:
        return self.audit.walk_stream(region.handle, region.end, f"{region.name}: {what}", **kwargs).root

    def count(self, region: _Region) -> int:
        region.handle.seek(region.start)
        number = self.walk(region, "the count")
        if type(number) is not int or number < 0:
            raise corrupt(f"tar member {region.name} does not start with a count")
        return number

    def read_storages(self) -> None:
        region = _require(self.regions, "storages")
        for _ in range(self.count(region)):
            key, location, type_name = _storage_record(self.walk(region, "a storage record"))
            dtype = storage_dtype(type_name)
            if dtype is None:
                raise corrupt(f"storage {key} has the unknown type {type_name}")
            (count,) = struct.unpack("<q", region.read_exact(8, f"storage {key}"))
            nbytes = count * ITEMSIZE[dtype]
            if count < 0 or region.handle.seek(nbytes, 1) > region.end:
                raise truncated(f"tar member storages ends inside storage {key}")
            self.storages[key] = StorageRef(key, dtype, location, nbytes, type_name)
        for view in _views(self.walk(region, "the storage views")):
            target, root, offset, numel = view
            base = self.storages.get(root)
            if base is None:
                raise corrupt(f"storage view {target} names the unknown storage {root}")
            nbytes = numel * ITEMSIZE[base.dtype]
            if offset < 0 or numel < 0 or offset * ITEMSIZE[base.dtype] + nbytes > base.nbytes:
                raise corrupt(f"storage view {target} lies outside storage {root}")
            self.storages[target] = StorageRef(target, base.dtype, base.location, nbytes, base.type_name)

    def read_tensors(self) -> None:
        region = _require(self.regions, "tensors")
        for _ in range(self.count(region)):
            record = self.walk(region, "a tensor record")
            if not (isinstance(record, tuple) and len(record) == 3):
                raise corrupt("tar member tensors holds a malformed tensor record")
            key, storage_key = str(record[0]), str(record[1])
            (ndim, _spare) = struct.unpack("<ii", region.read_exact(8, f"tensor {key}"))
            if not 0 <= ndim <= 64:
                raise corrupt(f"tensor {key} has {ndim} dimensions")
            numbers = struct.unpack(
                f"<{2 * ndim + 1}q", region.read_exact(8 * (2 * ndim + 1), f"tensor {key}")
            )
            storage = self.storages.get(storage_key)
            if storage is None:
                raise corrupt(f"tensor {key} names the unknown storage {storage_key}")
            shape, stride = tuple(numbers[:ndim]), tuple(numbers[ndim : 2 * ndim])
            self.tensors[key] = TensorRef(
                storage.dtype, shape, stride, numbers[-1], storage, storage.location
            )

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple):
            return pid[0] if pid else None  # ("module", class, source file, source): the class itself
        tensor = self.tensors.get(str(pid))
        if tensor is None:
            raise corrupt(f"the object pickle names the unknown tensor {pid!r:.40}")
        return tensor


def _storage_record(record: Any) -> tuple[str, str, str]:
    if not (isinstance(record, tuple) and len(record) == 3 and isinstance(record[2], Global)):
        raise corrupt("tar member storages holds a malformed storage record")
    return str(record[0]), str(record[1]), record[2].name


def _views(value: Any) -> list[tuple[str, str, int, int]]:
    if not isinstance(value, list):
        raise corrupt("tar member storages does not end with a list of storage views")
    views = []
    for view in value:
        if not (isinstance(view, tuple) and len(view) == 4 and all(type(v) is int for v in view[2:])):
            raise corrupt("tar member storages holds a malformed storage view")
        views.append((str(view[0]), str(view[1]), view[2], view[3]))
    return views


def _audit_from_start(handle: BinaryIO, size: int, audit: StreamAudit) -> None:
    """When reading the tar fails with a TarError (a member cut short, a bad later header), torch.load
    falls back to unpickling the file from byte 0: a tar/pickle polyglot. What that pickle names is
    audited whatever the tar holds (a plain torch tar stops at its first byte, `s` of `sys_info`)."""
    handle.seek(0)
    with contextlib.suppress(CheckpointReadError):  # names and an unproven stream stay in the audit
        audit.walk_stream(handle, size, "the file read as a pickle (torch's fallback)")


def read_tar(path: Path, size: int, audit: StreamAudit) -> CheckpointInfo:
    with path.open("rb") as handle:
        _audit_from_start(handle, size, audit)
        regions, shadowed = _regions(path, handle, size)
        reader = _TarReader(audit, regions)
        extra = [
            regions[n] for n in sorted(set(regions) - {"storages", "tensors", "pickle"})
        ]  # sys_info, ...
        for region in [*extra, *shadowed]:  # pickles torch never reads: audited all the same (fail closed)
            handle.seek(region.start)
            with contextlib.suppress(CheckpointReadError):  # torch never reads it: names kept, read on
                reader.walk(region, "its pickle")
        reader.read_storages()
        reader.read_tensors()
        main_region = _require(regions, "pickle")
        handle.seek(main_region.start)
        main = audit.walk_stream(handle, main_region.end, "pickle", persistent_load=reader.persistent_load)
    tree = walk_checkpoint(main.root)
    check_views(tree.tensors, {key: s.nbytes for key, s in reader.storages.items()})
    storages = reader.storages.values()
    return pickled_checkpoint(path, TAR_FORMAT, size, main, tree, storages, audit, {})
