"""The torch-free checkpoint reader: formats are detected by content, never by extension.

`read_checkpoint` raises only `CheckpointReadError` (rule lfs-pointer, not-a-checkpoint, truncated or
corrupt), whatever the path holds. Missing paths are the caller's to report as `file-missing` (with its
hints about where the file went); if one reaches the reader anyway it is `not-a-checkpoint` ("no such
file"), as are directories that are not torch.distributed.checkpoint folders, dangling links and
unreadable files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports
from ckaudit.findings import Rule
from ckaudit.reader.audit import StreamAudit
from ckaudit.reader.errors import corrupt, not_a_checkpoint
from ckaudit.reader.hparams import SIDECAR, meta_sidecar, sidecar_config
from ckaudit.reader.types import CheckpointInfo, CheckpointReadError, StateDictCandidate, TensorInfo

if TYPE_CHECKING:  # the face's names that readers of checkpoints rarely need: imported on first use
    from ckaudit.reader.code_running import is_unresolved, runs_code
    from ckaudit.reader.formats import NUMPY_FORMAT, PICKLE_FORMAT, TAR_FORMAT
    from ckaudit.reader.formats.safetensors import torch_load_unpickles
    from ckaudit.reader.hparams import flatten, json_beside
    from ckaudit.reader.integrity import Integrity, file_sha256, verify_checkpoint
    from ckaudit.reader.pickle.stubs import UNPROVEN
    from ckaudit.reader.safety import (
        UNSAFE_FIX,
        GlobalsVerdict,
        allow_line,
        classify_globals,
        safe_globals_fix,
    )

__all__ = [
    "NUMPY_FORMAT",
    "PICKLE_FORMAT",
    "TAR_FORMAT",
    "UNPROVEN",
    "UNSAFE_FIX",
    "CheckpointInfo",
    "CheckpointReadError",
    "GlobalsVerdict",
    "Integrity",
    "StateDictCandidate",
    "TensorInfo",
    "allow_line",
    "classify_globals",
    "file_sha256",
    "flatten",
    "is_unresolved",
    "json_beside",
    "read_checkpoint",
    "runs_code",
    "safe_globals_fix",
    "torch_load_unpickles",
    "verify_checkpoint",
]

__getattr__ = lazy_exports(__name__, __file__)

LFS_SPEC = b"version https://git-lfs.github.com/spec/v1"
ZIP_MAGIC = b"PK\x03\x04"
_HEAD = 4096
_MAX_INDEX = 64 * 1024 * 1024


def read_checkpoint(path: Path) -> CheckpointInfo:
    """What the checkpoint at `path` holds: format, tensors, state-dict candidates, globals, details.

    A CheckpointReadError carries the globals named and called by every pickle walked before the failure.
    """
    path = Path(path)
    audit = StreamAudit()
    try:
        with _no_collection():
            return _with_sidecar(_read(path, audit), path)
    except CheckpointReadError as exc:
        from ckaudit.reader.plaintext import misread_text

        raise misread_text(audit.attach(exc), _head(path)) from None
    except OSError as exc:
        raise audit.attach(not_a_checkpoint(f"cannot be read: {exc.strerror or exc}")) from None
    except Exception as exc:  # unanticipated: still a finding, never a traceback
        raise audit.attach(corrupt(f"unparseable ({type(exc).__name__}: {exc})")) from None


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """No cyclic garbage collection while reading: a read allocates a record or more per tensor, and at
    thousands of tensors the collector's passes over them (which find nothing to free) cost a tenth of
    the read. Whatever a read leaves cyclic is collected after it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(_HEAD)
    except OSError:
        return b""


def _with_sidecar(info: CheckpointInfo, path: Path) -> CheckpointInfo:
    """A transformers `config.json` or a meta JSON beside the file counts among the hyperparameters it
    records."""
    sidecar = sidecar_config(path)
    found = {**meta_sidecar(path), **({SIDECAR: sidecar} if sidecar is not None else {})}
    if not found:
        return info
    return dataclasses.replace(info, hyperparameters={**info.hyperparameters, **found})


