"""The values the restricted pickle machine builds instead of real objects, and its error and result types.

Nothing here is ever imported from the names a pickle holds: a GLOBAL is a `Global` holding the name,
calling it is a `Call` holding the callee and its arguments, torch storages and tensors are plain records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class PickleError(Exception):
    """The stream is not a well-formed pickle; `truncated` when it ended early.

    `globals` and `calls` are what the stream named and called before the error: a payload placed ahead of
    a deliberate parse error must still be reported. `unproven` when the C unpickler may well go on where
    the walker stops (an opcode use it does not model): what follows cannot be proven inert.
    """

    def __init__(
        self,
        message: str,
        *,
        truncated: bool,
        unproven: bool = False,
        globals: frozenset[str] = frozenset(),
        calls: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(message)
        self.truncated = truncated
        self.unproven = unproven
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

    def __setstate__(self, state: Any) -> None:
        raise _not_modelled("BUILD on a storage")


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

    def __setstate__(self, state: Any) -> None:
        raise _not_modelled("BUILD on a tensor")


def _not_modelled(what: str) -> PickleError:
    """What the C unpickler would do to a record (BUILD calls `__setstate__`) and the walker models
    otherwise: the C pass (cpass) declines, and the walker reads the stream."""
    return PickleError(f"{what}: read by the walker", truncated=False)


class StubDict(dict[Any, Any]):
    """A dict or OrderedDict from the stream; `metadata` keeps OrderedDict._metadata (set by BUILD)."""

    def __init__(self, ordered: bool = False) -> None:
        super().__init__()
        self.ordered = ordered
        self.metadata: Any = None

    def __setstate__(self, state: Any) -> None:
        """BUILD on an OrderedDict: torch keeps the state dict's `_metadata` (module versions) there; the
        rest of a BUILD's state is dropped (StubDicts are never copied, so no other state reaches here)."""
        if isinstance(state, dict) and "_metadata" in state:
            self.metadata = state["_metadata"]

    __hash__ = object.__hash__  # type: ignore[assignment]  # stubs are keys by identity, like objects


PersistentLoad = Callable[[Any], Any]

# The callee recorded when a pickle calls something that is not a plain GLOBAL (computed at load time).
DYNAMIC_CALLEE = "<dynamic>.<unresolved>"
# The prefix of a recorded "call" that stands for what the walker cannot prove inert (a stream it cannot
# follow to STOP, arguments computed at load time that decide what an allowed callable calls).
UNPROVEN = "<cannot-prove-inert>"


def unproven_call(reason: str) -> str:
    return f"{UNPROVEN}.{reason}"


@dataclass
class PickleResult:
    root: Any
    globals: set[str]
    end: int  # offset just past STOP
    refused: set[str]  # opcodes and uses torch's weights_only unpickler refuses ("APPENDS to a deque")
    calls: set[str] = field(default_factory=set)  # globals called or instantiated (REDUCE, NEWOBJ, INST, OBJ)
