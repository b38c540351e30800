"""`--verify`: every zip member's CRC32, sizes of shards and data files, and the file's sha256 when asked.

One sequential pass in 8 MiB chunks. When sha256 is wanted it runs in a second thread over the same chunk
while this thread computes the CRC32s (hashlib and zlib release the GIL on large buffers), so the pass costs
about one sha256, the CPU's limit.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ckaudit.reader.errors import corrupt, truncated
from ckaudit.reader.types import CheckpointInfo, CheckpointReadError

CHUNK = 8 * 1024 * 1024
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length
_ZIP_FORMATS = ("torch-zip", "torchscript")


@dataclass(frozen=True)
class Integrity:
    sha256: str | None  # hex digest of the file; None for directories and indexes
    problems: list[CheckpointReadError] = field(default_factory=list)


@dataclass
class _Member:
    name: str
    start: int  # first data byte in the file
    size: int
    crc: int
    running: int = 0


def verify_checkpoint(path: Path, info: CheckpointInfo, *, sha256: bool) -> Integrity:
    """Check what the structure promises against the bytes; never raises for file content."""
    path = Path(path)
    try:
        if info.format in _ZIP_FORMATS:
            return _verify_zip(path, sha256)
        if info.format in ("safetensors", "torch-legacy", "torch-tar"):
            return _verify_plain(path, info, sha256)
        digest = file_sha256(path) if sha256 and path.is_file() else None  # an index file's own bytes
        return Integrity(digest, _recheck(path, info))
    except OSError as exc:
        return Integrity(None, [corrupt(f"cannot be read while verifying: {exc.strerror or exc}")])


def file_sha256(path: Path) -> str:
    """The hex sha256 of the file's bytes, as the registry records it (the same pass `--verify` makes);
    raises OSError when the file cannot be read."""
    return _hashed_scan(path, [])


def _recheck(path: Path, info: CheckpointInfo) -> list[CheckpointReadError]:
    """Indexes and DCP directories: re-read (sizes of every shard/data file) and verify each shard."""
    from ckaudit.reader import read_checkpoint

    try:
        read_checkpoint(path)
    except CheckpointReadError as exc:
        return [exc]
    problems = []
    base = path.parent if path.is_file() else path
    for shard in info.details.get("shards", ()):
        shard_info = read_checkpoint(base / shard)
        problems.extend(verify_checkpoint(base / shard, shard_info, sha256=False).problems)
    return problems


def _verify_plain(path: Path, info: CheckpointInfo, sha256: bool) -> Integrity:
    size = path.stat().st_size
    problems = [] if size == info.size else [truncated(f"file changed size since it was read: {size} bytes")]
    return Integrity(file_sha256(path) if sha256 else None, problems)


def _zip_members(path: Path) -> tuple[list[_Member], list[CheckpointReadError]]:
    """Stored members (CRC'd in the one pass) sorted by position; compressed ones (TorchScript code) are
    small and checked here through zipfile, which verifies their CRC while inflating."""
    with zipfile.ZipFile(path) as archive, path.open("rb") as handle:
        members, problems = [], []
        for zinfo in archive.infolist():
            handle.seek(zinfo.header_offset)
            raw = handle.read(_LOCAL_HEADER.size)
            if len(raw) < _LOCAL_HEADER.size:
                raise truncated(f"zip member {zinfo.filename}: local header cut off")
            signature, name_len, extra_len = _LOCAL_HEADER.unpack(raw)
            if signature != b"PK\x03\x04" or handle.read(name_len) != zinfo.orig_filename.encode("utf-8"):
                raise corrupt(f"zip member {zinfo.filename}: local header does not match the directory")
            if zinfo.compress_type != zipfile.ZIP_STORED:
                problems.extend(_check_compressed(archive, zinfo))
                continue
            start = zinfo.header_offset + _LOCAL_HEADER.size + name_len + extra_len
            members.append(_Member(zinfo.filename, start, zinfo.file_size, zinfo.CRC))
    return sorted(members, key=lambda m: m.start), problems


def _check_compressed(archive: zipfile.ZipFile, zinfo: zipfile.ZipInfo) -> list[CheckpointReadError]:
    try:
        with archive.open(zinfo) as member:
            while member.read(CHUNK):
                pass
    except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError, NotImplementedError
        return [corrupt(f"zip member {zinfo.filename}: {exc}", member=zinfo.filename)]
    return []


def _verify_zip(path: Path, sha256: bool) -> Integrity:
    try:
        members, problems = _zip_members(path)
    except CheckpointReadError as exc:
        return Integrity(None, [exc])
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        return Integrity(None, [corrupt(f"zip directory is unreadable: {exc}")])
    digest = _scan(path, members, sha256)
    size = path.stat().st_size
    for member in members:
        if member.start + member.size > size:
            problems.append(truncated(f"zip member {member.name} ends beyond the end of the file"))
        elif member.running != member.crc:
            problems.append(
                corrupt(
                    f"zip member {member.name}: CRC32 {member.running:08x}, expected {member.crc:08x}",
                    member=member.name,
                )
            )
    return Integrity(digest, problems)


def _crc_chunk(members: list[_Member], offset: int, chunk: memoryview) -> None:
    end = offset + len(chunk)
    for member in members:
        lo, hi = max(member.start, offset), min(member.start + member.size, end)
        if lo < hi:
            member.running = zlib.crc32(chunk[lo - offset : hi - offset], member.running)


def _scan(path: Path, members: list[_Member], sha256: bool) -> str | None:
    """One pass: CRC32 of each member's byte range, and the file's sha256 when asked."""
    if not sha256:
        _scan_ranges(path, members)
        return None
    return _hashed_scan(path, members)


def _hashed_scan(path: Path, members: list[_Member]) -> str:
    """Every byte: CRC32 of each member's range here, sha256 of everything in a helper thread."""
    from concurrent.futures import ThreadPoolExecutor  # imported here: only verifying pays for threads

    hasher = hashlib.sha256()
    buffers = [bytearray(CHUNK), bytearray(CHUNK)]

    with path.open("rb", buffering=0) as handle, ThreadPoolExecutor(max_workers=1) as pool:
        offset, turn, pending = 0, 0, None
        while True:
            buffer = buffers[turn]
            count = handle.readinto(buffer)
            if not count:
                break
            view = memoryview(buffer)[:count]
            if pending is not None:
                pending.result()
            pending = pool.submit(hasher.update, view)
            _crc_chunk(members, offset, view)
            offset, turn = offset + count, 1 - turn
        if pending is not None:
            pending.result()
    return hasher.hexdigest()


def _scan_ranges(path: Path, members: list[_Member]) -> None:
    """CRC only: read just the members' bytes."""
    buffer = bytearray(CHUNK)
    with path.open("rb", buffering=0) as handle:
        for member in members:
            handle.seek(member.start)
            remaining = member.size
            while remaining > 0:
                count = handle.readinto(memoryview(buffer)[: min(CHUNK, remaining)])
                if not count:
                    break
                member.running = zlib.crc32(memoryview(buffer)[:count], member.running)
                remaining -= count
