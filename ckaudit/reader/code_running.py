"""Names known to run code, touch the system or load more pickles: unsafe even when a pickle only names them.

A global the pickle *calls* and that is not inert is unsafe whatever it is (see safety.py); this list is for
names that are merely *referenced* (passed as a value, stored in a dict): those are usually harmless data
types torch.load(weights_only=True) refuses, except when they are these, which a later call (a hook, a
default factory, the loading code) would run.
"""

from __future__ import annotations

# Whole modules (and their submodules): execution, imports, processes, files, network, pickles, debuggers,
# and modules that act when merely imported (this, antigravity, idlelib; any `__main__` is a dunder below).
CODE_RUNNING_MODULES = frozenset(
    {
        *(
            "os",
            "posix",
            "nt",
            "sys",
            "subprocess",
            "_posixsubprocess",
            "pty",
            "commands",
            "popen2",
            "signal",
            "atexit",
        ),
        *("builtins", "types", "functools", "operator", "inspect", "gc", "ctypes", "_ctypes", "cffi"),
        *("runpy", "importlib", "pkgutil", "zipimport", "imp", "site", "pydoc", "code", "codeop"),
        *("compileall", "py_compile", "logging.config", "pickle", "_pickle", "cPickle", "copyreg"),
        *("marshal", "shelve", "dill", "cloudpickle", "joblib", "yaml", "pandas.io", "codecs"),
        *("io", "_io", "shutil", "tempfile", "glob", "tarfile", "zipfile", "pathlib"),
        *("socket", "ssl", "http", "urllib", "requests", "httpx", "aiohttp", "ftplib", "smtplib"),
        *("telnetlib", "xmlrpc", "webbrowser", "antigravity", "asyncio", "concurrent", "selectors"),
        *("threading", "_thread", "multiprocessing", "pdb", "bdb", "trace", "timeit", "cProfile"),
        *("profile", "doctest", "unittest", "platform", "setuptools", "distutils", "pip", "ensurepip"),
        *("this", "__hello__", "__phello__", "idlelib", "turtle", "turtledemo", "tkinter", "lib2to3"),
        *("IPython", "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.ctypeslib"),
        *("torch.serialization", "torch.jit", "torch.hub", "torch.package", "torch.fx", "torch._C"),
        *("torch._dynamo", "torch._inductor", "torch.compiler", "torch.library", "torch._ops", "torch.ops"),
        *("torch.utils.cpp_extension", "torch.utils.collect_env", "torch.utils.checkpoint"),
    }
)
# Single functions of otherwise harmless modules.
CODE_RUNNING_NAMES = frozenset(
    {
        *("torch.load", "torch.compile", "torch.storage._load_from_bytes", "torch.Tensor.__reduce_ex__"),
        *("numpy.load", "numpy.save", "numpy.fromfile", "numpy.loadtxt", "numpy.genfromtxt"),
        *("typing.ForwardRef", "typing._eval_type", "typing.get_type_hints", "pandas.eval"),
        *("pandas.read_pickle", "pandas.core.computation.eval.eval"),
    }
)
# A module reached through another module's attributes (`torch.os.system`, `numpy.sys.modules`).
_CHAINED_MODULES = frozenset(
    {"os", "posix", "nt", "sys", "subprocess", "builtins", "__builtins__", "importlib", "runpy", "pickle"}
    | {"marshal", "shutil", "socket", "ctypes", "pty"}
)
UNRESOLVED_PREFIXES = (
    "<dynamic>",
    "<copyreg-extension>",
    "<persistent_id>",
    "<out-of-band-buffer>",
    "<cannot-prove-inert>",
)


def is_unresolved(name: str) -> bool:
    """A callee computed at load time, a copyreg extension code, or no `module.name` at all."""
    return not name or "." not in name or name.startswith(UNRESOLVED_PREFIXES)


def runs_code(name: str) -> bool:
    """Known to run code or reach the system: by module, by exact name, by an attribute chain through a
    code-running module, or by a dunder attribute (`__globals__`, `__builtins__`, `__setstate__` of a
    class the pickle patches)."""
    if is_unresolved(name) or name in CODE_RUNNING_NAMES:
        return True
    parts = name.split(".")
    if any(".".join(parts[:i]) in CODE_RUNNING_MODULES for i in range(1, len(parts))):
        return True
    tail = parts[1:]
    return any(p in _CHAINED_MODULES or (p.startswith("__") and p.endswith("__")) for p in tail)
