"""The two pickle decoders: opcodes from a stream or from bytes, both read as CPython's C unpickler reads a
file object (FRAMEs and text arguments: see framing).

Both feed the same `Machine` and agree opcode for opcode; `walk_bytes` is the fast path for in-memory
pickles (torch.save's data.pkl), `walk_pickle` reads a file where the pickle's end is not known in advance.
An error is *proven* (the C unpickler fails at the same byte: an unknown opcode, a truncation, a stack
underflow, a text argument C cannot parse) or *unproven* (the walker cannot follow what C would go on to
do): the machine's `unproven` errors make the stream unsafe, never merely corrupt.
"""

from __future__ import annotations

import io
import pickletools
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

from ckaudit.reader.pickle.cpass import c_pass
from ckaudit.reader.pickle.framing import TEXT_ARGS, Frames, c_name
from ckaudit.reader.pickle.machine import HANDLERS, IGNORED, PUSH_ARG, Machine
from ckaudit.reader.pickle.stubs import PersistentLoad, PickleError, PickleResult
from ckaudit.reader.pickle.weights_only import WEIGHTS_ONLY_OPCODES


def walk_pickle(
    stream: BinaryIO, size: int, *, persistent_load: PersistentLoad | None = None
) -> PickleResult:
    """Interpret one pickle from the stream's position; `size` is where the stream ends (to tell truncation).

    Raises PickleError on malformed or truncated input; the stream is left just past STOP.
    """
    machine = Machine(persistent_load)
    _interpret(machine, lambda: _run_stream(machine, stream, size), lambda: stream.tell() >= size)
    return _result(machine, stream.tell())


def _interpret(machine: Machine, run: Callable[[], None], at_end: Callable[[], bool]) -> None:
    """Run a decode loop; every failure becomes a PickleError keeping the names seen before it."""
    try:
        run()
    except PickleError as exc:
        raise machine.error(str(exc), truncated=exc.truncated, unproven=exc.unproven) from None
    except IndexError:  # popping past the last MARK or an empty stack: C's "unpickling stack underflow"
        raise machine.error("stack underflow", truncated=False) from None
    except RecursionError:
        raise machine.error("pickle nested too deeply to follow", truncated=False, unproven=True) from None
    except Exception as exc:  # a value the walker does not model (TypeError, ValueError, ...)
        truncated = at_end()
        message = f"cannot follow the pickle: {type(exc).__name__}: {exc}"
        raise machine.error(message, truncated=truncated, unproven=not truncated) from None
    if not machine.stopped:
        raise machine.error("pickle ended before STOP", truncated=True)


def walk_bytes(data: bytes, *, persistent_load: PersistentLoad | None = None) -> PickleResult:
    """walk_pickle over an in-memory pickle with a table-driven decoder (the cost is per opcode).

    Bytes after STOP are audited too: torch ignores them, but a second `pickle.load` on the same bytes
    runs them, so the names of every further pickle there join `globals` and `calls` (fail closed).
    The common torch.save stream is read at C speed (cpass) when that provably gives the same result.
    """
    fast = c_pass(data, persistent_load)
    if fast is not None:
        return fast
    return walk_bytes_exactly(data, persistent_load=persistent_load)


def walk_bytes_exactly(data: bytes, *, persistent_load: PersistentLoad | None = None) -> PickleResult:
    """walk_bytes without the C pass: the walker, opcode by opcode (its differential tests' reference)."""
    result = _walk_one(data, 0, persistent_load)
    if result.end < len(data):
        _audit_trailing(data, result)
    return result


def _audit_trailing(data: bytes, result: PickleResult) -> None:
    """Walk the pickles that follow the first STOP, keeping their names, until the bytes run out or fail."""
    start = result.end
    while start < len(data):
        try:
            more = _walk_one(data, start, None)
        except PickleError as exc:
            result.globals.update(exc.globals)
            result.calls.update(exc.calls)
            return
        result.globals.update(more.globals)
        result.calls.update(more.calls)
        start = more.end


def _walk_one(data: bytes, start: int, persistent_load: PersistentLoad | None) -> PickleResult:
    machine = Machine(persistent_load)
    state = _DecodeState()
    state.pos = start
    _interpret(machine, lambda: _run_table(machine, data, state), lambda: state.pos >= len(data))
    machine.opcodes |= {_OPCODES[code].name for code in state.seen}
    return _result(machine, state.pos)


