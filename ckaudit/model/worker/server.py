"""The model worker: run BY PATH under the project's interpreter; imports only the standard library and torch.

Protocol: one JSON object per line on stdin (a request) and on stdout (its answer). The model code's own
output (print, C-level writes to fd 1) goes to stderr, so stdout carries nothing but answers.

Requests (every one carries an "id" echoed back):
  {"op": "build", "root", "factory"|"build", "kwargs"}          -> {"build": {...}}
  {"op": "dry_run", <build fields>, "tensors": [[key, shape, dtype], ...], "metadata", "strict"}
                                                               -> {"build": {...}, "outcome": {...}}
  {"op": "resolve", "root", "globals": ["pkg.mod.Class", ...]} -> {"unresolved": [[name, reason], ...]}
  {"op": "loader", "root", "loader": "pkg.mod:fn", "tensors", "metadata"}
                                      -> {"tensors", "metadata", "sources", "error"} (after the loader)
  {"op": "convert", "src", "dst", "key", "steps", "format"}   -> {"tensors": n} or {"error": message}

Sibling modules (loader.py, …) are loaded by path with `_sibling`: this folder is no import root.

It builds on the meta device with weight initialisation disabled and without importing torch._dynamo (see
meta.py; each costs seconds on meta), and reports the installed distributions the build used. Modules
imported from a root are purged before every build, so one process builds many versions of a model from
many roots (HEAD, index, history).
"""

from __future__ import annotations

import contextlib
import faulthandler
import importlib
import importlib.util
import json
import linecache
import os
import re
import signal
import sys
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

_PROTOCOL_OUT: Any = None  # the real stdout, kept private for answers
_META: Any = None  # meta.py beside this file, loaded by path (this folder is no import root)
_SIZE_MISMATCH = re.compile(
    r"size mismatch for (.+?): copying a param with shape torch\.Size\(\[([\d, ]*)\]\) from checkpoint, "
    r"the shape in current model is torch\.Size\(\[([\d, ]*)\]\)"
)


def _isolate_stdout() -> None:
    """Keep fd 1 for answers only: model code printing (even from C) lands on stderr."""
    global _PROTOCOL_OUT
    _PROTOCOL_OUT = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def _send(message: dict[str, Any]) -> None:
    _PROTOCOL_OUT.write(json.dumps(message, default=str) + "\n")
    _PROTOCOL_OUT.flush()


class _Roots:
    """Which roots modules were imported from, so that a new build starts from a clean slate."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.base_path = list(sys.path)

    def enter(self, root: str) -> str:
        root = os.path.realpath(root)
        if root not in self.seen:
            self.seen.append(root)
        self.purge()
        sys.path[:] = [root, *self.base_path]
        importlib.invalidate_caches()
        os.chdir(root)
        return root

    def purge(self) -> None:
        for name, module in list(sys.modules.items()):
            if any(_under(path, root) for path in _module_paths(module) for root in self.seen):
                del sys.modules[name]


def _module_paths(module: Any) -> list[str]:
    paths = [getattr(module, "__file__", None) or ""]
    with contextlib.suppress(Exception):
        paths.extend(list(getattr(module, "__path__", None) or []))
    return [os.path.realpath(p) for p in paths if p]


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _in_root(filename: str, root: str) -> bool:
    """A code object's file lies under the root; `<frozen importlib._bootstrap>`, `<string>` are no files."""
    return not filename.startswith("<") and _under(os.path.realpath(filename), root)


