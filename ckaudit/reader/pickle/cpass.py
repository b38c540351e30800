"""The C pass: CPython's own unpickler reads the common pickle, the walker's Machine does the rest.

A checkpoint of many small tensors is a long data.pkl of a few opcodes, and the walker's per-opcode Python
cost is most of `inspect`'s time. Here the C unpickler (the reader `torch.load(weights_only=False)` itself
uses) decodes the stream, while `find_class` and REDUCE hand every name and call to the same `Machine` the
walker uses: globals, calls and tensor records come from the same code either way.

The pass is taken only where it provably gives what the walker gives, else it returns None and the walker
reads the stream:
- a census (a byte-exact skip over the opcodes, nothing interpreted) finds only `C_PASS_OPCODES`: data,
  tuples and dicts, GLOBAL, REDUCE, BUILD and BINPERSID (no list: the walker models SETITEM on a list
  differently from C), ending at a STOP that is the last byte (trailing pickles are the walker's to audit);
- every global is a torch rebuild function, storage class or dtype, or OrderedDict, each call of which the
  Machine turns into a record (a call it would keep as a `Call` stub declines);
- anything the C unpickler would do to a value that the walker models otherwise (BUILD on a tensor record
  or a global) and any error decline too: the walker then reports the error in its own words.
"""

from __future__ import annotations

import io
import pickle
import pickletools
import re
import struct
from typing import Any

from ckaudit.reader.dtypes import dtype_from_global, storage_dtype
from ckaudit.reader.pickle.argument_callers import ARGUMENT_CALLERS
from ckaudit.reader.pickle.machine import Machine
from ckaudit.reader.pickle.stubs import (
    Call,
    Global,
    PersistentLoad,
    PickleResult,
    StorageRef,
    StubDict,
    TensorRef,
)
from ckaudit.reader.pickle.torch_rebuild import REBUILDERS
from ckaudit.reader.pickle.weights_only import WEIGHTS_ONLY_OPCODES

C_PASS_OPCODES = frozenset(
    {
        "PROTO",
        "STOP",
        "MARK",
        "NONE",
        "NEWTRUE",
        "NEWFALSE",
        "EMPTY_TUPLE",
        "TUPLE",
        "TUPLE1",
        "TUPLE2",
        "TUPLE3",
        "EMPTY_DICT",
        "SETITEM",
        "SETITEMS",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG1",
        "BINFLOAT",
        "BINUNICODE",
        "BINGET",
        "LONG_BINGET",
        "BINPUT",
        "LONG_BINPUT",
        "GLOBAL",
        "REDUCE",
        "BUILD",
        "BINPERSID",
    }
)
_CALLABLES = frozenset(name for name in REBUILDERS if name not in ARGUMENT_CALLERS) | {
    "collections.OrderedDict"
}
assert C_PASS_OPCODES <= WEIGHTS_ONLY_OPCODES  # so a stream the census admits refuses nothing

# The census: runs of the opcodes with fixed-width arguments, matched by one regular expression at C speed
# (possessive, so it never backtracks); the few with a length or lines (BINUNICODE, LONG1, GLOBAL) and STOP
# are stepped over between runs. LONG_BINPUT's index must stay below 2**22: C sizes its memo array by it.
_STEPPED = {"BINUNICODE": 0x58, "LONG1": 0x8A, "GLOBAL": 0x63, "STOP": 0x2E, "LONG_BINPUT": 0x72}


def _fixed_run() -> re.Pattern[bytes]:
    by_width: dict[int, list[bytes]] = {}
    for op in pickletools.opcodes:
        if op.name in C_PASS_OPCODES and op.name not in _STEPPED:
            width = op.arg.n if op.arg is not None else 0
            by_width.setdefault(width, []).append(re.escape(op.code.encode("latin-1")))
    tokens = [
        b"[" + b"".join(codes) + b"]" + (b"[\\s\\S]{%d}" % width if width else b"")
        for width, codes in sorted(by_width.items())
    ]
    tokens.append(rb"r[\s\S]{2}[\x00-\x3f]\x00")  # LONG_BINPUT below 2**22
    return re.compile(b"(?:" + b"|".join(tokens) + b")*+")


