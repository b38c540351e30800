"""A restricted pickle interpreter: it never executes a pickle and never imports anything named in it.

Opcodes are parsed by `pickletools.genops` (a pure parser) and interpreted here over stub objects: a GLOBAL
becomes a `Global` holding "module.qualname", calling it (REDUCE, NEWOBJ, INST, OBJ) becomes a `Call`, and
torch's tensor rebuild functions applied to persistent-id storages become `TensorRef` records. Every global
the stream names is collected, including names assembled for STACK_GLOBAL from memoised strings.
"""

from __future__ import annotations

import io
import pickletools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ckaudit.reader.dtypes import ITEMSIZE, contiguous_stride, dtype_from_global, storage_dtype

# Opcodes torch.load(weights_only=True) interprets; any other makes it refuse the file.
WEIGHTS_ONLY_OPCODES = frozenset(
    {
        "GLOBAL",
        "NEWOBJ",
        "REDUCE",
        "BUILD",
        "APPEND",
        "APPENDS",
        "SETITEM",
        "SETITEMS",
        "MARK",
        "TUPLE",
        "TUPLE1",
        "TUPLE2",
        "TUPLE3",
        "NONE",
        "NEWFALSE",
        "NEWTRUE",
        "EMPTY_TUPLE",
        "EMPTY_LIST",
        "EMPTY_DICT",
        "EMPTY_SET",
        "BININT",
        "BININT1",
        "BININT2",
        "BINFLOAT",
        "BINUNICODE",
        "SHORT_BINSTRING",
        "BINPERSID",
        "BINGET",
        "LONG_BINGET",
        "BINPUT",
        "LONG_BINPUT",
        "LONG1",
        "PROTO",
        "STOP",
    }
)


