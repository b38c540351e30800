"""The restricted pickle machine: each opcode's effect on a stack of stubs, never executing anything.

A GLOBAL becomes a `Global` holding "module.qualname", calling it (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ)
becomes a `Call` (or a torch tensor record, see torch_rebuild). Every global the stream names is collected in
`globals`, every one it calls or instantiates in `calls`. The decoders feed opcodes in; see decoders.
"""

from __future__ import annotations

from collections.abc import Callable
from pickle import HIGHEST_PROTOCOL
from typing import Any

from ckaudit.reader.pickle.argument_callers import SPECIAL_CALLS, CallAudit
from ckaudit.reader.pickle.stubs import (
    DYNAMIC_CALLEE,
    Call,
    Global,
    PersistentLoad,
    PickleError,
    StubDict,
)
from ckaudit.reader.pickle.torch_rebuild import call_known
from ckaudit.reader.pickle.weights_only import append_refusal, setitem_refusal


class Machine(CallAudit):
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
        handler = HANDLERS.get(name)
        if handler is not None:
            handler(self, arg)
        elif name in PUSH_ARG:
            self.stack.append(arg)
        elif name not in IGNORED:
            raise PickleError(f"unsupported opcode {name}", truncated=False, unproven=True)

    # -- stack helpers --
    def pop_mark(self) -> list[Any]:
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def error(self, message: str, *, truncated: bool, unproven: bool = False) -> PickleError:
        """A PickleError that keeps what was named and called before it."""
        return PickleError(
            message,
            truncated=truncated,
            unproven=unproven,
            globals=frozenset(self.globals),
            calls=frozenset(self.calls),
        )

    def push_global(self, name: str) -> None:
        self.globals.add(name)
        self.stack.append(Global(name))

    def call(self, func: Any, args: Any) -> Any:
        self.note_call(func)
        name = func.name if isinstance(func, Global) else None
        if name in SPECIAL_CALLS:  # one set lookup on the common path (tensor rebuilds, OrderedDict)
            self.special_call(name, args)
        if name is not None:
            built = call_known(name, args)
            if built is not None:
                return built
        return Call(func, args)


def _op_proto(m: Machine, arg: Any) -> None:
    if not 0 <= arg <= HIGHEST_PROTOCOL:  # CPython refuses it: "unsupported pickle protocol"
        raise PickleError(f"unsupported pickle protocol {arg}", truncated=False)


def _op_mark(m: Machine, _arg: Any) -> None:
    m.metastack.append(m.stack)
    m.stack = []


def _op_stop(m: Machine, _arg: Any) -> None:
    m.result = m.stack.pop()
    m.stopped = True


def _op_pop(m: Machine, _arg: Any) -> None:
    if m.stack:
        m.stack.pop()
    else:
        m.pop_mark()


def _op_pop_mark(m: Machine, _arg: Any) -> None:
    m.pop_mark()


def _op_dup(m: Machine, _arg: Any) -> None:
    m.stack.append(m.stack[-1])


def _op_tuple(m: Machine, _arg: Any) -> None:
    items = tuple(m.pop_mark())  # pop first: m.stack is replaced by the popped frame
    m.stack.append(items)


def _tuple_n(n: int) -> Callable[[Machine, Any], None]:
    def handler(m: Machine, _arg: Any) -> None:
        if len(m.stack) < n:
            raise PickleError("stack underflow", truncated=False)
        items = tuple(m.stack[len(m.stack) - n :])
        del m.stack[len(m.stack) - n :]
        m.stack.append(items)

    return handler


def _op_list(m: Machine, _arg: Any) -> None:
    items = m.pop_mark()
    m.stack.append(items)


def _op_dict(m: Machine, _arg: Any) -> None:
    items = m.pop_mark()
    result = StubDict()
    for i in range(0, len(items) - 1, 2):
        result[items[i]] = items[i + 1]
    m.stack.append(result)


def _op_frozenset(m: Machine, _arg: Any) -> None:
    items = frozenset(m.pop_mark())
    m.stack.append(items)


def _cannot_follow(what: str, target: Any) -> PickleError:
    """The C unpickler calls the target's own method here (extend, append, __setitem__, add): on a value
    the walker does not model, what runs cannot be proven inert."""
    shown = target.name if isinstance(target, Global) else type(target).__name__
    return PickleError(f"{what} on {shown}", truncated=False, unproven=True)


def _add_items(m: Machine, target: Any, items: list[Any], what: str = "APPENDS") -> None:
    refusal = append_refusal(target)
    if refusal:
        m.opcodes.add(refusal)
    if not items:
        return  # do_append/load_additems return before touching the target
    if isinstance(target, list):
        target.extend(items)
    elif isinstance(target, set):
        target.update(items)
    elif isinstance(target, Call):
        target.items.extend(items)
    elif not isinstance(target, bytearray):  # bytearray.extend takes ints: data only
        raise _cannot_follow(what, target)