def _result(machine: Machine, end: int) -> PickleResult:
    refused = machine.opcodes - WEIGHTS_ONLY_OPCODES
    return PickleResult(machine.result, machine.globals, end, refused, machine.calls)


class _DecodeState:
    def __init__(self) -> None:
        self.pos = 0
        self.seen: set[int] = set()
        self.frames = Frames()


_NO_ARG, _FIXED, _SIZED, _TEXT = range(4)
# How pickletools' binary argument kinds are read: (mode, bytes, struct format). A _FIXED argument is the
# value itself; a _SIZED one is the length of the bytes that follow. Every other kind is a text line.
_BINARY_ARGS = {
    "uint1": (_FIXED, 1, "<B"),
    "uint2": (_FIXED, 2, "<H"),
    "int4": (_FIXED, 4, "<i"),
    "uint4": (_FIXED, 4, "<I"),
    "uint8": (_FIXED, 8, "<Q"),
    "float8": (_FIXED, 8, ">d"),
    "string1": (_SIZED, 1, "<B"),
    "bytes1": (_SIZED, 1, "<B"),
    "unicodestring1": (_SIZED, 1, "<B"),
    "long1": (_SIZED, 1, "<B"),
    "string4": (_SIZED, 4, "<i"),
    "bytes4": (_SIZED, 4, "<I"),
    "unicodestring4": (_SIZED, 4, "<I"),
    "long4": (_SIZED, 4, "<i"),
    "bytes8": (_SIZED, 8, "<Q"),
    "unicodestring8": (_SIZED, 8, "<Q"),
    "bytearray8": (_SIZED, 8, "<Q"),
}
_OPCODES = {op.code.encode("latin-1")[0]: op for op in pickletools.opcodes}
_FRAME = 0x95  # pickle.FRAME


def _check_frame(length: int, pos: int, size: int) -> None:
    """CPython's C unpickler (the one torch.load uses) reads a FRAME's whole length ahead and fails when the
    bytes are not there; otherwise frames are transparent: opcodes and their arguments may cross them."""
    if pos + length > size:
        raise PickleError(f"FRAME of {length} bytes at byte {pos - 9} runs past the end", truncated=True)


def _convert_sized(kind: str, raw: bytes) -> Any:
    if kind.startswith("unicode"):
        try:
            return raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:  # the C unpickler decodes the same way and fails too
            raise PickleError(f"invalid UTF-8 in a unicode argument: {exc}", truncated=False) from None
    if kind.startswith("long"):
        return int.from_bytes(raw, "little", signed=True)
    return raw.decode("latin-1") if kind.startswith("string") else raw


def _run_table(machine: Machine, data: bytes, state: _DecodeState) -> None:
    """The decode+interpret loop, kept flat: one table lookup per opcode, arguments read in place. An
    argument's extent is checked against the frame before it is converted (C reads it elsewhere)."""
    size, table, unpack_from, seen, frames = len(data), _TABLE, struct.unpack_from, state.seen, state.frames
    pos = state.pos
    while not machine.stopped:
        if pos >= size:
            state.pos = pos
            raise PickleError("pickle ended before STOP", truncated=True)
        start, code = pos, data[pos]
        entry = table[code]
        if entry is None:
            state.pos = pos
            raise PickleError(f"unknown opcode {code:#04x} at byte {pos}", truncated=False)
        pos += 1
        name, handler, mode, width, fmt, kind = entry
        seen.add(code)
        arg: Any = None
        end = header_end = pos
        if mode == _TEXT:
            stream = io.BytesIO(data)
            stream.seek(pos)
            lines = _text_lines(name, stream.readline)
            end = header_end = stream.tell()
        elif mode != _NO_ARG:
            if pos + width > size:
                state.pos = size
                raise PickleError(f"{name} argument cut off", truncated=True)
            arg = unpack_from(fmt, data, pos)[0]
            pos = end = header_end = pos + width
            if code == _FRAME:
                _check_frame(arg, pos, size)
                end = pos + arg
            elif mode == _SIZED:
                if arg < 0 or pos + arg > size:
                    state.pos = size
                    raise PickleError(f"{name} argument runs past the end", truncated=arg >= 0)
                end = pos + arg
        if frames.end is not None or code == _FRAME:
            frames.opcode(name, start, header_end, end)
        if mode == _TEXT:
            arg, pos = _parse_text(name, lines), end
        elif mode == _SIZED:
            arg, pos = _convert_sized(kind, data[pos:end]), end
        state.pos = pos
        handler(machine, arg)