class PickleError(Exception):
    """The stream is not a well-formed pickle; `truncated` when it ended early.

    `globals` and `calls` are what the stream named and called before the error: a payload placed ahead of
    a deliberate parse error must still be reported.
    """

    def __init__(
        self,
        message: str,
        *,
        truncated: bool,
        globals: frozenset[str] = frozenset(),
        calls: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(message)
        self.truncated = truncated
        self.globals = globals
        self.calls = calls


@dataclass(eq=False)
class Global:
    name: str  # "module.qualname"


@dataclass(eq=False)
class Call:
    """The result of calling a stub: func(*args), then BUILD(state) and appended/set items."""

    func: Any
    args: Any
    state: Any = None
    items: list[Any] = field(default_factory=list)

    @property
    def func_name(self) -> str | None:
        return self.func.name if isinstance(self.func, Global) else None


@dataclass(eq=False)
class StorageRef:
    key: str
    dtype: str
    location: str
    nbytes: int
    type_name: str


@dataclass(eq=False)
class TensorRef:
    dtype: str
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int
    storage: StorageRef | None
    device: str
    parameter: bool = False
    quantized: bool = False


class StubDict(dict[Any, Any]):
    """A dict or OrderedDict from the stream; `metadata` keeps OrderedDict._metadata (set by BUILD)."""

    def __init__(self, ordered: bool = False) -> None:
        super().__init__()
        self.ordered = ordered
        self.metadata: Any = None

    __hash__ = object.__hash__  # type: ignore[assignment]  # stubs are keys by identity, like objects


class _Mark:
    pass


_MARK = _Mark()
PersistentLoad = Callable[[Any], Any]


@dataclass
class PickleResult:
    root: Any
    globals: set[str]
    end: int  # offset just past STOP
    opcodes: set[str]  # every opcode name used
    calls: set[str] = field(default_factory=set)  # globals called or instantiated (REDUCE, NEWOBJ, INST, OBJ)


def walk_pickle(
    stream: BinaryIO, size: int, *, persistent_load: PersistentLoad | None = None
) -> PickleResult:
    """Interpret one pickle from the stream's position; `size` is where the stream ends (to tell truncation).

    Raises PickleError on malformed or truncated input; the stream is left just past STOP.
    """
    machine = _Machine(persistent_load)
    try:
        for opcode, arg, _pos in pickletools.genops(stream):
            machine.step(opcode.name, arg)
    except PickleError as exc:
        raise machine.error(str(exc), truncated=exc.truncated) from None
    except RecursionError:
        raise machine.error("pickle nested too deeply", truncated=False) from None
    except Exception as exc:  # genops: ValueError; interpretation: IndexError, TypeError, ...
        at_end = stream.tell() >= size
        raise machine.error(f"malformed pickle at byte {stream.tell()}: {exc}", truncated=at_end) from None
    if not machine.stopped:
        raise machine.error("pickle ended before STOP", truncated=True)
    return PickleResult(machine.result, machine.globals, stream.tell(), machine.opcodes, machine.calls)


def walk_bytes(data: bytes, *, persistent_load: PersistentLoad | None = None) -> PickleResult:
    """walk_pickle over an in-memory pickle with a table-driven decoder (the cost is per opcode)."""
    machine = _Machine(persistent_load)
    state = _DecodeState()
    try:
        _run_table(machine, data, state)
    except PickleError as exc:
        raise machine.error(str(exc), truncated=exc.truncated) from None
    except RecursionError:
        raise machine.error("pickle nested too deeply", truncated=False) from None
    except Exception as exc:
        at_end = state.pos >= len(data)
        raise machine.error(f"malformed pickle at byte {state.pos}: {exc}", truncated=at_end) from None
    machine.opcodes = {_OPCODES[code].name for code in state.seen}
    return PickleResult(machine.result, machine.globals, state.pos, machine.opcodes, machine.calls)


class _DecodeState:
    def __init__(self) -> None:
        self.pos = 0
        self.seen: set[int] = set()


_FIXED_ARGS = {
    "uint1": (1, "<B"),
    "uint2": (2, "<H"),
    "int4": (4, "<i"),
    "uint4": (4, "<I"),
    "uint8": (8, "<Q"),
    "float8": (8, ">d"),
}
_SIZED_ARGS = {
    "string1": (1, "<B"),
    "bytes1": (1, "<B"),
    "unicodestring1": (1, "<B"),
    "long1": (1, "<B"),
    "string4": (4, "<i"),
    "bytes4": (4, "<I"),
    "unicodestring4": (4, "<I"),
    "long4": (4, "<i"),
    "bytes8": (8, "<Q"),
    "unicodestring8": (8, "<Q"),
    "bytearray8": (8, "<Q"),
}
_OPCODES = {op.code.encode("latin-1")[0]: op for op in pickletools.opcodes}
_NO_ARG, _FIXED, _SIZED, _TEXT = range(4)


def _convert_sized(kind: str, raw: bytes) -> Any:
    if kind.startswith("unicode"):
        return raw.decode("utf-8", "surrogatepass")
    if kind.startswith("long"):
        return int.from_bytes(raw, "little", signed=True)
    return raw.decode("latin-1") if kind.startswith("string") else raw


def _run_table(machine: _Machine, data: bytes, state: _DecodeState) -> None:
    """The decode+interpret loop, kept flat: one table lookup per opcode, arguments read in place."""
    size, table, unpack_from, seen = len(data), _TABLE, struct.unpack_from, state.seen
    pos = 0
    while not machine.stopped:
        if pos >= size:
            state.pos = pos
            raise PickleError("pickle ended before STOP", truncated=True)
        code = data[pos]
        entry = table[code]
        if entry is None:
            state.pos = pos
            raise PickleError(f"unknown opcode {code:#04x} at byte {pos}", truncated=False)
        pos += 1
        name, handler, mode, width, fmt, kind = entry
        seen.add(code)
        if mode == _NO_ARG:
            arg = None
        elif mode == _TEXT:
            stream = io.BytesIO(data)
            stream.seek(pos)
            arg = _OPCODES[code].arg.reader(stream)  # type: ignore[union-attr]
            pos = stream.tell()
        else:
            if pos + width > size:
                state.pos = size
                raise PickleError(f"{name} argument cut off", truncated=True)
            arg = unpack_from(fmt, data, pos)[0]
            pos += width
            if mode == _SIZED:
                if arg < 0 or pos + arg > size:
                    state.pos = size
                    raise PickleError(f"{name} argument runs past the end", truncated=arg >= 0)
                raw = data[pos : pos + arg]
                pos += arg
                arg = _convert_sized(kind, raw)
        state.pos = pos
        handler(machine, arg)


def _table_entry(
    op: pickletools.OpcodeInfo,
) -> tuple[str, Callable[[_Machine, Any], None], int, int, str, str]:
    kind = op.arg.name if op.arg is not None else ""
    if op.name in _HANDLERS:
        handler = _HANDLERS[op.name]
    elif op.name in _PUSH_ARG:
        handler = _push_arg
    elif op.name in _IGNORED:
        handler = _ignore
    else:
        handler = _unsupported(op.name)
    if not kind:
        return op.name, handler, _NO_ARG, 0, "", kind
    if kind in _FIXED_ARGS:
        return op.name, handler, _FIXED, *_FIXED_ARGS[kind], kind
    if kind in _SIZED_ARGS:
        return op.name, handler, _SIZED, *_SIZED_ARGS[kind], kind
    return op.name, handler, _TEXT, 0, "", kind


class _Machine:
    def __init__(self, persistent_load: PersistentLoad | None) -> None:
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.globals: set[str] = set()
        self.calls: set[str] = set()
        self.opcodes: set[str] = set()
        self.persistent_load = persistent_load
        self.stopped = False
        self.result: Any = None

    def step(self, name: str, arg: Any) -> None:
        if self.stopped:
            raise PickleError("data after STOP", truncated=False)
        self.opcodes.add(name)
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, arg)
        elif name in _PUSH_ARG:
            self.stack.append(arg)
        elif name not in _IGNORED:
            raise PickleError(f"unsupported opcode {name}", truncated=False)

    # -- stack helpers --
    def pop_mark(self) -> list[Any]:
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def error(self, message: str, *, truncated: bool) -> PickleError:
        """A PickleError that keeps what was named and called before it."""
        return PickleError(
            message, truncated=truncated, globals=frozenset(self.globals), calls=frozenset(self.calls)
        )

    def note_call(self, func: Any) -> None:
        """Record that the stream calls or instantiates `func`; a callee that is no Global is dynamic."""
        self.calls.add(func.name if isinstance(func, Global) else "<dynamic>.<unresolved>")

    def push_global(self, name: str) -> None:
        self.globals.add(name)
        self.stack.append(Global(name))

    def call(self, func: Any, args: Any) -> Any:
        self.note_call(func)
        name = func.name if isinstance(func, Global) else None
        if name == "numpy.dtype" and isinstance(args, tuple) and args and isinstance(args[0], str):
            # BUILD then checks the type of the dtype object, a class the stream never names (numpy >= 1.25)
            implied = numpy_dtype_class(args[0])
            if implied:
                self.globals.add(implied)
        if name is not None:
            built = _call_known(name, args)
            if built is not None:
                return built
        return Call(func, args)


