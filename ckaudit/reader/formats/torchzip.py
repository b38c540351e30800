"""torch.save zip archives and TorchScript archives: the central directory and the pickles, never storages.

Members are looked up as torch's reader does (`zipview`); every `.pkl` member is walked, duplicates
included, not only the `data.pkl` torch loads. Where torch and Python's zipfile would read the archive
differently, the read fails as `corrupt` naming the difference — after every pickle has been audited.
"""

from __future__ import annotations

import contextlib
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

from ckaudit.reader.audit import StreamAudit
from ckaudit.reader.errors import corrupt, not_a_checkpoint
from ckaudit.reader.formats.minizdir import miniz_directory, miniz_members
from ckaudit.reader.formats.numpyfile import audit_npy_members, npz_error
from ckaudit.reader.formats.zipopen import open_archive, salvage_pickles
from ckaudit.reader.formats.zipview import (
    Member,
    MemberError,
    TorchView,
    is_pickle_name,
    members_of,
    name_clashes,
    read_member,
)
from ckaudit.reader.pickle import (
    PickleError,
    PickleResult,
    StorageRef,
    torch_storage,
    unproven_call,
)
from ckaudit.reader.tree import pickled_checkpoint, walk_checkpoint
from ckaudit.reader.types import CheckpointInfo, CheckpointReadError
from ckaudit.reader.views import check_views

_MAX_UNNAMED = 64 * 1024 * 1024  # bytes: members larger than this are not read to look for a pickle
_SMALL_MEMBERS = (
    "byteorder",
    "version",
    ".data/version",
    ".format_version",
    ".storage_alignment",
    ".data/serialization_id",
)


class _Archive:
    """One open archive: torch's view of it, and the disagreements found while reading."""

    def __init__(self, handle: BinaryIO, size: int, members: list[Member]) -> None:
        self.handle, self.size, self.members = handle, size, members
        self.view = TorchView(members)
        self.problems = name_clashes(members, self.view)
        self._storage_members: dict[str, Member | None] = {}

    def read(self, member: Member) -> bytes:
        try:
            found = read_member(self.handle, member, self.size)
        except MemberError as exc:
            raise corrupt(str(exc)) from None
        self.problems.extend(found.problems)
        return found.data

    def small_members(self) -> dict[str, str]:
        found = {}
        for name in _SMALL_MEMBERS:
            member = self.view.record(name)
            if member is not None:
                found[name] = self.read(member).decode("utf-8", "replace").strip()
        return found

    def storage_member(self, key: str) -> Member | None:
        """The member torch reads storage `key` from (`data/<key>`), looked up once a read."""
        if key not in self._storage_members:
            self._storage_members[key] = self.view.record(f"data/{key}")
        return self._storage_members[key]

    def storage_sizes(self, storages: dict[str, StorageRef]) -> dict[str, int]:
        sizes = {}
        for key, storage in storages.items():
            member = self.storage_member(key)
            if member is None:
                raise corrupt(f"storage {key} named by data.pkl has no archive member data/{key}")
            if member.info.file_size < storage.nbytes:
                raise corrupt(
                    f"storage member {member.shown} holds {member.info.file_size} bytes, "
                    f"data.pkl says {storage.nbytes}"
                )
            sizes[key] = member.info.file_size
        return sizes


def _lenient_storage(pid: Any) -> Any:
    """Persistent ids in pickles torch.load does not read: torch's storages, else stubs."""
    try:
        return torch_storage(pid)
    except PickleError:
        return None


def _walk_unnamed_pickles(archive: _Archive, skip: set[int], audit: StreamAudit) -> None:
    """Members that hold a pickle (protocol 2+) whatever their name: walked leniently, names kept. Skipped:
    those already walked, the storages data.pkl names (raw tensor bytes), and large members."""
    for member in archive.members:
        if member.position in skip or member.info.file_size > _MAX_UNNAMED:
            continue
        try:
            data = archive.read(member)
        except CheckpointReadError:
            continue
        if data[:1] == b"\x80":
            with contextlib.suppress(CheckpointReadError):  # names and unproven streams stay audited
                audit.walk_bytes(data, member.shown, persistent_load=_lenient_storage)


def _walk_pickles(
    archive: _Archive,
    main: Member | None,
    audit: StreamAudit,
    persistent_load: Any,
    storages: dict[str, StorageRef],
) -> PickleResult | None:
    """Walk torch's data.pkl, then every other pickle member (by name, then by content); the first failure
    is raised after all."""
    others = [m for m in archive.members if m is not main and is_pickle_name(m)]
    try:
        return _walk_named(archive, main, others, audit, persistent_load)
    finally:
        skip = {m.position for m in others} | ({main.position} if main is not None else set())
        stored = (archive.storage_member(key) for key in storages)
        skip |= {member.position for member in stored if member is not None}
        _walk_unnamed_pickles(archive, skip, audit)


