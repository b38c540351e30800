"""Callables that call or instantiate one of their *arguments* when a pickle calls them.

The pickle names such an argument only as a value (a GLOBAL passed in a tuple), yet it runs on load: torch's
`_rebuild_from_type_v2(func, new_type, args, state)` calls `func(*args)` and then `new_type`'s
`__setstate__`, numpy's `_reconstruct(subtype, ...)` instantiates `subtype`, `copyreg._reconstructor(cls,
base, state)` calls `base.__new__(cls)` and `base.__init__`. Several of these callables are on torch's
allowlist or ckaudit's inert list, so the machine records those arguments as called too: an allowed
callable must not launder a dangerous one.
"""

from __future__ import annotations

from typing import Any

from ckaudit.reader.pickle.stubs import DYNAMIC_CALLEE, Global, unproven_call
from ckaudit.reader.pickle.weights_only import RESULT_TYPED, result_type

# callable -> positions (in its argument tuple) of the arguments it calls or instantiates
ARGUMENT_CALLERS: dict[str, tuple[int, ...]] = {
    "torch._tensor._rebuild_from_type_v2": (0, 1),
    "torch._tensor._rebuild_from_type": (0, 1),
    "torch._utils._rebuild_wrapper_subclass": (0,),
    "numpy.core.multiarray._reconstruct": (0,),
    "numpy._core.multiarray._reconstruct": (0,),
    "numpy.random._pickle.__bit_generator_ctor": (0,),
    "numpy.random._pickle.__generator_ctor": (1,),  # arg 0: a name or a BitGenerator, not called
    "numpy.random._pickle.__randomstate_ctor": (1,),
    "numpy.random.bit_generator.__pyx_unpickle_SeedSequence": (0,),
    "collections.defaultdict": (0,),  # the default factory: called later, on the first missing key
    "copyreg._reconstructor": (0, 1),
    "copyreg.__newobj__": (0,),
    "copyreg.__newobj_ex__": (0,),
}

# callable -> (position of the callable it calls, position of the argument tuple it calls it with):
# `_rebuild_from_type_v2(func, new_type, args, state)` runs `func(*args)`, so a nested allowed caller there
# is followed with those arguments in turn.
APPLIES: dict[str, tuple[int, int]] = {
    "torch._tensor._rebuild_from_type_v2": (0, 2),
    "torch._tensor._rebuild_from_type": (0, 2),
}

# Argument values that are data, not callables (a bit generator's name, a None default).
PLAIN_VALUES = (str, bytes, int, float, bool, type(None))

SPECIAL_CALLS = frozenset(ARGUMENT_CALLERS) | RESULT_TYPED
_MAX_NESTING = 32


class CallAudit:
    """The pickle machine's record of what a stream names and calls, arguments that get called included."""

    globals: set[str]
    calls: set[str]

    def note_call(self, func: Any) -> None:
        """Record that the stream calls or instantiates `func`; a callee that is no Global is dynamic."""
        self.calls.add(func.name if isinstance(func, Global) else DYNAMIC_CALLEE)

    def special_call(self, name: str, args: Any, depth: int = 0) -> None:
        """Arguments the callee calls count as called, through any depth of nesting; the class of its
        result, which BUILD checks and the stream need not name, counts as named."""
        if name in ARGUMENT_CALLERS:
            if not isinstance(args, tuple):  # computed at load time (builtins.tuple(...), a memo trick)
                self.calls.add(unproven_call(f"the arguments of {name} are computed at load time"))
                return
            self.note_argument_calls(name, args, depth)
        implied = result_type(name, args)
        if implied:
            self.globals.add(implied)

    def note_argument_calls(self, name: str, args: tuple[Any, ...], depth: int) -> None:
        """The arguments a known callable calls or instantiates count as called (see argument_callers);
        one it calls with arguments of its own (`func(*args)`) is followed as a call in turn."""
        for position in ARGUMENT_CALLERS[name]:
            if position < len(args) and not isinstance(args[position], PLAIN_VALUES):
                self.note_call(args[position])
        applied = APPLIES.get(name)
        if applied is None or len(args) <= max(applied):
            return
        callee, callee_args = args[applied[0]], args[applied[1]]
        if not isinstance(callee, Global) or callee.name not in SPECIAL_CALLS:
            return
        if depth >= _MAX_NESTING:
            self.calls.add(unproven_call(f"{name} nested more than {_MAX_NESTING} deep"))
            return
        self.special_call(callee.name, callee_args, depth + 1)
