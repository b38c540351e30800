"""Callables that call or instantiate one of their *arguments* when a pickle calls them.

The pickle names such an argument only as a value (a GLOBAL passed in a tuple), yet it runs on load: torch's
`_rebuild_from_type_v2(func, new_type, args, state)` calls `func(*args)` and then `new_type`'s
`__setstate__`, numpy's `_reconstruct(subtype, ...)` instantiates `subtype`, `copyreg._reconstructor(cls,
base, state)` calls `base.__new__(cls)` and `base.__init__`. Several of these callables are on torch's
allowlist or ckaudit's inert list, so the machine records those arguments as called too: an allowed
callable must not launder a dangerous one.
"""

from __future__ import annotations

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
