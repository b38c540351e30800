"""Drives one worker subprocess for many builds: torch is imported once, the process restarts after a failure.

A request that raises in model code comes back as data; one that hangs past the timeout, or kills the
process (os._exit, a segfault), becomes a ModelBuild(ok=False) with the last repository frame found in the
worker's stderr, and the next request transparently gets a fresh worker. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ckaudit.errors import WorkerError
from ckaudit.findings import Location
from ckaudit.reader import StateDictCandidate
from ckaudit.registry import ModelSpec
from ckaudit.tracebacks import frames
from ckaudit.worker.results import (
    ErrorKind,
    LoaderResult,
    LoadOutcome,
    ModelBuild,
    ModelError,
    build_from_wire,
    loader_from_wire,
    outcome_from_wire,
)
from ckaudit.worker.warmclient import WarmChild, fingerprint, open_session, start, unavailable, worker_env

SERVER = Path(__file__).with_name("server.py")
STARTUP_TIMEOUT = 300.0  # importing torch on a loaded machine; the per-request timeout starts after it
_STDERR_KEEP = 400  # lines


class _Failure(Exception):
    def __init__(self, kind: ErrorKind, message: str, stderr: str) -> None:
        super().__init__(message)
        self.kind, self.message, self.stderr = kind, message, stderr


@dataclass(frozen=True)
class Incident:
    """A request that got no answer: it timed out, or the worker died (a signal, out of memory, an exit).
    Callers that cache (`ckaudit.scan.evaluator`) read these to keep such outcomes out of the cache, and to
    refuse a verdict when the worker died (`WorkerDied`)."""

    kind: ErrorKind  # "timeout" | "crashed"
    message: str  # "timed out after 3 s" / "the worker was killed by SIGKILL"
    op: str  # the request: "build", "dry_run", ...
    stderr: str


class _Process:
    """One running server.py session (a cold process, or a warm server's forked child): its pipes, a reader
    thread per stream, and the stderr it wrote."""

    def __init__(self, python: str, warm: WarmChild | None = None) -> None:
        self.popen: subprocess.Popen[bytes] | WarmChild
        if warm is not None:
            self.popen = warm
        else:
            self.popen = _cold(python)
        self.answers: queue.Queue[str | None] = queue.Queue()
        self.stderr_lines: list[str] = []
        self.stderr_total = 0
        self.lock = threading.Lock()
        self.ready: dict[str, Any] | None = None
        assert self.popen.stdout is not None and self.popen.stderr is not None
        threading.Thread(target=self._pump, args=(self.popen.stdout,), daemon=True).start()
        threading.Thread(target=self._drain, args=(self.popen.stderr,), daemon=True).start()

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self.answers.put(raw.decode("utf-8", errors="replace"))
        self.answers.put(None)

    def _drain(self, stream: IO[bytes]) -> None:
        for raw in stream:
            with self.lock:
                self.stderr_lines.append(raw.decode("utf-8", errors="replace"))
                self.stderr_total += 1
                del self.stderr_lines[:-_STDERR_KEEP]

    def stderr_since(self, mark: int) -> str:
        """What the worker wrote to stderr since `mark` (at most the last _STDERR_KEEP lines)."""
        with self.lock:
            fresh = min(self.stderr_total - mark, len(self.stderr_lines))
            return "".join(self.stderr_lines[len(self.stderr_lines) - fresh :])

    def stderr_mark(self) -> int:
        with self.lock:
            return self.stderr_total

    def send(self, message: Mapping[str, Any]) -> None:
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write((json.dumps(message, default=str) + "\n").encode())
            self.popen.stdin.flush()
        except OSError:
            pass  # the process died; receive() reports how

    def receive(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        mark = self.stderr_mark()
        try:
            line = self.answers.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self.dump_stack()
            self.kill()
            raise _Failure("timeout", f"timed out after {timeout:g} s", self.stderr_since(mark)) from None
        if line is None:
            status = self.popen.wait()
            time.sleep(0.05)  # let the stderr thread catch the last lines
            raise _Failure("crashed", _exit_text(status), self.stderr_since(mark))
        return dict(json.loads(line))

    def dump_stack(self) -> None:
        """Ask faulthandler in the worker for the stack of the hung code, then give it a moment to write."""
        if hasattr(signal, "SIGUSR1") and self.popen.poll() is None:
            with contextlib.suppress(OSError):
                self.popen.send_signal(signal.SIGUSR1)
                time.sleep(0.3)

    def kill(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


def _cold(python: str) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            [python, str(SERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=worker_env(),
            start_new_session=True,  # a timeout kills the model code's children too
        )
    except OSError as exc:
        raise WorkerError(f"cannot start the model worker with {python}: {exc}") from None


def _exit_text(status: int) -> str:
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"the worker was killed by {signal.Signals(-status).name}"
    return f"the worker exited with status {status}"


def last_repository_frame(text: str, root: Path) -> Location | None:
    """The innermost frame under `root` in a traceback or faulthandler dump (which lists innermost first)."""
    base = os.path.realpath(root)
    inside = [(path, line) for path, line in frames(text) if os.path.realpath(path).startswith(base + os.sep)]
    if not inside:
        return None
    path, line = inside[-1]
    relative = os.path.relpath(os.path.realpath(path), base)
    snippet = _line_of(Path(base) / relative, line)
    return Location(relative, line, snippet)


def _line_of(path: Path, line: int) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return lines[line - 1].strip() if 0 < line <= len(lines) else None


class ModelWorker:
    """`with ModelWorker(python) as worker:` builds and dry-runs many models in one torch process.

    With `warm` (the interpreter's sys.path folders), a session comes from the user's warm build server when
    one is running for this interpreter (see warmclient.py); else the cold worker starts as before, and the
    server is started in the background when this worker closes, for the next run.
    """

    def __init__(
        self,
        python: str,
        *,
        timeout: float = 120.0,
        startup_timeout: float = STARTUP_TIMEOUT,
        origin: Path | None = None,
        warm: Sequence[str] | None = None,
    ) -> None:
        """`origin`: the working tree the interpreter knows (an editable install of the project points into
        it); builds of other trees import their own copy of what it provides."""
        self.python = python
        self.origin = origin
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self._process: _Process | None = None
        self._next_id = 0
        self.incidents: list[Incident] = []  # every request that got no answer, in order
        usable = warm is not None and not unavailable()
        self._print = fingerprint(python, warm or (), worker_env()) if usable else None
        self._start_server = False
        self.warm_sessions = 0  # sessions served by the warm server (the rest were cold)
        self._process = self._spawn()  # start now: torch imports while the caller reads checkpoints

    def _spawn(self) -> _Process:
        if self._print is not None:
            child = open_session(self.python, self._print)
            if isinstance(child, WarmChild):
                self.warm_sessions += 1
                return _Process(self.python, child)
            self._start_server = True
        return _Process(self.python)

    def __enter__(self) -> ModelWorker:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def devices(self) -> frozenset[str] | None:
        """Device types the project's interpreter has ("cpu", "meta", "cuda", ...); None if not reported."""
        devices = self._ready().get("devices")
        return frozenset(map(str, devices)) if isinstance(devices, list) else None

    def build(self, spec: ModelSpec, root: Path) -> ModelBuild:
        try:
            answer = self._call({"op": "build", **_spec_fields(spec, root)})
        except _Failure as failure:
            return _failed_build(failure, root)
        return build_from_wire(answer["build"])

    def dry_run(
        self, spec: ModelSpec, root: Path, candidate: StateDictCandidate, *, strict: bool
    ) -> LoadOutcome:
        tensors = [[key, list(t.shape), t.dtype] for key, t in candidate.tensors.items()]
        request = {
            "op": "dry_run",
            **_spec_fields(spec, root),
            "tensors": tensors,
            "metadata": _json_metadata(candidate.metadata),
            "strict": strict,
        }
        try:
            answer = self._call(request)
        except _Failure as failure:
            return LoadOutcome(loads=False, build=_failed_build(failure, root))
        build = build_from_wire(answer["build"])
        return outcome_from_wire(answer.get("outcome"), build)

    def apply_loader(self, root: Path, loader: str, candidate: StateDictCandidate) -> LoaderResult:
        """The state dict as the project's `loader` function leaves it (run on meta tensors)."""
        request = {
            "op": "loader",
            "root": str(root),
            "loader": loader,
            "tensors": [[key, list(t.shape), t.dtype] for key, t in candidate.tensors.items()],
            "metadata": _json_metadata(candidate.metadata),
        }
        try:
            answer = self._call(request)
        except _Failure as failure:
            return LoaderResult(None, _failed_build(failure, root).error, ())
        return loader_from_wire(answer, candidate.key)

    def convert(
        self, src: Path, dst: Path, key: str, steps: Sequence[Mapping[str, Any]], fmt: str
    ) -> str | None:
        """Write the converted copy (see worker/convert.py); None when done, else why it failed."""
        request = {"op": "convert", "src": str(src), "dst": str(dst), "key": key, "steps": list(steps)}
        try:
            answer = self._call({**request, "format": fmt})
        except _Failure as failure:
            return failure.message
        return answer.get("error")

    def resolve_globals(self, root: Path, names: Sequence[str]) -> dict[str, str]:
        """Pickled globals the code under `root` no longer provides: name -> why (as pickle would fail)."""
        if not names:
            return {}
        try:
            answer = self._call({"op": "resolve", "root": str(root), "globals": list(names)})
        except _Failure as failure:
            return {name: f"could not be checked: {failure.message}" for name in names}
        return {name: reason for name, reason in answer["unresolved"]}

    def close(self) -> None:
        if self._process is not None:
            process, self._process = self._process, None
            with contextlib.suppress(OSError, ValueError):
                if process.popen.stdin is not None:
                    process.popen.stdin.close()
            if self._next_id:  # a worker never asked anything may still be importing torch: no waiting
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout=5)
            process.kill()
        if self._start_server and self._print is not None:
            self._start_server = False
            start(self.python, self._print)  # after this run, so it never competes with it for the CPU

    def _ready(self) -> dict[str, Any]:
        if self._process is None:
            self._process = self._spawn()
        process = self._process
        if process.ready is None:
            try:
                process.ready = process.receive(self.startup_timeout)
            except _Failure as failure:
                self._process = None
                raise WorkerError(
                    f"the model worker did not start under {self.python} ({failure.message}); it needs torch "
                    "installed there (set `python:` in ckaudit.yaml; `--files-only` skips the model side):\n"
                    f"{failure.stderr[-2000:]}"
                ) from None
        return process.ready

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        self._ready()
        process = self._process
        assert process is not None
        self._next_id += 1
        origin = {"origin": str(self.origin)} if self.origin is not None else {}
        process.send({**request, **origin, "id": self._next_id})
        try:
            answer = process.receive(self.timeout)
        except _Failure as failure:
            process.kill()
            self._process = None  # the next request starts a fresh worker
            self.incidents.append(Incident(failure.kind, failure.message, request["op"], failure.stderr))
            raise
        if "worker_error" in answer:
            raise WorkerError(
                f"the model worker failed on a {request['op']} request:\n{answer['worker_error']}"
            )
        return answer


def _spec_fields(spec: ModelSpec, root: Path) -> dict[str, Any]:
    return {"root": str(root), "factory": spec.factory, "build": spec.build, "kwargs": dict(spec.kwargs)}


def _json_metadata(metadata: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
    if metadata is None:
        return None
    return {str(prefix): {str(k): v for k, v in entry.items()} for prefix, entry in metadata.items()}


def _failed_build(failure: _Failure, root: Path) -> ModelBuild:
    location = last_repository_frame(failure.stderr, root)
    error = ModelError(failure.message, failure.kind, location, failure.stderr[-4000:])
    return ModelBuild(ok=False, error=error)
