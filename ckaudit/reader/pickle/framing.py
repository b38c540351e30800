"""How CPython's C unpickler reads a pickle from a file object: FRAMEs and text-opcode arguments.

torch.load unpickles from a file object (`io.BytesIO` over a zip record, an unbuffered file for the tar
format's members). The C unpickler then keeps a loaded FRAME in a buffer and serves each read from it only
when the whole read fits; a read that crosses the frame's end is served from the *file* instead, past the
frame, and the rest of the frame is dropped (`_Unpickler_ReadImpl`, `_Unpickler_Readline`). Only the
payload of BINBYTES*/BYTEARRAY8 (`_Unpickler_ReadInto`) continues contiguously. `pickle.loads(bytes)`
reads all of it as one buffer, so an opcode across a frame end is two different programs. No pickler writes
one, so the walker does not guess which program runs: such a stream cannot be proven inert.

Text opcodes are parsed as the C unpickler parses them (`TEXT_ARGS`): INT as C's `strtol(s, &end, 0)` (so
`I0x10` is 16 and `I010` is 8) falling back to `int(s, 0)`; LONG as `int(s, 0)`; GLOBAL, INST and PERSID as
raw lines (no escape processing); a C string ends at its first NUL. A line C cannot parse fails C too.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from typing import Any

from ckaudit.reader.pickle.stubs import PickleError

# Opcodes whose payload the C unpickler reads with _Unpickler_ReadInto (contiguous across a frame end).
READ_INTO = frozenset({"BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"})


def unproven(message: str) -> PickleError:
    """An error for what the walker cannot follow: not a damaged file, but nothing it proves inert."""
    return PickleError(message, truncated=False, unproven=True)


class Frames:
    """The current frame's end while the C unpickler reads from a frame buffer, else None."""

    def __init__(self) -> None:
        self.end: int | None = None

    def opcode(self, name: str, start: int, header_end: int, end: int) -> None:
        """Check one opcode at `start` whose reads through its length prefix end at `header_end` and whose
        argument ends at `end`; FRAME's `end` is the end of the frame it announces."""
        if self.end is not None and start >= self.end:
            self.end = None  # the buffer is used up: reads come from the file again, contiguously
        if name == "FRAME":
            if self.end is None:
                self.end = end
            elif end > self.end:
                raise unproven(f"FRAME at byte {start} crosses the end of the enclosing frame")
            return  # a frame inside the buffer is re-read from it: nothing changes
        if self.end is None or end <= self.end:
            return
        if name in READ_INTO and header_end <= self.end:
            self.end = None  # the payload runs on from the buffer into the file
            return
        raise unproven(
            f"{name} at byte {start} crosses the end of its frame (the C unpickler reads it from after "
            "the frame, pickle.loads from inside: two different programs)"
        )


_STRTOL = re.compile(rb"[ \t\n\v\f\r]*[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def _c_string(line: bytes) -> bytes:
    return line.split(b"\x00", 1)[0]


def c_int(line: bytes) -> int | bool:
    """INT's argument line (newline included) as load_int parses it."""
    if len(line) < 2:
        raise ValueError("INT argument too short")
    text = _c_string(line)
    match = _STRTOL.match(text)
    if match and text[match.end() :] in (b"\n", b""):
        value = _strtol_value(match.group(0))
        if -(1 << 63) <= value < (1 << 63):  # else strtol overflows: load_int falls back to int(s, 0)
            return bool(value) if len(line) == 3 and value in (0, 1) else value
    return int(text, 0)


def _strtol_value(token: bytes) -> int:
    token = token.strip()
    sign = -1 if token.startswith(b"-") else 1
    digits = token.lstrip(b"+-")
    if digits[:2].lower() == b"0x":
        return sign * int(digits[2:], 16)
    return sign * (int(digits, 8) if digits.startswith(b"0") else int(digits))


def c_long(line: bytes) -> int:
    """LONG's argument line as load_long parses it (a trailing L dropped, base 0)."""
    if len(line) < 2:
        raise ValueError("LONG argument too short")
    if line[-2:-1] == b"L":
        line = line[:-2]
    return int(_c_string(line), 0)


def c_name(line: bytes) -> str:
    """A GLOBAL/INST name line as load_global decodes it: UTF-8, strict, nothing unescaped."""
    if len(line) < 2 or not line.endswith(b"\n"):
        raise ValueError("name line too short or without newline")
    return line[:-1].decode("utf-8")


def c_float(line: bytes) -> float:
    return float(_c_string(line))


def c_decimal(line: bytes) -> int:
    """PUT/GET's memo index: PyLong_FromString(s, NULL, 10)."""
    return int(_c_string(line), 10)


def c_quoted(line: bytes) -> str:
    """STRING: quoted, escapes undone, decoded with torch.load's encoding (utf-8)."""
    text = line[:-1]
    if len(text) < 2 or text[:1] != text[-1:] or text[:1] not in (b"'", b'"'):
        raise ValueError("the STRING opcode argument must be quoted")
    return codecs.escape_decode(text[1:-1])[0].decode("utf-8")


def c_persid(line: bytes) -> str:
    """PERSID's argument as the C unpickler reads it: ASCII only."""
    return line[:-1].decode("ascii")


def c_unicode(line: bytes) -> str:
    """UNICODE's argument: raw-unicode-escape, as the C unpickler decodes it."""
    return line[:-1].decode("raw-unicode-escape")


TEXT_ARGS: dict[str, Callable[[bytes], Any]] = {
    "INT": c_int,
    "LONG": c_long,
    "FLOAT": c_float,
    "STRING": c_quoted,
    "UNICODE": c_unicode,
    "PUT": c_decimal,
    "GET": c_decimal,
    "PERSID": c_persid,
}