class _Recorder:
    """Records where (first frame inside the root) each submodule, parameter and buffer was assigned."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.sites: dict[int, dict[str, tuple[str, int]]] = {}
        self.keep: list[Any] = []  # holds recorded owners so their ids are not reused during the build
        self._inside: dict[str, bool] = {}

    def site(self) -> tuple[str, int] | None:
        frame = sys._getframe(2)
        while frame is not None:
            filename = frame.f_code.co_filename
            inside = self._inside.get(filename)
            if inside is None:
                inside = self._inside[filename] = _in_root(filename, self.root)
            if inside:
                return os.path.relpath(os.path.realpath(filename), self.root), frame.f_lineno
            frame = frame.f_back  # type: ignore[assignment]
        return None

    def note(self, owner: Any, name: str) -> None:
        site = self.site()
        if site is not None:
            self.sites.setdefault(id(owner), {})[name] = site
            self.keep.append(owner)

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        import torch
        from torch import nn

        module_cls = nn.Module
        originals = {
            n: getattr(module_cls, n)
            for n in ("__setattr__", "register_buffer", "register_parameter", "add_module", "register_module")
        }
        recorder = self

        def setattr_(this: Any, name: str, value: Any) -> None:
            if isinstance(value, (nn.Module, torch.Tensor)):
                recorder.note(this, name)
            originals["__setattr__"](this, name, value)

        def wrap(method: str) -> Callable[..., Any]:
            def wrapper(this: Any, name: str, *args: Any, **kwargs: Any) -> Any:
                recorder.note(this, name)
                return originals[method](this, name, *args, **kwargs)

            return wrapper

        module_cls.__setattr__ = setattr_  # type: ignore[method-assign,assignment]
        for method in ("register_buffer", "register_parameter", "add_module", "register_module"):
            setattr(module_cls, method, wrap(method))
        try:
            yield
        finally:
            for method, original in originals.items():
                setattr(module_cls, method, original)

    def locations(self, model: Any) -> dict[str, list[Any]]:
        result: dict[str, list[Any]] = {}
        for qualname, module in model.named_modules(remove_duplicate=False):
            for name, (path, line) in self.sites.get(id(module), {}).items():
                key = f"{qualname}.{name}" if qualname else name
                result.setdefault(key, [path, line, _snippet(self.root, path, line)])
        return result


def _class_location(model: Any, root: str) -> dict[str, list[Any]]:
    """Under the key "": the model's class statement, for keys that belong to no submodule."""
    import inspect

    try:
        source = os.path.realpath(inspect.getsourcefile(type(model)) or "")
        line = inspect.getsourcelines(type(model))[1]
    except (OSError, TypeError):
        return {}
    if not _under(source, root):
        return {}
    path = os.path.relpath(source, root)
    return {"": [path, line, _snippet(root, path, line)]}


def _snippet(root: str, path: str, line: int) -> str:
    return linecache.getline(os.path.join(root, path), line).strip()


@contextlib.contextmanager
def _traced_exit() -> Iterator[None]:
    """os._exit from model code: print the stack to stderr first, so the client can name the frame."""
    real_exit = os._exit

    def exit_(status: int) -> None:
        traceback.print_stack(sys._getframe(1), file=sys.stderr)
        sys.stderr.flush()
        real_exit(status)

    os._exit = exit_  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit = real_exit


class Worker:
    def __init__(self) -> None:
        self.roots = _Roots()

    def instantiate(self, request: dict[str, Any], device: str, recorder: _Recorder) -> Any:
        import torch

        with torch.device(device), _META.no_init(), _META.no_dynamo(), recorder.patched(), _traced_exit():
            if request.get("factory"):
                model = _factory(request)(**(request.get("kwargs") or {}))
            else:
                namespace: dict[str, Any] = {"__name__": "__ckaudit_build__"}
                code = compile(
                    request["build"], os.path.join(self.roots.seen[-1], "<ckaudit.yaml build>"), "exec"
                )
                exec(code, namespace)
                if "model" not in namespace:
                    raise NameError("the build code must leave the model in a variable named `model`")
                model = namespace["model"]
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"the factory returned {type(model).__name__}, not a torch.nn.Module")
        return model

    def build(self, request: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        root = self.roots.enter(request["root"])
        before = set(sys.modules)
        model, device, fallback, error = None, "meta", None, None
        recorder = _Recorder(root)
        try:
            model = self.instantiate(request, "meta", recorder)
        except BaseException as exc:
            fallback = _describe(exc, root)
            if _META.needs_real_dynamo(exc) and _META.load_real_dynamo():  # then once more, in torch's order
                recorder = _Recorder(root)
                try:
                    model, fallback = self.instantiate(request, "meta", recorder), None
                except BaseException as again:
                    fallback = _describe(again, root)
        if model is None and not _import_failed(fallback):
            recorder = _Recorder(root)
            try:
                model, device = self.instantiate(request, "cpu", recorder), "cpu"
            except BaseException as exc:
                error = _describe(exc, root)
        elif model is None:
            error = fallback
        new = set(sys.modules) - before
        own = _own_modules(new, root)
        sources = _relative_files(own.values(), root)
        used = _META.used_packages(model, new - set(own), [sys.modules[name] for name in own])
        info: dict[str, Any] = {
            "ok": model is not None,
            "device": device,
            "sources": sources,
            "error": error,
            "distributions": _META.distributions(used),
        }
        if model is not None:
            info["signature"] = _signature(model)
            info["locations"] = {**_class_location(model, root), **recorder.locations(model)}
            info["meta_error"] = fallback["message"] if fallback else None
            info["hyperparameters"] = _built_hyperparameters(model, request)
        return model, info

    def dry_run(self, request: dict[str, Any]) -> dict[str, Any]:
        model, info = self.build(request)
        if model is None:
            return {"build": info, "outcome": None}
        return {"build": info, "outcome": _load(model, request)}

    def loader(self, request: dict[str, Any]) -> dict[str, Any]:
        """The project's own loader function on the checkpoint's meta state dict."""
        root = self.roots.enter(request["root"])
        before = set(sys.modules)
        steps = _sibling("loader")
        answer: dict[str, Any] = {"tensors": None, "metadata": None, "error": None}
        try:
            state = steps.run(request["loader"], _meta_state_dict(request))
            answer.update(tensors=steps.tensors_of(state), metadata=steps.metadata_of(state))
        except BaseException as exc:
            answer["error"] = _describe(exc, root)
        return {**answer, "sources": _sources_since(before, root)}

    def convert(self, request: dict[str, Any]) -> dict[str, Any]:
        """`ckaudit fix`: a converted copy of a checkpoint (weights_only load; never overwrites)."""
        try:
            return dict(_sibling("convert").convert(request))
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}

    def resolve(self, request: dict[str, Any]) -> dict[str, Any]:
        self.roots.enter(request["root"])
        unresolved = []
        for name in request["globals"]:
            reason = _resolve_one(name)
            if reason is not None:
                unresolved.append([name, reason])
        return {"unresolved": unresolved}