def _op_mark(m: _Machine, _arg: Any) -> None:
    m.metastack.append(m.stack)
    m.stack = []


def _op_stop(m: _Machine, _arg: Any) -> None:
    m.result = m.stack.pop()
    m.stopped = True


def _op_pop(m: _Machine, _arg: Any) -> None:
    if m.stack:
        m.stack.pop()
    else:
        m.pop_mark()


def _op_pop_mark(m: _Machine, _arg: Any) -> None:
    m.pop_mark()


def _op_dup(m: _Machine, _arg: Any) -> None:
    m.stack.append(m.stack[-1])


def _op_tuple(m: _Machine, _arg: Any) -> None:
    items = tuple(m.pop_mark())  # pop first: m.stack is replaced by the popped frame
    m.stack.append(items)


def _tuple_n(n: int) -> Callable[[_Machine, Any], None]:
    def handler(m: _Machine, _arg: Any) -> None:
        if len(m.stack) < n:
            raise PickleError("stack underflow", truncated=False)
        items = tuple(m.stack[len(m.stack) - n :])
        del m.stack[len(m.stack) - n :]
        m.stack.append(items)

    return handler


def _op_list(m: _Machine, _arg: Any) -> None:
    items = m.pop_mark()
    m.stack.append(items)


def _op_dict(m: _Machine, _arg: Any) -> None:
    items = m.pop_mark()
    result = StubDict()
    for i in range(0, len(items) - 1, 2):
        result[items[i]] = items[i + 1]
    m.stack.append(result)


def _op_frozenset(m: _Machine, _arg: Any) -> None:
    items = frozenset(m.pop_mark())
    m.stack.append(items)


def _add_items(target: Any, items: list[Any]) -> None:
    if isinstance(target, list):
        target.extend(items)
    elif isinstance(target, set):
        target.update(items)
    elif isinstance(target, Call):
        target.items.extend(items)
    else:
        raise PickleError(f"APPEND to {type(target).__name__}", truncated=False)