def _read(path: Path, audit: StreamAudit) -> CheckpointInfo:
    if path.is_dir():
        from ckaudit.reader.formats.dcp import METADATA, read_dcp

        if (path / METADATA).is_file():
            return read_dcp(path, audit, read_checkpoint)
        raise not_a_checkpoint("a directory, and not a torch.distributed.checkpoint one (no .metadata)")
    if not path.exists():
        if path.is_symlink():
            raise not_a_checkpoint(f"a symbolic link to {path.readlink()}, which does not exist")
        raise not_a_checkpoint("no such file")
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(_HEAD)
    return _dispatch(path, size, head, audit)


def _dispatch(path: Path, size: int, head: bytes, audit: StreamAudit) -> CheckpointInfo:
    """torch.load's order. Each format's module is imported when its turn comes: the common zip checkpoint
    loads no tar, safetensors or numpy code (a tenth of `inspect`'s time on a small file)."""
    if size == 0:
        raise not_a_checkpoint("an empty file")
    if head.startswith(LFS_SPEC):
        raise lfs_pointer(head)
    if head.startswith(ZIP_MAGIC) or (size < len(ZIP_MAGIC) and ZIP_MAGIC.startswith(head)):
        # torch.serialization._is_zipfile: these four bytes, nothing else (fewer: a zip cut short)
        from ckaudit.reader.formats.torchzip import read_torch_zip

        return read_torch_zip(path, size, audit)
    from ckaudit.reader.formats.numpyfile import NPY_MAGIC, read_npy
    from ckaudit.reader.formats.tarformat import read_tar, tarfile_accepts

    if head.startswith(NPY_MAGIC):
        read_npy(path, size, audit)
    if tarfile_accepts(path):  # torch.load tries tarfile before the legacy pickle, V7 headers included
        return read_tar(path, size, audit)
    return _untarred(path, size, head, audit)


def _untarred(path: Path, size: int, head: bytes, audit: StreamAudit) -> CheckpointInfo:
    from ckaudit.reader.formats.index import parse_index, read_index
    from ckaudit.reader.formats.pickles import read_pickle_file
    from ckaudit.reader.formats.safetensors import looks_like_safetensors

    if looks_like_safetensors(head):
        return _safetensors_or_pickle(path, size, head, audit)
    if head.lstrip()[:1] == b"{" and size <= _MAX_INDEX:
        index = parse_index(path.read_bytes())
        if index is not None:
            return read_index(path, index, read_checkpoint, audit)
    return read_pickle_file(path, size, head, audit)


def _safetensors_or_pickle(path: Path, size: int, head: bytes, audit: StreamAudit) -> CheckpointInfo:
    """safetensors only by its own strict header: torch.load unpickles anything else, so a file that
    merely looks like one (byte 8 a `{`) is read as the pickle torch reads; if that finds nothing, the
    safetensors error stands."""
    from ckaudit.reader.formats.pickles import audit_pickle_reading, read_pickle_file
    from ckaudit.reader.formats.safetensors import read_safetensors

    try:
        info = read_safetensors(path, size)
    except CheckpointReadError as exc:
        failure = exc
    else:
        audit_pickle_reading(path, size, head, audit)
        return _named_by(info, audit)
    try:
        return read_pickle_file(path, size, head, audit)
    except CheckpointReadError as exc:
        if exc.rule is Rule.UNSAFE_PICKLE or audit.globals or audit.calls:
            raise
    raise failure


def _named_by(info: CheckpointInfo, audit: StreamAudit) -> CheckpointInfo:
    """`info` with what the audited streams named and called besides its own."""
    if audit.globals <= set(info.globals) and audit.calls <= set(info.calls):
        return info
    return dataclasses.replace(
        info,
        globals=tuple(sorted(audit.globals.union(info.globals))),
        calls=tuple(sorted(audit.calls.union(info.calls))),
    )


def lfs_pointer(head: bytes) -> CheckpointReadError:
    """The error for a Git LFS pointer file read in place of the checkpoint (`git lfs pull` not run), with
    the object's id and size from the pointer."""
    fields = dict(line.split(" ", 1) for line in head.decode("utf-8", "replace").splitlines() if " " in line)
    oid, size = fields.get("oid", ""), fields.get("size", "?")
    return CheckpointReadError(
        Rule.LFS_POINTER,
        f"a Git LFS pointer ({size} bytes, {oid}), not the checkpoint",
        {"oid": oid, "size": size},
    )