def _factory(request: dict[str, Any]) -> Any:
    module_name, _, attr = request["factory"].partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def _built_hyperparameters(model: Any, request: dict[str, Any]) -> dict[str, Any]:
    """What config-drift compares with the checkpoint's saved hyperparameters; {} when unknowable."""
    try:
        factory = _factory(request) if request.get("factory") else None
        found = _sibling("built_config").hyperparameters(model, factory, request.get("kwargs") or {})
        return dict(json.loads(json.dumps(found, default=str)))
    except Exception:
        return {}


def _own_modules(names: set[str], root: str) -> dict[str, str]:
    """Of the modules `names`, those whose file lies under the root: name -> file."""
    return {n: p for n in names for p in _module_paths(sys.modules[n])[:1] if _under(p, root)}


def _relative_files(paths: Any, root: str) -> list[str]:
    return sorted(os.path.relpath(path, root) for path in paths if os.path.isfile(path))


def _sources_since(before: set[str], root: str) -> list[str]:
    """Repository files of the modules imported since `before` (relative to the root)."""
    return _relative_files(_own_modules(set(sys.modules) - before, root).values(), root)


_SIBLINGS: dict[str, Any] = {}


def _sibling(name: str) -> Any:
    """A module beside this file, loaded by path under a private name and kept out of sys.modules (so that
    purging a root never drops it, and a project module of the same name never shadows it)."""
    if name not in _SIBLINGS:
        path = os.path.join(os.path.dirname(os.path.realpath(__file__)), f"{name}.py")
        spec = importlib.util.spec_from_file_location(f"_ckaudit_worker_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _SIBLINGS[name] = module
    return _SIBLINGS[name]


def _import_failed(description: dict[str, Any] | None) -> bool:
    """An import error or SystemExit will not go away on CPU: do not run the factory twice."""
    return description is not None and description["type"] in (
        "ModuleNotFoundError",
        "ImportError",
        "SyntaxError",
        "SystemExit",
    )


def _resolve_one(name: str) -> str | None:
    """How pickle's find_class would look `name` up: the longest importable module prefix, then getattr."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as exc:
            if cut == 1:
                return f"No module named {module_name!r} ({exc})"
            continue
        except BaseException as exc:
            return f"importing {module_name} raised {type(exc).__name__}: {exc}"
        for attr in parts[cut:]:
            if not hasattr(target, attr):
                return f"Can't get attribute {attr!r} on module {module_name!r}"
            target = getattr(target, attr)
        return None
    return "not a module-qualified name"


def _describe(exc: BaseException, root: str) -> dict[str, Any]:
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if f.filename and _in_root(f.filename, root)]
    last = inside[-1] if inside else None
    location = None
    if last is not None:
        path = os.path.relpath(os.path.realpath(last.filename), root)
        location = [path, last.lineno, (last.line or "").strip()]
    if isinstance(exc, SyntaxError) and exc.filename and _in_root(exc.filename, root):
        location = [
            os.path.relpath(os.path.realpath(exc.filename), root),
            exc.lineno,
            (exc.text or "").strip(),
        ]
    tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-12:])
    return {
        "type": type(exc).__name__,
        "message": f"{type(exc).__name__}: {exc}",
        "location": location,
        "traceback": tail[-4000:],
        "kind": "raised",
    }


def _signature(model: Any) -> dict[str, list[Any]]:
    """key -> [shape, dtype, persistent, is a buffer] (buffers hint at `persistent=False` when missing)."""
    import torch

    signature: dict[str, list[Any]] = {}
    for key, value in model.state_dict(keep_vars=True).items():
        if hasattr(value, "shape"):
            buffer = not isinstance(value, torch.nn.Parameter)
            signature[key] = [list(value.shape), str(value.dtype).removeprefix("torch."), True, buffer]
    for key, buffer in model.named_buffers():
        if key not in signature and buffer is not None:
            signature[key] = [list(buffer.shape), str(buffer.dtype).removeprefix("torch."), False, True]
    return signature


def _meta_state_dict(request: dict[str, Any]) -> OrderedDict[str, Any]:
    import torch

    state: OrderedDict[str, Any] = OrderedDict()
    for key, shape, dtype in request["tensors"]:
        torch_dtype = getattr(torch, dtype, None)
        try:
            state[key] = torch.empty(shape, dtype=torch_dtype, device="meta")
        except Exception:
            state[key] = torch.empty(shape, dtype=torch.uint8, device="meta")
    if request.get("metadata") is not None:
        state._metadata = OrderedDict(request["metadata"])  # type: ignore[attr-defined]
    return state


def _load(model: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The model's own load_state_dict on meta tensors; torch's message and key lists, verbatim."""
    lists: dict[str, Any] = {}

    def keep_lists(module: Any, incompatible: Any) -> None:
        lists["missing"], lists["unexpected"] = incompatible.missing_keys, incompatible.unexpected_keys

    model.register_load_state_dict_post_hook(keep_lists)
    error_text = None
    try:
        model.load_state_dict(
            _meta_state_dict(request), strict=bool(request.get("strict", True)), assign=True
        )
    except Exception as exc:
        error_text = str(exc) if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {exc}"
    mismatches, others = _parse_errors(error_text)
    return {
        "error_text": error_text,
        "missing": list(lists.get("missing", [])),
        "unexpected": list(lists.get("unexpected", [])),
        "size_mismatch": mismatches,
        "other_errors": others,
    }


def _parse_errors(error_text: str | None) -> tuple[list[Any], list[str]]:
    if error_text is None:
        return [], []
    if not error_text.startswith("Error(s) in loading state_dict"):
        return [], [error_text]
    mismatches, others = [], []
    for message in error_text.split("\n\t")[1:]:
        match = _SIZE_MISMATCH.match(message)
        if match:
            mismatches.append([match.group(1), _dims(match.group(2)), _dims(match.group(3))])
        elif not message.startswith(("Missing key(s) in state_dict", "Unexpected key(s) in state_dict")):
            others.append(message)
    return mismatches, others


def _dims(text: str) -> list[int]:
    return [int(d) for d in text.replace(" ", "").split(",") if d]


def _serve(worker: Worker) -> None:
    handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "build": lambda r: {"build": worker.build(r)[1]},
        "dry_run": worker.dry_run,
        "resolve": worker.resolve,
        "loader": worker.loader,
        "convert": worker.convert,
        "ping": lambda r: {},
    }
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer = handlers[request["op"]](request)
        except Exception as exc:
            answer = {"worker_error": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}
        _send({"id": request.get("id"), **answer})


def _devices(torch: Any) -> list[str]:
    """Device types this interpreter can restore storages to (what torch.load needs for a location)."""
    found = ["cpu", "meta"]
    for name in ("cuda", "mps", "xpu"):
        backend = getattr(torch.backends, name, None) if name == "mps" else getattr(torch, name, None)
        with contextlib.suppress(Exception):
            if backend is not None and backend.is_available():
                found.append(name)
    return found


def main() -> None:
    global _META
    here = os.path.dirname(os.path.realpath(__file__))
    _META = _sibling("meta")
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != here]  # our folder is no import root
    _isolate_stdout()
    sys.dont_write_bytecode = True  # never write __pycache__ into the user's repository
    faulthandler.enable()
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=False)  # the client asks for a stack on timeout
    import torch

    ready = {"ready": True, "torch": torch.__version__, "python": sys.version.split()[0]}
    _send({"id": None, **ready, "devices": _devices(torch)})
    _serve(Worker())


if __name__ == "__main__":
    main()