def _walk_named(
    archive: _Archive, main: Member | None, others: list[Member], audit: StreamAudit, persistent_load: Any
) -> PickleResult | None:
    failure: CheckpointReadError | None = None
    walked = None
    for member in [main, *others] if main is not None else others:
        try:
            data = archive.read(member)
            load = persistent_load if member is main else _lenient_storage
            result = audit.walk_bytes(data, member.shown, persistent_load=load)
        except CheckpointReadError as exc:
            failure = failure or exc
            continue
        if member is main:
            walked = result
    if failure is not None:
        raise failure
    return walked


def read_torch_zip(path: Path, size: int, audit: StreamAudit) -> CheckpointInfo:
    """The torch.save zip format: torch's and Python's zip readers must agree on the central directory,
    every pickle member is audited; an archive that cannot be opened still has its pickles audited
    before the error is raised."""
    with path.open("rb") as handle:
        try:
            archive_file = open_archive(path, size)
        except CheckpointReadError:
            _audit_salvaged(handle, size, audit)
            raise
        with archive_file:
            _same_directory(handle, size, archive_file, audit)
            archive = _Archive(handle, size, members_of(archive_file))
            npy_members, objects = audit_npy_members(archive_file, audit)
            info = _read(path, size, archive, audit)
            if info is None and npy_members:
                npz_error(objects)
            if info is None:
                raise not_a_checkpoint(_no_data_pkl(archive.view))
            return info


def _same_directory(handle: BinaryIO, size: int, archive: zipfile.ZipFile, audit: StreamAudit) -> None:
    """torch (miniz) and Python's zipfile must read the same central directory. Where they do not
    (prepended or concatenated data, two directories, a zip64 locator pointing elsewhere), the pickles of
    the directory torch reads are walked too, and the file cannot be proven inert."""
    directory = miniz_directory(handle, size)
    found = getattr(archive, "start_dir", None)
    if directory is not None and directory[0] == found:
        return
    stated = directory[0] if directory is not None else None
    reason = (
        f"torch's zip reader takes the central directory at byte {stated}, Python's zipfile at byte "
        f"{found}: the archive has data before its directory, or two directories"
    )
    audit.add((), (unproven_call(reason),))
    if directory is not None:
        torch_view = _Archive(handle, size, miniz_members(handle, size, directory))
        _walk_unnamed_pickles(torch_view, set(), audit)


def _audit_salvaged(handle: BinaryIO, size: int, audit: StreamAudit) -> None:
    """An archive Python's zipfile cannot open (cut, or a directory only torch reads): the pickles its local
    headers lead to are still walked for their names."""

    def walk(name: str, data: bytes) -> int | None:
        try:
            return audit.walk_bytes(data, name, persistent_load=_lenient_storage).end
        except CheckpointReadError:
            return None  # a pickle cut short: its names are kept, the file is already broken

    salvage_pickles(handle, size, walk)


def _read(path: Path, size: int, archive: _Archive, audit: StreamAudit) -> CheckpointInfo | None:
    """The checkpoint torch reads from data.pkl; None when torch finds no data.pkl."""
    main = archive.view.record("data.pkl")
    storages: dict[str, StorageRef] = {}

    def persistent_load(pid: Any) -> StorageRef:
        ref = torch_storage(pid)
        storages.setdefault(ref.key, ref)
        return ref

    walked = _walk_pickles(archive, main, audit, persistent_load, storages)
    if walked is None:
        return None
    small = archive.small_members()
    if archive.problems:
        raise corrupt(
            "torch and Python's zipfile read this archive differently: " + "; ".join(archive.problems),
            disagreements=archive.problems,
        )
    tree = walk_checkpoint(walked.root)
    check_views(tree.tensors, archive.storage_sizes(storages))
    prefix = archive.view.prefix or b""
    details = {
        "archive": prefix.decode("utf-8", "backslashreplace").rstrip("/"),
        **small,
        "members": len(archive.members),
    }
    kind = "torchscript" if _is_torchscript(archive.view) else "torch-zip"
    return pickled_checkpoint(path, kind, size, walked, tree, storages.values(), audit, details)


def _is_torchscript(view: TorchView) -> bool:
    """torch.serialization._is_torchscript_zip: a `constants.pkl` record, and torch.load hands the file to
    torch.jit.load (whose C++ unpickler resolves no Python globals) instead of unpickling data.pkl."""
    return view.record("constants.pkl") is not None


def _no_data_pkl(view: TorchView) -> str:
    if view.prefix is None:
        return "a zip archive whose first entry is in no folder: not a torch checkpoint"
    folder = view.prefix.decode("utf-8", "backslashreplace")
    return f"a zip archive without {folder}data.pkl: not a torch checkpoint"
