"""Pickle safety with allowlist semantics: what torch.load(weights_only=True) refuses, and what can run code.

ALLOWED mirrors torch 2.13's default `weights_only` allowlist (`torch._weights_only_unpickler.
_get_allowed_globals`); a test compares the two. Every other name is *blocked* (weights_only refuses it).
A name is *inert* when it is allowed, on ckaudit's curated data-only list (inert_globals.py) or trusted by
the repository (`trusted_globals:`). Fail closed: a blocked name that is not inert is *unsafe*, whatever
its module, whether the pickle calls it or only references it (a full torch.load resolves it, importing
its module); so is a callee that cannot be resolved statically. `add_safe_globals` advice names inert
globals only.
"""

from __future__ import annotations

import _compat_pickle
from collections.abc import Iterable
from dataclasses import dataclass

from ckaudit.reader.code_running import is_unresolved
from ckaudit.reader.dtypes import ITEMSIZE, STORAGE_DTYPE
from ckaudit.reader.inert_globals import INERT_GLOBALS

_TENSOR_TYPES = ("Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte", "Bool")
_CUDA_STORAGES = (*_TENSOR_TYPES, "ComplexDouble", "ComplexFloat")
_REBUILDS = (
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_qtensor",
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_sparse_tensor",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_nested_tensor",
    "_rebuild_wrapper_subclass",
    "_rebuild_device_tensor_from_numpy",
    "_rebuild_device_tensor_from_cpu_tensor",
)
_QSCHEMES = (
    "per_tensor_affine",
    "per_tensor_symmetric",
    "per_channel_affine",
    "per_channel_symmetric",
    "per_channel_affine_float_qparams",
)
_FIXED = (
    "collections.OrderedDict",
    "collections.Counter",
    "torch.nn.parameter.Parameter",
    "torch.serialization._get_layout",
    "torch.Size",
    "torch.Tensor",
    "torch.device",
    "_codecs.encode",
    "builtins.bytearray",
    "builtins.set",
    "builtins.complex",
    "torch._tensor._rebuild_from_type_v2",
    "torch.storage.TypedStorage",
    "torch.storage.UntypedStorage",
)

ALLOWED: frozenset[str] = frozenset(
    [*_FIXED]
    + [f"torch.{dtype}" for dtype in ITEMSIZE]
    + [f"torch.{q}" for q in _QSCHEMES]
    + [f"torch._utils.{f}" for f in _REBUILDS]
    + [f"torch.{s}" for s in STORAGE_DTYPE if s != "UntypedStorage"]
    + [f"torch.cuda.{s}Storage" for s in _CUDA_STORAGES]
    + [f"torch.{t}Tensor" for t in _TENSOR_TYPES]
    + [f"torch.cuda.{t}Tensor" for t in _TENSOR_TYPES]
    + [f"torch.sparse.{t}Tensor" for t in _TENSOR_TYPES if t != "Bool"]
    + [f"torch.cuda.sparse.{t}Tensor" for t in _TENSOR_TYPES if t != "Bool"]
)


@dataclass(frozen=True)
class GlobalsVerdict:
    blocked: tuple[str, ...]  # outside torch's weights_only allowlist: torch.load(weights_only=True) refuses
    unsafe: tuple[str, ...]  # can run code on a full load, or cannot be resolved statically
    fixable: tuple[str, ...] = ()  # blocked but inert: add_safe_globals may name them (never the unsafe)


def normalize(name: str) -> str:
    """Python 2 names the way torch's unpickler maps them: '__builtin__.set' -> 'builtins.set'."""
    module, _, attr = name.rpartition(".")
    if (module, attr) in _compat_pickle.NAME_MAPPING:
        module, attr = _compat_pickle.NAME_MAPPING[(module, attr)]
    else:
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    module = _TORCH_MODULE_MAPPING.get(module, module)
    return f"{module}.{attr}"


_TORCH_MODULE_MAPPING = {"torch.tensor": "torch._tensor"}  # torch.serialization's load_module_mapping


def is_inert(name: str, trusted: Iterable[str] = ()) -> bool:
    """Allowed by torch, on ckaudit's data-only list, or vouched for by the repository (normalized names)."""
    return name in ALLOWED or name in INERT_GLOBALS or name in trusted


def classify_globals(
    names: Iterable[str], calls: Iterable[str] = (), trusted: Iterable[str] = ()
) -> GlobalsVerdict:
    """`names`: every global the pickle names; `calls`: those it calls or instantiates (REDUCE, NEWOBJ,
    INST, OBJ, and arguments of callables that call them); `trusted`: the registry's trusted_globals."""
    called = {normalize(n) for n in calls}
    vouched = {normalize(n) for n in trusted}
    named = sorted({normalize(n) for n in names} | called)
    blocked = tuple(n for n in named if n not in ALLOWED)
    unsafe = tuple(n for n in blocked if _unsafe(n, n in called, vouched))
    fixable = tuple(n for n in blocked if n not in unsafe and is_inert(n, vouched))
    return GlobalsVerdict(blocked=blocked, unsafe=unsafe, fixable=fixable)


def _unsafe(name: str, called: bool, trusted: set[str]) -> bool:
    """Unresolved, or not inert: a call runs it, and even a name only referenced is resolved by a full
    torch.load, which imports its module (module code that cannot be proven inert). `called` is kept for
    the callers' messages; the verdict no longer depends on it."""
    if is_unresolved(name):
        return True
    return not is_inert(name, trusted)


def safe_globals_fix(names: Iterable[str]) -> str:
    """The exact lines that allow `names` for torch.load(weights_only=True), with the imports they need.

    Only ever pass inert names (`GlobalsVerdict.fixable`): allowing anything else lets the payload run.
    torch matches an allowed object by its `__module__`; numpy 2 moved `numpy.core` to `numpy._core`, so a
    file written by numpy 1 names objects whose `__module__` differs: those get torch's (object, "name")
    form, which matches the name the file uses under either numpy."""
    wanted = sorted({normalize(n) for n in names})
    modules = sorted({"torch", *(n.rpartition(".")[0] for n in wanted)})
    entries = [f'({n}, "{n}")' if n.startswith(_RENAMED_MODULES) else n for n in wanted]
    return f"import {', '.join(modules)}\ntorch.serialization.add_safe_globals([{', '.join(entries)}])"


_RENAMED_MODULES = ("numpy.core.",)


def allow_line(verdict: GlobalsVerdict, refused_opcodes: Iterable[str]) -> str | None:
    """The add_safe_globals lines, only when they make torch.load(weights_only=True) accept the file: every
    blocked name inert, nothing unsafe, no opcode use torch refuses whatever is allowed."""
    if not verdict.blocked or verdict.unsafe or list(refused_opcodes):
        return None
    if len(verdict.fixable) != len(verdict.blocked):
        return None
    return safe_globals_fix(verdict.blocked)


# The advice for a file that can run code: why, and how to get the weights out without running it here.
UNSAFE_FIX = (
    "Do not load it: torch.load(weights_only=False), or allowing these names with add_safe_globals, runs "
    "them. Get the weights from their original source; or, if you trust where this copy came from, load "
    "it once in an isolated, throwaway environment (a container without credentials or network) and save "
    "`model.state_dict()` from there with torch.save or as safetensors, then use that file. A class of "
    "your own repository that you vouch for goes into `trusted_globals:` in ckaudit.yaml."
)
