"""Pickle safety with allowlist semantics: what torch.load(weights_only=True) refuses, and what can run code.

ALLOWED mirrors torch 2.13's default `weights_only` allowlist (`torch._weights_only_unpickler.
_get_allowed_globals`); a test compares the two. Everything else is blocked (fail closed). Blocked names from
modules that can run code, or names that cannot be resolved statically, are also unsafe.
"""

from __future__ import annotations

import _compat_pickle
from collections.abc import Iterable
from dataclasses import dataclass

from ckaudit.reader.dtypes import ITEMSIZE, STORAGE_DTYPE

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

# Modules whose callables run code, touch the system or load further pickles.
UNSAFE_MODULES = frozenset(
    {
        "os",
        "posix",
        "nt",
        "sys",
        "subprocess",
        "runpy",
        "importlib",
        "pickle",
        "_pickle",
        "cPickle",
        "dill",
        "cloudpickle",
        "joblib",
        "marshal",
        "shutil",
        "socket",
        "ssl",
        "http",
        "urllib",
        "requests",
        "ftplib",
        "smtplib",
        "telnetlib",
        "code",
        "codeop",
        "pty",
        "webbrowser",
        "ctypes",
        "multiprocessing",
        "threading",
        "_thread",
        "asyncio",
        "signal",
        "pdb",
        "bdb",
        "timeit",
        "cProfile",
        "profile",
        "trace",
        "doctest",
        "platform",
        "tempfile",
        "glob",
        "pathlib",
        "io",
        "_io",
        "builtins",
        "types",
        "functools",
        "operator",
        "inspect",
        "gc",
        "commands",
        "popen2",
        "torch.serialization",
        "torch.jit",
        "torch.hub",
        "torch._dynamo",
        "torch.utils.cpp_extension",
        "numpy.testing",
        "setuptools",
        "distutils",
        "pip",
    }
)
# Builtins that only build data (blocked by weights_only, harmless otherwise).
_HARMLESS_BUILTINS = frozenset(
    {
        "dict",
        "list",
        "tuple",
        "set",
        "frozenset",
        "int",
        "float",
        "complex",
        "bool",
        "str",
        "bytes",
        "bytearray",
        "range",
        "slice",
        "object",
        "type",
        "NoneType",
        "Ellipsis",
        "NotImplemented",
    }
)
# Allowed-listed exceptions inside otherwise unsafe module trees: data classes ckaudit knows to be inert.
_HARMLESS = frozenset(
    {
        "torch.serialization._get_layout",
        "pathlib.PosixPath",
        "pathlib.WindowsPath",
        "pathlib.PurePosixPath",
        "pathlib.PureWindowsPath",
        "types.SimpleNamespace",
    }
)
_UNRESOLVED = ("<dynamic>", "<copyreg-extension>", "<persistent_id>", "<out-of-band-buffer>")


@dataclass(frozen=True)
class GlobalsVerdict:
    blocked: tuple[str, ...]  # outside torch's weights_only allowlist: torch.load(weights_only=True) refuses
    unsafe: tuple[str, ...]  # can run code on a full load, or cannot be resolved statically

    @property
    def fixable(self) -> tuple[str, ...]:
        """Blocked names one may allowlist with add_safe_globals (never the unsafe ones)."""
        return tuple(name for name in self.blocked if name not in self.unsafe)


def normalize(name: str) -> str:
    """Python 2 names the way torch's unpickler maps them: '__builtin__.set' -> 'builtins.set'."""
    module, _, attr = name.rpartition(".")
    if (module, attr) in _compat_pickle.NAME_MAPPING:
        module, attr = _compat_pickle.NAME_MAPPING[(module, attr)]
    else:
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return f"{module}.{attr}"


def is_unsafe(name: str) -> bool:
    if not name or "." not in name or name.startswith(_UNRESOLVED):
        return True
    if name in _HARMLESS:
        return False
    module, _, attr = name.rpartition(".")
    if module == "builtins":
        return attr not in _HARMLESS_BUILTINS
    return any(module == m or module.startswith(m + ".") for m in UNSAFE_MODULES)


def classify_globals(names: Iterable[str]) -> GlobalsVerdict:
    normalized = sorted({normalize(n) for n in names})
    blocked = tuple(n for n in normalized if n not in ALLOWED)
    return GlobalsVerdict(blocked=blocked, unsafe=tuple(n for n in blocked if is_unsafe(n)))


def safe_globals_fix(names: Iterable[str]) -> str:
    """The exact lines that allow `names` for torch.load(weights_only=True), with the imports they need."""
    wanted = sorted({normalize(n) for n in names})
    modules = sorted({"torch", *(n.rpartition(".")[0] for n in wanted)})
    return f"import {', '.join(modules)}\ntorch.serialization.add_safe_globals([{', '.join(wanted)}])"