def _op_append(m: _Machine, _arg: Any) -> None:
    value = m.stack.pop()
    _add_items(m.stack[-1], [value])


def _op_appends(m: _Machine, _arg: Any) -> None:
    items = m.pop_mark()
    _add_items(m.stack[-1], items)


def _set_items(target: Any, items: list[Any]) -> None:
    if isinstance(target, dict):
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]
    elif isinstance(target, Call):
        target.items.extend(zip(items[::2], items[1::2], strict=False))
    else:
        raise PickleError(f"SETITEM on {type(target).__name__}", truncated=False)


def _op_setitem(m: _Machine, _arg: Any) -> None:
    value = m.stack.pop()
    key = m.stack.pop()
    _set_items(m.stack[-1], [key, value])


def _op_setitems(m: _Machine, _arg: Any) -> None:
    items = m.pop_mark()
    _set_items(m.stack[-1], items)


def _op_additems(m: _Machine, _arg: Any) -> None:
    items = m.pop_mark()
    _add_items(m.stack[-1], items)


def _op_get(m: _Machine, arg: Any) -> None:
    if arg not in m.memo:
        raise PickleError(f"memo key {arg} read before it was written", truncated=False)
    m.stack.append(m.memo[arg])


def _op_put(m: _Machine, arg: Any) -> None:
    m.memo[arg] = m.stack[-1]


def _op_memoize(m: _Machine, _arg: Any) -> None:
    m.memo[len(m.memo)] = m.stack[-1]


def _op_global(m: _Machine, arg: Any) -> None:
    module, _, name = str(arg).partition(" ")
    m.push_global(f"{module}.{name}")


def _op_stack_global(m: _Machine, _arg: Any) -> None:
    name = m.stack.pop()
    module = m.stack.pop()
    if isinstance(module, str) and isinstance(name, str):
        m.push_global(f"{module}.{name}")
    else:  # names computed at load time cannot be resolved statically
        m.push_global("<dynamic>.<unresolved>")


def _op_ext(m: _Machine, arg: Any) -> None:
    m.push_global(f"<copyreg-extension>.{arg}")


def _op_reduce(m: _Machine, _arg: Any) -> None:
    args = m.stack.pop()
    func = m.stack.pop()
    m.stack.append(m.call(func, args))


def _op_newobj(m: _Machine, _arg: Any) -> None:
    args = m.stack.pop()
    cls = m.stack.pop()
    m.note_call(cls)
    m.stack.append(Call(cls, args))


def _op_newobj_ex(m: _Machine, _arg: Any) -> None:
    kwargs = m.stack.pop()
    args = m.stack.pop()
    cls = m.stack.pop()
    m.note_call(cls)
    m.stack.append(Call(cls, (args, kwargs)))


def _op_inst(m: _Machine, arg: Any) -> None:
    module, _, name = str(arg).partition(" ")
    m.globals.add(f"{module}.{name}")
    m.calls.add(f"{module}.{name}")
    args = tuple(m.pop_mark())
    m.stack.append(Call(Global(f"{module}.{name}"), args))


def _op_obj(m: _Machine, _arg: Any) -> None:
    items = m.pop_mark()
    if not items:
        raise PickleError("OBJ without a class", truncated=False)
    m.note_call(items[0])
    m.stack.append(Call(items[0], tuple(items[1:])))


def _op_build(m: _Machine, _arg: Any) -> None:
    state = m.stack.pop()
    target = m.stack[-1]
    if isinstance(target, StubDict):
        if isinstance(state, dict) and "_metadata" in state:
            target.metadata = state["_metadata"]
    elif isinstance(target, Call):
        target.state = state


def _op_persid(m: _Machine, arg: Any) -> None:
    m.stack.append(m.persistent_load(arg) if m.persistent_load else Call(Global("<persistent_id>"), (arg,)))


def _op_binpersid(m: _Machine, _arg: Any) -> None:
    _op_persid(m, m.stack.pop())


def _op_empty(factory: Callable[[], Any]) -> Callable[[_Machine, Any], None]:
    def handler(m: _Machine, _arg: Any) -> None:
        m.stack.append(factory())

    return handler