def _op_append(m: Machine, _arg: Any) -> None:
    value = m.stack.pop()
    _add_items(m, m.stack[-1], [value])


def _op_appends(m: Machine, _arg: Any) -> None:
    items = m.pop_mark()
    _add_items(m, m.stack[-1], items)


def _set_items(m: Machine, target: Any, items: list[Any]) -> None:
    refusal = setitem_refusal(target)
    if refusal:
        m.opcodes.add(refusal)
    if not items:
        return  # do_setitems returns before touching the target
    if isinstance(target, dict):
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]
    elif isinstance(target, Call):
        target.items.extend(zip(items[::2], items[1::2], strict=False))
    elif isinstance(target, (list, bytearray)):  # list[i] = v: data only; kept for what it holds
        if isinstance(target, list):
            target.extend(items[1::2])
    else:
        raise _cannot_follow("SETITEMS", target)


def _op_setitem(m: Machine, _arg: Any) -> None:
    value = m.stack.pop()
    key = m.stack.pop()
    _set_items(m, m.stack[-1], [key, value])


def _op_setitems(m: Machine, _arg: Any) -> None:
    items = m.pop_mark()
    _set_items(m, m.stack[-1], items)


def _op_additems(m: Machine, _arg: Any) -> None:
    items = m.pop_mark()
    _add_items(m, m.stack[-1], items, "ADDITEMS")


def _op_get(m: Machine, arg: Any) -> None:
    if arg not in m.memo:
        raise PickleError(f"memo key {arg} read before it was written", truncated=False)
    m.stack.append(m.memo[arg])


def _op_put(m: Machine, arg: Any) -> None:
    m.memo[arg] = m.stack[-1]


def _op_memoize(m: Machine, _arg: Any) -> None:
    m.memo[len(m.memo)] = m.stack[-1]


def _op_global(m: Machine, arg: Any) -> None:
    module, name = arg  # the two name lines, as the C unpickler decodes them
    m.push_global(f"{module}.{name}")


def _op_stack_global(m: Machine, _arg: Any) -> None:
    name = m.stack.pop()
    module = m.stack.pop()
    if isinstance(module, str) and isinstance(name, str):
        m.push_global(f"{module}.{name}")
    else:  # names computed at load time cannot be resolved statically
        m.push_global(DYNAMIC_CALLEE)


def _op_ext(m: Machine, arg: Any) -> None:
    m.push_global(f"<copyreg-extension>.{arg}")


def _op_reduce(m: Machine, _arg: Any) -> None:
    args = m.stack.pop()
    func = m.stack.pop()
    m.stack.append(m.call(func, args))


def _op_newobj(m: Machine, _arg: Any) -> None:
    args = m.stack.pop()
    cls = m.stack.pop()
    m.note_call(cls)
    m.stack.append(Call(cls, args))


def _op_newobj_ex(m: Machine, _arg: Any) -> None:
    kwargs = m.stack.pop()
    args = m.stack.pop()
    cls = m.stack.pop()
    m.note_call(cls)
    m.stack.append(Call(cls, (args, kwargs)))


def _op_inst(m: Machine, arg: Any) -> None:
    module, name = arg
    m.globals.add(f"{module}.{name}")
    m.calls.add(f"{module}.{name}")
    args = tuple(m.pop_mark())
    m.stack.append(Call(Global(f"{module}.{name}"), args))


def _op_obj(m: Machine, _arg: Any) -> None:
    items = m.pop_mark()
    if not items:
        raise PickleError("OBJ without a class", truncated=False)
    m.note_call(items[0])
    m.stack.append(Call(items[0], tuple(items[1:])))


def _op_build(m: Machine, _arg: Any) -> None:
    state = m.stack.pop()
    target = m.stack[-1]
    if isinstance(target, StubDict):
        target.__setstate__(state)
    elif isinstance(target, Call):
        target.state = state
    elif isinstance(target, Global):
        # BUILD on a class, function or module sets its attributes (setattr per key of the state's slot
        # dict): a pickle can patch code that runs later. Recorded as a call that nothing allowlists.
        m.globals.add(f"{target.name}.__setstate__")
        m.calls.add(f"{target.name}.__setstate__")


def _op_persid(m: Machine, arg: Any) -> None:
    m.stack.append(m.persistent_load(arg) if m.persistent_load else Call(Global("<persistent_id>"), (arg,)))


def _op_binpersid(m: Machine, _arg: Any) -> None:
    _op_persid(m, m.stack.pop())


def _op_empty(factory: Callable[[], Any]) -> Callable[[Machine, Any], None]:
    def handler(m: Machine, _arg: Any) -> None:
        m.stack.append(factory())

    return handler


HANDLERS: dict[str, Callable[[Machine, Any], None]] = {
    "PROTO": _op_proto,
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
PUSH_ARG = frozenset(
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
IGNORED = frozenset({"FRAME", "READONLY_BUFFER"})  # FRAME: the decoders check its length
