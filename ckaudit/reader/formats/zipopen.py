"""Opening a zip archive: a missing or cut tail is `truncated`; a complete but damaged directory `corrupt`.

An archive whose tail is gone cannot be opened by torch either, yet its first members are still there: the
pickles among them are walked from their local headers (`salvage_pickles`), so a payload in a cut file is
still reported.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ckaudit.reader.errors import corrupt, truncated
from ckaudit.reader.types import CheckpointReadError

_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_EOCD64_LOCATOR = b"PK\x06\x07"
_LOCAL_HEADER = b"PK\x03\x04"
_MAX_COMMENT = 65_535
_MAX_SALVAGED = 10_000  # local headers followed from the start of a cut archive
_MAX_STREAMED = 64 * 1024 * 1024  # bytes read for a pickle member whose local header gives no size


def open_archive(path: Path, size: int) -> zipfile.ZipFile:
    """Open the archive (reads only the central directory)."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise _why_unopenable(path, size, exc) from None
    except (ValueError, OSError, EOFError, UnicodeDecodeError, NotImplementedError) as exc:
        raise corrupt(f"zip directory is unreadable: {exc}") from None
    for info in archive.infolist():
        if info.header_offset + info.compress_size > size:
            archive.close()
            raise corrupt(f"zip member {info.filename} lies beyond the end of the file")
    return archive


def _why_unopenable(path: Path, size: int, exc: Exception) -> CheckpointReadError:
    with path.open("rb") as handle:
        handle.seek(max(0, size - _EOCD_SIZE - _MAX_COMMENT))
        tail = handle.read()
    if _has_end_record(tail, size):
        return corrupt(f"zip directory is damaged: {exc}")
    return truncated("zip archive ends before its central directory (an interrupted download or copy?)")


def _has_end_record(tail: bytes, size: int) -> bool:
    """A complete end-of-central-directory record whose directory lies inside the file."""
    at = tail.rfind(_EOCD)
    while at >= 0:
        record = tail[at : at + _EOCD_SIZE]
        if len(record) == _EOCD_SIZE:
            directory_size, directory_offset, comment = struct.unpack("<IIH", record[12:])
            complete = at + _EOCD_SIZE + comment <= len(tail)
            zip64 = directory_offset == 0xFFFFFFFF and _EOCD64_LOCATOR in tail[max(0, at - 20) : at]
            start_in_file = size - len(tail) + at
            if complete and (zip64 or directory_offset + directory_size <= start_in_file):
                return True
        at = tail.rfind(_EOCD, 0, at)
    return False


def salvage_pickles(handle: BinaryIO, size: int, walk: Callable[[str, bytes], int | None]) -> None:
    """Follow the local headers from the first byte and `walk(name, data)` each `.pkl` member.

    torch.save streams its members: their local headers give no sizes (flag bit 3), a data descriptor
    follows the data. A pickle ends itself, so `walk` returns where it stopped (None if it could not tell),
    and the next header is found after the descriptor; other members of unknown size end the search.
    """
    position = 0
    for _ in range(_MAX_SALVAGED):
        handle.seek(position)
        header = handle.read(30)
        if len(header) < 30 or not header.startswith(_LOCAL_HEADER):
            return
        flags, method, _t, _d, _crc, packed, _plain, name_length, extra_length = struct.unpack(
            "<HHHHIIIHH", header[6:30]
        )
        name = handle.read(name_length)
        packed = _zip64_size(handle.read(extra_length), packed)
        start = position + 30 + name_length + extra_length
        streamed = bool(flags & 0x08) and packed == 0
        if start >= size:
            return
        is_pickle = name.lower().split(b"\x00", 1)[0].endswith(b".pkl") and method in (0, 8)
        if is_pickle:
            handle.seek(start)
            data = handle.read(min(size - start, _MAX_STREAMED) if streamed else min(packed, size - start))
            end = walk(name.decode("utf-8", "backslashreplace"), _inflate_partial(data, method))
            if streamed:
                if end is None or method != 0:
                    return
                packed = end
        elif streamed:
            return
        position = _after_descriptor(handle, start + packed) if streamed else start + packed


def _after_descriptor(handle: BinaryIO, at: int) -> int:
    """Where the next local header starts after a data descriptor (signature optional; zip64 or not)."""
    handle.seek(at)
    tail = handle.read(28)
    skip = 4 if tail.startswith(b"PK\x07\x08") else 0
    for length in (12, 20):
        if tail[skip + length : skip + length + 4] == _LOCAL_HEADER:
            return at + skip + length
    return at + skip + 12


def _zip64_size(extra: bytes, packed: int) -> int:
    """The compressed size from a zip64 extra field when the header's own is 0xFFFFFFFF."""
    if packed != 0xFFFFFFFF:
        return packed
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack("<HH", extra[at : at + 4])
        if kind == 1 and length >= 16:
            return int(struct.unpack("<Q", extra[at + 12 : at + 20])[0])
        at += 4 + length
    return packed


def _inflate_partial(data: bytes, method: int) -> bytes:
    if method == 0:
        return data
    try:
        return zlib.decompressobj(-15).decompress(data)
    except zlib.error:
        return b""