_FIXED_RUN = _fixed_run()


class _Declined(Exception):
    """The C pass cannot vouch for this stream; the walker reads it."""


def c_pass(data: bytes, persistent_load: PersistentLoad | None) -> PickleResult | None:
    """The walker's result for `data`, computed by the C unpickler; None where the walker must read it."""
    if persistent_load is None or not _census(data):
        return None
    machine = Machine(persistent_load)
    try:
        root = _Unpickler(io.BytesIO(data), machine).load()
        root = _ToWalkerTypes().convert(root)
    except (Exception, RecursionError):  # _Declined, the C unpickler's errors, the Machine's: the walker's
        return None
    return PickleResult(root, machine.globals, len(data), set(), machine.calls)


def _census(data: bytes) -> bool:
    """Whether `data` is one pickle of C-pass opcodes only that ends at its last byte, skipped byte-exactly
    as C reads it."""
    size, match, unpack_from = len(data), _FIXED_RUN.match, struct.unpack_from
    pos = 0
    try:
        while True:
            pos = match(data, pos).end()  # type: ignore[union-attr]  # `*+` always matches
            code = data[pos]
            if code == _STEPPED["BINUNICODE"]:
                pos += 5 + unpack_from("<I", data, pos + 1)[0]
            elif code == _STEPPED["LONG1"]:
                pos += 2 + data[pos + 1]
            elif code == _STEPPED["GLOBAL"]:
                pos = data.index(b"\n", data.index(b"\n", pos + 1) + 1) + 1
            else:
                return code == _STEPPED["STOP"] and pos + 1 == size
    except (ValueError, IndexError, struct.error):  # a GLOBAL line without its newline, an argument cut off
        return False


def _known_global(name: str) -> bool:
    return name in _CALLABLES or storage_dtype(name) is not None or dtype_from_global(name) is not None


class _CGlobal(Global):
    """A GLOBAL as the C unpickler holds it: calling it (REDUCE) is the Machine's call."""

    def __init__(self, name: str, machine: Machine) -> None:
        super().__init__(name)
        self.machine = machine

    def __call__(self, *args: Any) -> Any:
        built = self.machine.call(self, args)
        if isinstance(built, Call):
            raise _Declined(f"{self.name} called with arguments the walker keeps as a stub")
        return built

    def __setstate__(self, state: Any) -> None:
        raise _Declined("BUILD on a global")  # the walker records it as a call of __setstate__


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, machine: Machine) -> None:
        super().__init__(file)
        self.machine = machine
        # the C unpickler calls an instance attribute directly (one Python frame less per storage)
        self.persistent_load = machine.persistent_load  # type: ignore[assignment]  # c_pass checks not None

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        if not _known_global(qualified):
            raise _Declined(qualified)
        self.machine.globals.add(qualified)
        return _CGlobal(qualified, self.machine)


# values the walker holds as the C unpickler does: plain data, and the records the Machine built (shared as
# they are, like every value of the C result)
_AS_IS = frozenset({str, int, float, bool, type(None), TensorRef, StorageRef})


class _ToWalkerTypes:
    """The C result in the walker's types: a dict is a StubDict, a global a plain Global (sharing kept)."""

    def __init__(self) -> None:
        self.done: dict[int, Any] = {}

    def convert(self, value: Any) -> Any:
        kind = type(value)
        if kind in _AS_IS:
            return value
        known = self.done.get(id(value))
        if known is not None:
            return known
        if kind is dict or kind is StubDict:
            return self._dict(value)
        if kind is tuple:
            converted = tuple(self.convert(item) for item in value)
            return self.done.setdefault(id(value), converted)
        if kind is _CGlobal:
            return self.done.setdefault(id(value), Global(value.name))
        return value  # records the Machine built in a type _AS_IS does not list

    def _dict(self, value: dict[Any, Any]) -> StubDict:
        target = value if type(value) is StubDict else StubDict()
        self.done[id(value)] = target
        items = [(self.convert(k), self.convert(v)) for k, v in value.items()]
        target.clear()
        target.update(items)
        if isinstance(value, StubDict):
            target.metadata = self.convert(value.metadata)
        return target
