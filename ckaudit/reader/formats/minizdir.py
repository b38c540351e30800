"""The central directory torch's zip reader (miniz) reads, which need not be the one Python's zipfile reads.

miniz takes the directory at the offset the last end-of-central-directory record states (found searching
back from the end: the first signature with 22 bytes after it), or at the one in the zip64 record its
locator points to. Python's zipfile instead reads the directory just before the end record (shifting every
offset by any data in front of it) and takes the zip64 record from just before the locator. Where the two
differ, `miniz_members` lists the entries torch sees, so their pickles can be walked too.
"""

from __future__ import annotations

import struct
import zipfile
from typing import BinaryIO

from ckaudit.reader.formats.zipview import Member

_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_MAX_COMMENT = 65_535
_LOCATOR = b"PK\x06\x07"
_ZIP64_RECORD = b"PK\x06\x06"
_ENTRY = b"PK\x01\x02"
_MAX_ENTRIES = 100_000


def miniz_directory(handle: BinaryIO, size: int) -> tuple[int, int, int] | None:
    """(offset, size, entries) of the directory miniz reads; None when it finds no end record."""
    handle.seek(max(0, size - _EOCD_SIZE - _MAX_COMMENT))
    tail = handle.read()
    base = size - len(tail)
    at = tail.rfind(_EOCD)
    while at >= 0 and len(tail) - at < _EOCD_SIZE:
        at = tail.rfind(_EOCD, 0, at)
    if at < 0:
        return None
    entries, length, offset = struct.unpack("<HII", tail[at + 10 : at + 20])
    locator_at = base + at - 20
    if locator_at >= 0:
        handle.seek(locator_at)
        locator = handle.read(20)
        if locator.startswith(_LOCATOR):
            handle.seek(struct.unpack("<Q", locator[8:16])[0])
            record = handle.read(56)
            if len(record) == 56 and record.startswith(_ZIP64_RECORD):
                entries, length, offset = struct.unpack("<QQQ", record[32:56])
    return int(offset), int(length), int(entries)


def miniz_members(handle: BinaryIO, size: int, directory: tuple[int, int, int]) -> list[Member]:
    """The entries of the directory at `directory`, as far as they parse (miniz fails on the rest)."""
    offset, length, count = directory
    if offset + length > size:
        return []
    handle.seek(offset)
    raw = handle.read(length)
    members: list[Member] = []
    at = 0
    for position in range(min(count, _MAX_ENTRIES)):
        header = raw[at : at + 46]
        if len(header) < 46 or not header.startswith(_ENTRY):
            break
        flags, method, crc, packed, plain = struct.unpack("<HHxxxxIII", header[8:28])
        name_len, extra_len, comment_len = struct.unpack("<HHH", header[28:34])
        (local,) = struct.unpack("<I", header[42:46])
        name = raw[at + 46 : at + 46 + name_len]
        extra = raw[at + 46 + name_len : at + 46 + name_len + extra_len]
        plain, packed, local = _zip64(extra, plain, packed, local)
        info = zipfile.ZipInfo(name.decode("utf-8" if flags & 0x800 else "cp437").replace("\x00", "?"))
        info.flag_bits, info.compress_type, info.CRC = flags, method, crc
        info.compress_size, info.file_size, info.header_offset = packed, plain, local
        members.append(Member(position, name, info))
        at += 46 + name_len + extra_len + comment_len
    return members


def _zip64(extra: bytes, plain: int, packed: int, local: int) -> tuple[int, int, int]:
    """The zip64 extra field's values for the fields that are 0xFFFFFFFF, in their fixed order."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack("<HH", extra[at : at + 4])
        if kind == 1:
            values = list(struct.unpack(f"<{length // 8}Q", extra[at + 4 : at + 4 + length - length % 8]))
            fields = [plain, packed, local]
            for i, value in enumerate(fields):
                if value == 0xFFFFFFFF and values:
                    fields[i] = values.pop(0)
            return fields[0], fields[1], fields[2]
        at += 4 + length
    return plain, packed, local
