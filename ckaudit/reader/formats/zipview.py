"""A zip archive as torch's own reader sees it, and where Python's `zipfile` sees it differently.

torch reads archives with PyTorchStreamReader (caffe2/serialize/inline_container.cc) over miniz, built with
MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS. Its rules, mirrored here and pinned by tests against torch.load:

- the archive folder is the first central-directory entry's name up to its first '/';
- a record is found by miniz's binary search over the entries heap-sorted by ASCII-lowercased name
  (case-insensitive; of duplicate names it returns whichever the search meets first);
- names are compared byte for byte over their stored length: a NUL byte is part of the name (Python's
  zipfile cuts the name at the NUL);
- a member's bytes start after its local header's name and extra fields; the local name itself and the
  CRC-32 are never checked (Python's zipfile refuses both).
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

_LOCAL_HEADER = b"PK\x03\x04"
_LOCAL_HEADER_SIZE = 30


class Member(NamedTuple):
    position: int  # in the central directory
    raw_name: bytes  # the stored name, NUL bytes included
    info: zipfile.ZipInfo

    @property
    def shown(self) -> str:
        """The stored name for messages: non-UTF-8 bytes and NULs shown escaped, never dropped."""
        return self.raw_name.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


@dataclass
class MemberBytes:
    data: bytes
    problems: list[str] = field(default_factory=list)  # where torch and Python's zipfile disagree


class MemberError(Exception):
    """torch cannot read the member at all (bad local header, unsupported method, bad deflate stream)."""


def raw_name(info: zipfile.ZipInfo) -> bytes:
    """The name's bytes as stored: zipfile decodes UTF-8 (flag bit 11) or cp437, both reversibly."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")


class TorchView:
    """Member lookup exactly as miniz does it for torch (sorting and binary search included).

    miniz orders lowercased names as bytes compare (a prefix first), which is Python's `bytes <`. While no
    two names are equal that way, its binary search finds the one equal name, so a dict does the same
    faster; only duplicates need the heap sort and the search replayed step by step.
    """

    def __init__(self, members: list[Member]) -> None:
        self.members = members
        self.keys = [m.raw_name.lower() for m in members]  # bytes.lower() is ASCII-only, as MZ_TOLOWER
        index = dict(zip(self.keys, members, strict=True))
        self._index = index if len(index) == len(members) else None
        self._sorted = self._heap_sort() if self._index is None else []
        first = members[0].raw_name if members else b""
        slash = first.find(b"/")
        self.prefix: bytes | None = first[: slash + 1] if slash >= 0 else None

    @property
    def repeats_names(self) -> bool:
        """Whether two entries share a name as miniz compares names."""
        return self._index is None

    def record(self, name: str) -> Member | None:
        """The member torch reads for record `name` (the archive folder prepended), or None."""
        if self.prefix is None:
            return None
        query = self.prefix + name.encode("utf-8")
        return self.locate(query.split(b"\x00", 1)[0])  # a C string ends at its first NUL

    def locate(self, query: bytes) -> Member | None:
        """The member miniz returns for `query`: ASCII case-insensitive, by its binary search over the
        heap-sorted names when names repeat (the one the search meets first), else by a dict."""
        wanted = query.lower()
        if self._index is not None:
            return self._index.get(wanted)
        low, high = 0, len(self._sorted) - 1
        while low <= high:
            middle = low + ((high - low) >> 1)
            index = self._sorted[middle]
            key = self.keys[index]
            common = min(len(key), len(wanted))
            if key[:common] == wanted[:common]:
                if len(key) == len(wanted):
                    return self.members[index]
                before = len(key) < len(wanted)
            else:
                before = key[:common] < wanted[:common]
            if before:
                low = middle + 1
            else:
                high = middle - 1
        return None

    def _heap_sort(self) -> list[int]:
        """mz_zip_reader_sort_central_dir_offsets_by_filename, step for step (it is not a stable sort)."""
        order = list(range(len(self.members)))
        size = len(order)
        if size <= 1:
            return order
        for start in range((size - 2) >> 1, -1, -1):
            self._sift(order, start, size)
        for end in range(size - 1, 0, -1):
            order[end], order[0] = order[0], order[end]
            self._sift(order, 0, end)
        return order

    def _sift(self, order: list[int], root: int, end: int) -> None:
        keys = self.keys
        while True:
            child = (root << 1) + 1
            if child >= end:
                return
            if child + 1 < end and keys[order[child]] < keys[order[child + 1]]:
                child += 1
            if not keys[order[root]] < keys[order[child]]:
                return
            order[root], order[child] = order[child], order[root]
            root = child