def _run_stream(machine: Machine, stream: BinaryIO, size: int) -> None:
    """_run_table's loop over a file object whose pickle ends where its STOP is."""
    frames = Frames()
    while not machine.stopped:
        start = stream.tell()
        byte = stream.read(1)
        if not byte:
            raise PickleError("pickle ended before STOP", truncated=True)
        entry = _TABLE[byte[0]]
        if entry is None:
            raise PickleError(f"unknown opcode {byte[0]:#04x} at byte {start}", truncated=False)
        name, handler, mode, width, fmt, kind = entry
        machine.opcodes.add(name)
        arg: Any = None
        if mode == _TEXT:
            lines = _text_lines(name, stream.readline)
        elif mode != _NO_ARG:
            arg = struct.unpack(fmt, _read_exact(stream, width, name))[0]
        end = header_end = stream.tell()
        if name == "FRAME":
            _check_frame(arg, end, size)
            end += arg
        elif mode == _SIZED:
            if arg < 0 or end + arg > size:
                raise PickleError(f"{name} argument runs past the end", truncated=arg >= 0)
            end += arg
        if frames.end is not None or name == "FRAME":
            frames.opcode(name, start, header_end, end)
        if mode == _TEXT:
            arg = _parse_text(name, lines)
        elif mode == _SIZED:
            arg = _convert_sized(kind, _read_exact(stream, arg, name))
        handler(machine, arg)


def _read_exact(stream: BinaryIO, count: int, name: str) -> bytes:
    data = stream.read(count)
    if len(data) < count:
        raise PickleError(f"{name} argument cut off", truncated=True)
    return data


def _text_lines(name: str, readline: Callable[[int], bytes]) -> list[bytes]:
    """A text opcode's newline-terminated argument line(s): two for GLOBAL and INST."""
    first = _line(readline, name)
    return [first, _line(readline, name)] if name in ("GLOBAL", "INST") else [first]


def _parse_text(name: str, lines: list[bytes]) -> Any:
    """The argument as the C unpickler parses it (framing.TEXT_ARGS); a line C cannot parse fails C
    too, so the failure is proven."""
    try:
        if name in ("GLOBAL", "INST"):
            return c_name(lines[0]), c_name(lines[1])
        return TEXT_ARGS[name](lines[0])
    except (ValueError, UnicodeDecodeError) as exc:
        raise PickleError(f"{name} argument {lines[0][:40]!r}: {exc}", truncated=False) from None


# A text opcode's argument line is read up to here. C reads a whole line before parsing it, and only a
# string or a space-padded float parses at such a length (ints stop at 4,300 digits, names do not import,
# a protocol-0 persistent id is no storage): past it, those cannot be proven, the rest fail as C fails.
# Without the cap, a file whose first byte is PUT or PERSID (a safetensors header length can be) would
# be read whole into memory looking for a newline its zero-filled data never holds.
_MAX_LINE = 64 * 1024 * 1024
_LONG_TEXT = frozenset({"STRING", "UNICODE", "FLOAT"})


def _line(readline: Callable[[int], bytes], name: str) -> bytes:
    line = readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        message = f"{name} argument line longer than {_MAX_LINE} bytes"
        raise PickleError(message, truncated=False, unproven=name in _LONG_TEXT)
    if not line.endswith(b"\n"):
        raise PickleError(f"{name} argument ends without a newline", truncated=True)
    return line


def _table_entry(
    op: pickletools.OpcodeInfo,
) -> tuple[str, Callable[[Machine, Any], None], int, int, str, str]:
    kind = op.arg.name if op.arg is not None else ""
    if op.name in HANDLERS:
        handler = HANDLERS[op.name]
    elif op.name in PUSH_ARG:
        handler = _push_arg
    elif op.name in IGNORED:
        handler = _ignore
    else:
        handler = _unsupported(op.name)
    if not kind:
        return op.name, handler, _NO_ARG, 0, "", kind
    if kind in _BINARY_ARGS:
        return op.name, handler, *_BINARY_ARGS[kind], kind
    return op.name, handler, _TEXT, 0, "", kind


def _push_arg(m: Machine, arg: Any) -> None:
    m.stack.append(arg)


def _ignore(m: Machine, arg: Any) -> None:
    pass


def _unsupported(name: str) -> Callable[[Machine, Any], None]:
    def handler(m: Machine, arg: Any) -> None:
        raise PickleError(f"unsupported opcode {name}", truncated=False, unproven=True)

    return handler


_TABLE = [_table_entry(_OPCODES[code]) if code in _OPCODES else None for code in range(256)]
