"""What torch's weights_only unpickler (torch/_weights_only_unpickler.py) accepts beyond its allowlist.

Its opcodes; the types it BUILDs (the result's type must be allowed, so factories imply a class); the
targets it APPENDs to and SETITEMs on. A refused use is recorded among the opcodes
("APPENDS to collections.deque"): no add_safe_globals line can make such a file load.
"""

from __future__ import annotations

from typing import Any

from ckaudit.reader.pickle.stubs import Call, Global

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

# What a known factory returns when the pickle BUILDs its result: torch's unpickler checks that *type* is
# allowed, a class the stream may never name. An int is the argument that is the class; a dict maps the
# argument (a name) to the class, as numpy's bit-generator table does.
_BIT_GENERATORS = {
    "MT19937": "numpy.random._mt19937.MT19937",
    "PCG64": "numpy.random._pcg64.PCG64",
    "PCG64DXSM": "numpy.random._pcg64.PCG64DXSM",
    "Philox": "numpy.random._philox.Philox",
    "SFC64": "numpy.random._sfc64.SFC64",
}
_RESULT_TYPES: dict[str, int | str | dict[str, str]] = {
    "numpy.random._pickle.__randomstate_ctor": "numpy.random.mtrand.RandomState",
    "numpy.random._pickle.__generator_ctor": "numpy.random._generator.Generator",
    "numpy.random._pickle.__bit_generator_ctor": _BIT_GENERATORS,
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence": 0,
    "copyreg._reconstructor": 0,
    "copyreg.__newobj__": 0,
}


RESULT_TYPED = frozenset({"numpy.dtype", *_RESULT_TYPES})  # the callables result_type knows


def result_type(name: str, args: Any) -> str | None:
    """The class of what `name(*args)` returns, when the stream does not name it (see _RESULT_TYPES)."""
    if name == "numpy.dtype" and isinstance(args, tuple) and args and isinstance(args[0], str):
        return numpy_dtype_class(args[0])  # numpy >= 1.25: each dtype has its own class
    rule = _RESULT_TYPES.get(name)
    if rule is None or not isinstance(args, tuple):
        return None
    if isinstance(rule, str):
        return rule
    first = args[0] if args else None
    if isinstance(rule, dict):
        return rule.get(first) if isinstance(first, str) else None
    value = args[rule] if len(args) > rule else None
    return value.name if isinstance(value, Global) else None


def append_refusal(target: Any) -> str | None:
    """torch's weights_only unpickler APPENDs only to lists (a deque, a list subclass: refused)."""
    if isinstance(target, Call):
        return f"APPENDS to {target.func_name or 'an object'}"
    return None


def setitem_refusal(target: Any) -> str | None:
    """...and SETITEMs only on dict, OrderedDict and Counter (a defaultdict, a dict subclass: refused)."""
    if isinstance(target, Call) and target.func_name != "collections.Counter":
        return f"SETITEMS on {target.func_name or 'an object'}"
    return None


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
