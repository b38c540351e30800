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
Requests with a root may carry "origin", the working tree the interpreter knows (editable installs point
into it): a build of another tree imports that tree's folders in its place.

Sibling modules (roots.py, loader.py, …) are loaded by path with `_sibling`: this folder is no import root.

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
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

_PROTOCOL_OUT: Any = None  # the real stdout, kept private for answers
_META: Any = None  # meta.py beside this file, loaded by path (this folder is no import root)
# Set by a warm server's child (warm.py): the modules a cold worker has when it is ready, so the first build
# counts the server's preloaded packages as its own imports, as a cold worker would; and what to do after a
# root is entered (drop preloaded packages the root shadows).
COLD_MODULES: set[str] | None = None
ON_ENTER: list[Callable[[str], None]] = []


def _isolate_stdout() -> None:
    """Keep fd 1 for answers only: model code printing (even from C) lands on stderr."""
    global _PROTOCOL_OUT
    _PROTOCOL_OUT = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def _send(message: dict[str, Any]) -> None:
    _PROTOCOL_OUT.write(json.dumps(message, default=str) + "\n")
    _PROTOCOL_OUT.flush()


def prewarm() -> None:
    """The warm server's start, before any fork: what every session would otherwise redo, done once."""
    for name in ("roots", "dryrun", "locations", "built_config", "loader"):
        _sibling(name)
    _META.known_versions()
    remember_module_paths()


def remember_module_paths() -> None:
    """For the warm server (warm.py), after each preload: roots.py resolves loaded modules' paths once."""
    _sibling("roots").remember_module_paths()


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
        self.roots = _sibling("roots").Roots(_locations().in_project, ON_ENTER)

    def instantiate(self, request: dict[str, Any], device: str, recorder: Any) -> Any:
        """The factory or the `build:` code run under the meta device (or `cpu`), without weight
        initialisation or torch._dynamo, recording where each layer is assigned."""
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
        """Build on meta (once more with the real torch._dynamo when the build needs it); when that fails
        and not at import, once more on CPU. Returns the model (None when both failed) and what the
        client reads: signature, locations, the project's source files, the distributions used,
        hyperparameters."""
        root = self.roots.enter(request["root"], request.get("origin"))
        before = _modules_before()
        model, device, fallback, error = None, "meta", None, None
        recorder = _locations().Recorder(root)
        try:
            model = self.instantiate(request, "meta", recorder)
        except BaseException as exc:
            fallback = _describe(exc, root)
            if _META.needs_real_dynamo(exc) and _META.load_real_dynamo():  # then once more, in torch's order
                recorder = _locations().Recorder(root)
                try:
                    model, fallback = self.instantiate(request, "meta", recorder), None
                except BaseException as again:
                    fallback = _describe(again, root)
        if model is None and not _import_failed(fallback):
            recorder = _locations().Recorder(root)
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
            info["signature"] = _sibling("dryrun").signature(model)
            info["locations"] = {**_locations().class_location(model, root), **recorder.locations(model)}
            info["meta_error"] = fallback["message"] if fallback else None
            info["hyperparameters"] = _built_hyperparameters(model, request)
        return model, info

    def dry_run(self, request: dict[str, Any]) -> dict[str, Any]:
        """Build, then load the meta state dict of the request's tensors into the model."""
        model, info = self.build(request)
        if model is None:
            return {"build": info, "outcome": None}
        return {"build": info, "outcome": _sibling("dryrun").load(model, request)}

    def loader(self, request: dict[str, Any]) -> dict[str, Any]:
        """The project's own loader function on the checkpoint's meta state dict."""
        root = self.roots.enter(request["root"], request.get("origin"))
        before = set(sys.modules)
        steps = _sibling("loader")
        answer: dict[str, Any] = {"tensors": None, "metadata": None, "error": None}
        try:
            state = steps.run(request["loader"], _sibling("dryrun").meta_state_dict(request))
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
        """Which of the pickle's globals the project's interpreter cannot import from this root, and why."""
        self.roots.enter(request["root"], request.get("origin"))
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


def _modules_before() -> set[str]:
    """The modules loaded before a build; in a warm child's first build, only those a cold worker has."""
    global COLD_MODULES
    loaded = set(sys.modules)
    before, COLD_MODULES = (loaded if COLD_MODULES is None else COLD_MODULES & loaded), None
    return before


def _own_modules(names: set[str], root: str) -> dict[str, str]:
    """Of the modules `names`, those that are the project's code at the root: name -> file."""
    first_path = _sibling("roots").module_paths
    return {n: p for n in names for p in first_path(sys.modules[n])[:1] if _locations().in_project(p, root)}


def _relative_files(paths: Any, root: str) -> list[str]:
    return sorted(os.path.relpath(path, root) for path in paths if os.path.isfile(path))


def _sources_since(before: set[str], root: str) -> list[str]:
    """Repository files of the modules imported since `before` (relative to the root)."""
    return _relative_files(_own_modules(set(sys.modules) - before, root).values(), root)


_SIBLINGS: dict[str, Any] = {}


def _locations() -> Any:
    """locations.py: where each layer of a build was defined."""
    return _sibling("locations")


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
    inside = [f for f in frames if f.filename and _locations().in_root(f.filename, root)]
    last = inside[-1] if inside else None
    location = None
    if last is not None:
        path = os.path.relpath(os.path.realpath(last.filename), root)
        location = [path, last.lineno, (last.line or "").strip()]
    if isinstance(exc, SyntaxError) and exc.filename and _locations().in_root(exc.filename, root):
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


def prepare() -> None:
    """Everything before the first request: siblings, stdio discipline's prerequisites, torch. A warm server
    (warm.py) runs this once and forks a child per session; a cold worker runs it and then `session()`."""
    global _META
    here = os.path.dirname(os.path.realpath(__file__))
    _META = _sibling("meta")
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != here]  # our folder is no import root
    sys.dont_write_bytecode = True  # never write __pycache__ into the user's repository
    faulthandler.enable()
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=False)  # the client asks for a stack on timeout
    import torch  # noqa: F401


def session() -> Worker:
    """One client's session: the ready line, then requests until stdin closes (the same in a warm child)."""
    import torch

    if _PROTOCOL_OUT is None:
        _isolate_stdout()
    ready = {"ready": True, "torch": torch.__version__, "python": sys.version.split()[0]}
    _send({"id": None, **ready, "devices": _devices(torch)})
    worker = Worker()
    _serve(worker)
    return worker


def main() -> None:
    """`python server.py` serves one client on stdin/stdout; `python server.py --warm DIR KEY FINGERPRINT
    IDLE` runs the warm build server instead (warm.py)."""
    if sys.argv[1:2] != ["--warm"]:
        _isolate_stdout()  # before torch's import: whatever it prints must not reach the protocol
    prepare()
    if sys.argv[1:2] == ["--warm"]:  # the warm build server: forks a child running session() per client
        cold = set(sys.modules)  # what a cold worker has loaded when it answers "ready"
        _sibling("warm").serve(sys.modules[__name__], sys.argv[2:], cold)
        return
    session()
    _exit_now()


def _exit_now() -> None:
    """Every answer is sent once stdin closes; tearing down an interpreter that holds torch (and whatever
    the model imported) takes up to a second the client would wait for. Nothing is left to finalise: the
    worker writes no file but a `convert` copy, finished before its answer."""
    for stream in (_PROTOCOL_OUT, sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