_HANDLERS: dict[str, Callable[[_Machine, Any], None]] = {
    "MARK": _op_mark,
    "STOP": _op_stop,
    "POP": _op_pop,
    "POP_MARK": _op_pop_mark,
    "DUP": _op_dup,
    "NONE": lambda m, a: m.stack.append(None),
    "NEWTRUE": lambda m, a: m.stack.append(True),
    "NEWFALSE": lambda m, a: m.stack.append(False),
    "TUPLE": _op_tuple,
    "EMPTY_TUPLE": _op_empty(tuple),
    "TUPLE1": _tuple_n(1),
    "TUPLE2": _tuple_n(2),
    "TUPLE3": _tuple_n(3),
    "LIST": _op_list,
    "EMPTY_LIST": _op_empty(list),
    "DICT": _op_dict,
    "EMPTY_DICT": _op_empty(StubDict),
    "EMPTY_SET": _op_empty(set),
    "FROZENSET": _op_frozenset,
    "APPEND": _op_append,
    "APPENDS": _op_appends,
    "SETITEM": _op_setitem,
    "SETITEMS": _op_setitems,
    "ADDITEMS": _op_additems,
    "GET": _op_get,
    "BINGET": _op_get,
    "LONG_BINGET": _op_get,
    "PUT": _op_put,
    "BINPUT": _op_put,
    "LONG_BINPUT": _op_put,
    "MEMOIZE": _op_memoize,
    "GLOBAL": _op_global,
    "STACK_GLOBAL": _op_stack_global,
    "EXT1": _op_ext,
    "EXT2": _op_ext,
    "EXT4": _op_ext,
    "REDUCE": _op_reduce,
    "NEWOBJ": _op_newobj,
    "NEWOBJ_EX": _op_newobj_ex,
    "INST": _op_inst,
    "OBJ": _op_obj,
    "BUILD": _op_build,
    "PERSID": _op_persid,
    "BINPERSID": _op_binpersid,
    "BYTEARRAY8": lambda m, a: m.stack.append(bytearray(a)),
    "NEXT_BUFFER": lambda m, a: m.stack.append(Call(Global("<out-of-band-buffer>"), ())),
}
_PUSH_ARG = frozenset(
    {
        "INT",
        "BININT",
        "BININT1",
        "BININT2",
        "LONG",
        "LONG1",
        "LONG4",
        "FLOAT",
        "BINFLOAT",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "BINBYTES",
        "SHORT_BINBYTES",
        "BINBYTES8",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
    }
)
_IGNORED = frozenset({"PROTO", "FRAME", "READONLY_BUFFER"})


def _push_arg(m: _Machine, arg: Any) -> None:
    m.stack.append(arg)


def _ignore(m: _Machine, arg: Any) -> None:
    pass


def _unsupported(name: str) -> Callable[[_Machine, Any], None]:
    def handler(m: _Machine, arg: Any) -> None:
        raise PickleError(f"unsupported opcode {name}", truncated=False)

    return handler


_TABLE = [_table_entry(_OPCODES[code]) if code in _OPCODES else None for code in range(256)]


_NUMPY_DTYPE_CLASSES = {
    "f": "Float",
    "i": "Int",
    "u": "UInt",
    "c": "Complex",
    "b": "Bool",
    "O": "Object",
    "U": "Str",
    "S": "Bytes",
    "M": "DateTime",
    "m": "TimeDelta",
    "V": "Void",
}


def numpy_dtype_class(code: str) -> str | None:
    """'f8' -> 'numpy.dtypes.Float64DType' (the class numpy.dtype('f8') has)."""
    kind, digits = code[:1], code[1:]
    base = _NUMPY_DTYPE_CLASSES.get(kind)
    if base is None:
        return None
    if kind in "fiuc" and digits.isdigit():
        return f"numpy.dtypes.{base}{int(digits) * 8}DType"
    if kind in "bOUSV":
        return f"numpy.dtypes.{base}DType"
    return f"numpy.dtypes.{base}64DType"


# -- torch's rebuild functions, interpreted -------------------------------------------------------------


def _ints(value: Any) -> tuple[int, ...]:
    if isinstance(value, Call) and value.func_name == "torch.Size" and value.args:
        value = value.args[0]
    if not isinstance(value, (tuple, list)) or not all(type(v) is int for v in value):
        raise PickleError(f"tensor size/stride is not a tuple of ints: {value!r:.80}", truncated=False)
    return tuple(value)


