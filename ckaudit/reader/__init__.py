"""The torch-free checkpoint reader: formats are detected by content, never by extension.

`read_checkpoint` raises only `CheckpointReadError` (rule lfs-pointer, not-a-checkpoint, truncated or
corrupt), whatever the path holds. Missing paths are the caller's to report as `file-missing` (with its
hints about where the file went); if one reaches the reader anyway it is `not-a-checkpoint` ("no such
file"), as are directories that are not torch.distributed.checkpoint folders, dangling links and
unreadable files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ckaudit.findings import Rule
from ckaudit.reader.dcp import METADATA, read_dcp
from ckaudit.reader.errors import corrupt, not_a_checkpoint
from ckaudit.reader.hparams import SIDECAR, sidecar_config
from ckaudit.reader.index import parse_index, read_index
from ckaudit.reader.integrity import Integrity, file_sha256, verify_checkpoint
from ckaudit.reader.legacy import read_legacy
from ckaudit.reader.safetensors import looks_like_safetensors, read_safetensors
from ckaudit.reader.torchzip import read_torch_zip
from ckaudit.reader.types import CheckpointInfo, CheckpointReadError, StateDictCandidate, TensorInfo

__all__ = [
    "CheckpointInfo",
    "CheckpointReadError",
    "Integrity",
    "StateDictCandidate",
    "TensorInfo",
    "file_sha256",
    "read_checkpoint",
    "verify_checkpoint",
]

LFS_SPEC = b"version https://git-lfs.github.com/spec/v1"
_HEAD = 4096
_MAX_INDEX = 64 * 1024 * 1024


def read_checkpoint(path: Path) -> CheckpointInfo:
    """What the checkpoint at `path` holds: format, tensors, state-dict candidates, globals, details."""
    path = Path(path)
    try:
        return _with_sidecar(_read(path), path)
    except CheckpointReadError:
        raise
    except OSError as exc:
        raise not_a_checkpoint(f"cannot be read: {exc.strerror or exc}") from None
    except (
        Exception
    ) as exc:  # a parser met something no check anticipated: still a finding, never a traceback
        raise corrupt(f"unparseable ({type(exc).__name__}: {exc})") from None


def _with_sidecar(info: CheckpointInfo, path: Path) -> CheckpointInfo:
    """A transformers `config.json` beside the file counts among the hyperparameters it records."""
    sidecar = sidecar_config(path)
    if sidecar is None:
        return info
    return dataclasses.replace(info, hyperparameters={**info.hyperparameters, SIDECAR: sidecar})


def _read(path: Path) -> CheckpointInfo:
    if path.is_dir():
        if (path / METADATA).is_file():
            return read_dcp(path)
        raise not_a_checkpoint("a directory, and not a torch.distributed.checkpoint one (no .metadata)")
    if not path.exists():
        if path.is_symlink():
            raise not_a_checkpoint(f"a symbolic link to {path.readlink()}, which does not exist")
        raise not_a_checkpoint("no such file")
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(_HEAD)
    return _dispatch(path, size, head)


def _dispatch(path: Path, size: int, head: bytes) -> CheckpointInfo:
    if size == 0:
        raise not_a_checkpoint("an empty file")
    if head.startswith(LFS_SPEC):
        raise lfs_pointer(head)
    if head.startswith(b"PK"):
        return read_torch_zip(path, size)
    if head[:1] == b"\x80":
        return read_legacy(path, size)
    if looks_like_safetensors(head):
        return read_safetensors(path, size)
    if head.lstrip()[:1] == b"{" and size <= _MAX_INDEX:
        index = parse_index(path.read_bytes())
        if index is not None:
            return read_index(path, index, read_checkpoint)
    raise not_a_checkpoint(f"no checkpoint format recognised ({describe(head)})")


def lfs_pointer(head: bytes) -> CheckpointReadError:
    fields = dict(line.split(" ", 1) for line in head.decode("utf-8", "replace").splitlines() if " " in line)
    oid, size = fields.get("oid", ""), fields.get("size", "?")
    return CheckpointReadError(
        Rule.LFS_POINTER,
        f"a Git LFS pointer ({size} bytes, {oid}), not the checkpoint",
        {"oid": oid, "size": size},
    )


def describe(head: bytes) -> str:
    """A few words on what the content looks like instead: an HTML page, text, binary data."""
    text = head.lstrip()[:200].lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text:
        return "an HTML page: a failed download or a login page?"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data"
    return "text"
