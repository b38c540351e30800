"""torch.save zip archives and TorchScript archives: the central directory and `data.pkl`, never storages."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from ckaudit.reader.errors import corrupt, from_pickle, not_a_checkpoint, truncated
from ckaudit.reader.hparams import saved_hyperparameters
from ckaudit.reader.pickle import (
    WEIGHTS_ONLY_OPCODES,
    PickleError,
    StorageRef,
    torch_storage,
    walk_bytes,
)
from ckaudit.reader.tree import collect_tensors, find_candidates
from ckaudit.reader.types import CheckpointInfo, CheckpointReadError
from ckaudit.reader.views import check_views

_EOCD = b"PK\x05\x06"
_SMALL_MEMBERS = (
    "byteorder",
    "version",
    ".data/version",
    ".format_version",
    ".storage_alignment",
    ".data/serialization_id",
)


def open_archive(path: Path, size: int) -> zipfile.ZipFile:
    """Open the archive (reads only the central directory); a missing directory means a truncated file."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise _why_unopenable(path, size, exc) from None
    except (ValueError, OSError, EOFError, UnicodeDecodeError, NotImplementedError) as exc:
        raise corrupt(f"zip directory is unreadable: {exc}") from None
    for info in archive.infolist():
        if info.header_offset + info.compress_size > size:
            raise corrupt(f"zip member {info.filename} lies beyond the end of the file")
    return archive


def _why_unopenable(path: Path, size: int, exc: Exception) -> CheckpointReadError:
    with path.open("rb") as handle:
        handle.seek(max(0, size - 65_557))
        tail = handle.read()
    if _EOCD in tail:
        return corrupt(f"zip directory is damaged: {exc}")
    return truncated("zip archive ends before its central directory (an interrupted download or copy?)")


def find_prefix(names: list[str]) -> str | None:
    """The archive folder holding data.pkl ('archive/' for torch.save, any name is allowed)."""
    pickles = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
    if not pickles:
        return None
    return min(pickles, key=lambda n: n.count("/"))[: -len("data.pkl")]


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except zipfile.BadZipFile as exc:  # includes "Bad CRC-32" and bad local headers
        raise corrupt(f"zip member {name}: {exc}") from None
    except Exception as exc:  # zlib.error, EOFError, NotImplementedError, ...
        raise corrupt(f"zip member {name} cannot be read: {exc}") from None


def _small_members(archive: zipfile.ZipFile, prefix: str, names: set[str]) -> dict[str, str]:
    found = {}
    for member in _SMALL_MEMBERS:
        if prefix + member in names:
            found[member] = _read_member(archive, prefix + member).decode("utf-8", "replace").strip()
    return found


def _check_storages(storages: dict[str, StorageRef], archive: zipfile.ZipFile, prefix: str) -> dict[str, int]:
    sizes = {}
    for key, storage in storages.items():
        name = f"{prefix}data/{key}"
        try:
            info = archive.getinfo(name)
        except KeyError:
            raise corrupt(f"storage {key} named by data.pkl has no archive member {name}") from None
        if info.file_size < storage.nbytes:
            raise corrupt(
                f"storage member {name} holds {info.file_size} bytes, data.pkl says {storage.nbytes}"
            )
        sizes[key] = info.file_size
    return sizes


def read_torch_zip(path: Path, size: int) -> CheckpointInfo:
    with open_archive(path, size) as archive:
        names = archive.namelist()
        prefix = find_prefix(names)
        if prefix is None:
            raise not_a_checkpoint("a zip archive without data.pkl: not a torch checkpoint")
        name_set = set(names)
        torchscript = prefix + "constants.pkl" in name_set or any(
            n.startswith(prefix + "code/") for n in names
        )
        storages: dict[str, StorageRef] = {}

        def persistent_load(pid: Any) -> StorageRef:
            ref = torch_storage(pid)
            storages.setdefault(ref.key, ref)
            return ref

        try:
            walked = walk_bytes(_read_member(archive, prefix + "data.pkl"), persistent_load=persistent_load)
        except PickleError as exc:
            raise from_pickle(exc, f"{prefix}data.pkl") from None
        tensors = collect_tensors(walked.root)
        check_views(tensors, _check_storages(storages, archive, prefix))
        details: dict[str, Any] = {
            "archive": prefix.rstrip("/"),
            **_small_members(archive, prefix, name_set),
            "storages": len(storages),
            "storage_bytes": sum(s.nbytes for s in storages.values()),
            "locations": sorted({s.location for s in storages.values()}),
            "members": len(names),
            "opcodes_outside_weights_only": sorted(walked.opcodes - WEIGHTS_ONLY_OPCODES),
        }
    return CheckpointInfo(
        path=str(path),
        format="torchscript" if torchscript else "torch-zip",
        size=size,
        tensors=tuple(tensors),
        candidates=tuple(find_candidates(walked.root)),
        hyperparameters=saved_hyperparameters(walked.root),
        globals=tuple(sorted(walked.globals)),
        calls=tuple(sorted(walked.calls)),
        details=details,
    )