def _from_storage(args: tuple[Any, ...], dtype: str | None = None, quantized: bool = False) -> TensorRef:
    storage, offset = args[0], args[1]
    if not isinstance(storage, StorageRef):
        raise PickleError("tensor rebuilt from something that is not a storage", truncated=False)
    if type(offset) is not int:
        raise PickleError("tensor storage offset is not an int", truncated=False)
    shape = _ints(args[2])
    stride = _ints(args[3]) if len(args) > 3 else contiguous_stride(shape)
    return TensorRef(
        dtype or storage.dtype, shape, stride, offset, storage, storage.location, quantized=quantized
    )


def _dtype_arg(value: Any) -> str:
    dtype = dtype_from_global(value.name) if isinstance(value, Global) else None
    if dtype is None:
        raise PickleError(f"not a torch dtype: {value!r:.80}", truncated=False)
    return dtype


def _rebuild_parameter(args: tuple[Any, ...]) -> TensorRef | None:
    data = args[0] if args else None
    if isinstance(data, TensorRef):
        data.parameter = True
        return data
    return None


def _rebuild_from_type(args: tuple[Any, ...]) -> TensorRef | None:
    func, _new_type, inner = args[0], args[1], args[2]
    if isinstance(func, Global) and isinstance(inner, tuple):
        return _call_known(func.name, inner)
    return None


def _rebuild_meta(args: tuple[Any, ...]) -> TensorRef:
    dtype, shape = _dtype_arg(args[0]), _ints(args[1])
    return TensorRef(dtype, shape, _ints(args[2]), 0, None, "meta")


def _rebuild_wrapper_subclass(args: tuple[Any, ...]) -> TensorRef:
    dtype, shape, stride, offset = _dtype_arg(args[1]), _ints(args[2]), _ints(args[3]), args[4]
    device = args[6].args[0] if isinstance(args[6], Call) and args[6].args else "cpu"
    return TensorRef(dtype, shape, stride, int(offset), None, str(device))


def _rebuild_on_device(args: tuple[Any, ...]) -> TensorRef | None:
    data = args[0]
    if isinstance(data, TensorRef):
        data.dtype = _dtype_arg(args[1])
        return data
    return None


_REBUILDERS: dict[str, Callable[[tuple[Any, ...]], TensorRef | None]] = {
    "torch._utils._rebuild_tensor": _from_storage,
    "torch._utils._rebuild_tensor_v2": _from_storage,
    "torch._utils._rebuild_tensor_v3": lambda a: _from_storage(a, _dtype_arg(a[6])),
    "torch._utils._rebuild_qtensor": lambda a: _from_storage(a, quantized=True),
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type,
    "torch._tensor._rebuild_from_type": _rebuild_from_type,
    "torch._utils._rebuild_meta_tensor_no_storage": _rebuild_meta,
    "torch._utils._rebuild_wrapper_subclass": _rebuild_wrapper_subclass,
    "torch._utils._rebuild_device_tensor_from_cpu_tensor": _rebuild_on_device,
}


def _call_known(name: str, args: Any) -> Any:
    """Interpret the few callables whose result matters for the tree; None means 'keep a Call stub'."""
    if name == "collections.OrderedDict" and args == ():
        return StubDict(ordered=True)
    rebuild = _REBUILDERS.get(name)
    if rebuild is None or not isinstance(args, tuple):
        return None
    try:
        return rebuild(args)
    except IndexError:
        raise PickleError(f"{name} called with too few arguments", truncated=False) from None


def torch_storage(pid: Any) -> StorageRef:
    """Persistent id ('storage', storage type, key, location, numel[, view metadata]) -> StorageRef."""
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise PickleError(f"unknown persistent id {pid!r:.80}", truncated=False)
    storage_type, key, location, numel = pid[1], pid[2], pid[3], pid[4]
    type_name = storage_type.name if isinstance(storage_type, Global) else ""
    dtype = storage_dtype(type_name)
    if dtype is None or not isinstance(key, str) or not isinstance(location, str) or type(numel) is not int:
        raise PickleError(f"malformed storage persistent id {pid!r:.120}", truncated=False)
    return StorageRef(key, dtype, location, numel * ITEMSIZE[dtype], type_name)
