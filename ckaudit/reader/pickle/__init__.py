"""A restricted pickle interpreter: it never executes a pickle and never imports anything named in it.

- `decoders`: opcodes from a stream (`walk_pickle`) or from bytes (`walk_bytes`), FRAMEs as CPython reads them
- `machine`: each opcode's effect on a stack of stubs; collects the globals named and called
- `argument_callers`: callables that call their arguments (those arguments count as called)
- `torch_rebuild`: torch's tensor/storage rebuild functions interpreted into `TensorRef`/`StorageRef`
- `stubs`: the stub values, `PickleResult` and `PickleError`
- `weights_only`: what torch's weights_only unpickler accepts (opcodes, BUILD types, APPEND/SETITEM targets)
"""

from __future__ import annotations

from ckaudit.reader.pickle.decoders import walk_bytes, walk_pickle
from ckaudit.reader.pickle.stubs import (
    DYNAMIC_CALLEE,
    Call,
    Global,
    PersistentLoad,
    PickleError,
    PickleResult,
    StorageRef,
    StubDict,
    TensorRef,
    unproven_call,
)
from ckaudit.reader.pickle.torch_rebuild import torch_storage
from ckaudit.reader.pickle.weights_only import WEIGHTS_ONLY_OPCODES, numpy_dtype_class

__all__ = [
    "DYNAMIC_CALLEE",
    "WEIGHTS_ONLY_OPCODES",
    "Call",
    "Global",
    "PersistentLoad",
    "PickleError",
    "PickleResult",
    "StorageRef",
    "StubDict",
    "TensorRef",
    "numpy_dtype_class",
    "torch_storage",
    "unproven_call",
    "walk_bytes",
    "walk_pickle",
]