def members_of(archive: zipfile.ZipFile) -> list[Member]:
    """Every central-directory entry with its raw stored name (NUL bytes kept, unlike ZipInfo.filename)."""
    return [Member(i, raw_name(info), info) for i, info in enumerate(archive.infolist())]


def read_member(handle: BinaryIO, member: Member, size: int) -> MemberBytes:
    """The member's bytes as torch gets them; CRC and local-name mismatches are noted, not fatal."""
    info = member.info
    handle.seek(info.header_offset)
    header = handle.read(_LOCAL_HEADER_SIZE)
    if len(header) < _LOCAL_HEADER_SIZE or not header.startswith(_LOCAL_HEADER):
        raise MemberError(f"zip member {member.shown} has no local header at byte {info.header_offset}")
    name_length = int.from_bytes(header[26:28], "little")
    extra_length = int.from_bytes(header[28:30], "little")
    local_name = handle.read(name_length)
    start = info.header_offset + _LOCAL_HEADER_SIZE + name_length + extra_length
    if start + info.compress_size > size:
        raise MemberError(f"zip member {member.shown} runs past the end of the file")
    handle.seek(start)
    stored = info.compress_type == zipfile.ZIP_STORED
    # miniz reads a stored member's *uncompressed* size from its start, whatever the compressed size says
    raw = handle.read(info.file_size if stored else info.compress_size)
    if stored and len(raw) < info.file_size:
        raise MemberError(f"zip member {member.shown} runs past the end of the file")
    found = MemberBytes(_inflate(member, raw))
    if stored and info.compress_size != info.file_size:
        found.problems.append(
            f"{member.shown}: stored with {info.compress_size} compressed and {info.file_size} "
            "uncompressed bytes (torch reads the latter, Python's zipfile refuses it)"
        )
    if local_name != member.raw_name:
        found.problems.append(
            f"{member.shown}: its local header names it {local_name!r:.80} (torch reads it regardless, "
            "Python's zipfile refuses it)"
        )
    if zlib.crc32(found.data) != info.CRC:
        found.problems.append(
            f"{member.shown}: CRC-32 mismatch (torch does not check CRCs and reads it, Python's zipfile "
            "refuses it)"
        )
    return found


def _inflate(member: Member, raw: bytes) -> bytes:
    info = member.info
    if info.compress_type == zipfile.ZIP_STORED:
        data = raw
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        try:
            data = zlib.decompressobj(-15).decompress(raw, info.file_size + 1)
        except zlib.error as exc:
            raise MemberError(f"zip member {member.shown} cannot be inflated: {exc}") from None
    else:
        raise MemberError(
            f"zip member {member.shown} uses compression method {info.compress_type}, which torch's reader "
            "does not support (stored and deflate only)"
        )
    if len(data) != info.file_size:
        raise MemberError(
            f"zip member {member.shown} holds {len(data)} bytes, its directory entry says {info.file_size}"
        )
    return data


def name_clashes(members: list[Member], view: TorchView) -> list[str]:
    """Names that do not pick one member the same way in torch and Python: duplicates (torch compares
    case-insensitively), and names with a NUL byte (Python's zipfile cuts them there)."""
    problems = []
    for member in members:
        if b"\x00" in member.raw_name:
            problems.append(
                f"{member.shown}: the name holds a NUL byte (Python's zipfile reads it as "
                f"{member.info.filename!r}, torch by its full name)"
            )
    if not view.repeats_names:
        return problems
    groups: dict[bytes, list[Member]] = {}
    for member, key in zip(members, view.keys, strict=True):
        groups.setdefault(key, []).append(member)
    for group in groups.values():
        if len(group) > 1:
            chosen = view.locate(group[0].raw_name)
            which = f"torch reads entry #{chosen.position}" if chosen is not None else "torch reads none"
            entries = ", ".join(f"#{m.position} {m.shown}" for m in group)
            problems.append(f"{len(group)} entries share the name {group[0].shown} ({entries}; {which})")
    return problems


def is_pickle_name(member: Member) -> bool:
    """A pickle stream by name: `*.pkl` under any folder and case, whether or not the name is cut at a NUL."""
    full = member.raw_name.lower()
    return full.endswith(b".pkl") or (b"\x00" in full and full.split(b"\x00", 1)[0].endswith(b".pkl"))
