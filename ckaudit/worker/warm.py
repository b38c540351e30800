"""The warm build server, daemon side: torch imported once, a freshly forked child for every client session.

Started by the client (warmclient.py) as `python server.py --warm DIR KEY FINGERPRINT IDLE` under the
project's interpreter; server.py loads this file by path (standard library only, like its other siblings).

- It holds DIR/KEY.lock (one server per key), imports torch (server.prepare) and the third-party modules
  earlier sessions imported from site-packages (DIR/KEY.preload.json), then listens on DIR/KEY.sock (0600,
  in a 0700 directory) and accepts only its own uid (SO_PEERCRED).
- A session request carries the client's environment, its cwd and three pipe ends (SCM_RIGHTS). The server
  forks; the child puts the pipes on fds 0, 1, 2 and runs `server.session()`, the very code a cold worker
  runs, so the client speaks the same protocol to either. No project code ever runs in the server itself.
- The child's exit status goes back on the control connection (the client is not its parent); a crash
  ends the child only. A request with another fingerprint (interpreter, site-packages, ckaudit or the
  environment changed) is refused, and the server steps down so that a fresh one can start.
- It exits after IDLE seconds without a session, on `stop`, or when its socket file is removed.
"""

from __future__ import annotations

import contextlib
import faulthandler
import fcntl
import importlib
import importlib.machinery
import json
import os
import selectors
import signal
import site
import socket
import stat
import struct
import sys
import time
import traceback
from typing import Any

MAX_MESSAGE = 1 << 20
MAX_PRELOAD = 5000  # module names remembered per server key


def serve(server: Any, argv: list[str], cold_modules: set[str]) -> None:
    directory, key, fingerprint, idle = argv[0], argv[1], argv[2], float(argv[3])
    if not is_private(directory):
        print(f"ckaudit build server: {directory} is not private to this user; not serving", file=sys.stderr)
        return
    lock = _lock(os.path.join(directory, f"{key}.lock"))
    if lock is None:
        return  # another server for this key is starting or running
    Daemon(server, directory, key, fingerprint, idle, cold_modules, lock).run()


def is_private(directory: str | os.PathLike[str]) -> bool:
    """A real directory of this user's, closed to group and others."""
    try:
        info = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077 == 0


def _lock(path: str) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def peer_uid(conn: socket.socket) -> int | None:
    """The connecting process's uid (Linux SO_PEERCRED); None where the platform cannot say."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    raw = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    return int(struct.unpack("3i", raw)[1])


def under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class Child:
    def __init__(self, conn: socket.socket, report: int) -> None:
        self.conn, self.report, self.data = conn, report, b""


class Daemon:
    def __init__(
        self, server: Any, directory: str, key: str, fingerprint: str, idle: float, cold: set[str], lock: int
    ) -> None:
        self.server, self.directory, self.fingerprint, self.idle = server, directory, fingerprint, idle
        self.cold, self.lock = cold, lock
        self.path = os.path.join(directory, f"{key}.sock")
        self.preload_file = os.path.join(directory, f"{key}.preload.json")
        self.base_path = list(sys.path)
        self.base_environ = dict(os.environ)
        self.failed: set[str] = set()
        self.children: dict[int, Child] = {}
        self.sessions = 0
        self.started = time.time()
        self.stopping = False
        self.listener: socket.socket | None = None
        self.selector = selectors.DefaultSelector()

    def busy(self) -> bool:
        """Still listening, or children still running (a method: the loop re-reads what handlers change)."""
        return self.listener is not None or bool(self.children)

    def run(self) -> None:
        os.chdir("/")
        self.prewarm()
        self.preload(self.remembered())
        self.listener = self.bind()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.wake = (wake_r, wake_w)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(wake_r, selectors.EVENT_READ, "wake")
        last = time.monotonic()
        while self.busy():
            if self.children:
                last = time.monotonic()
            left = self.idle - (time.monotonic() - last)
            if self.listener is not None and (left <= 0 or not self.still_ours()):
                self.step_down()
                continue
            for event, _ in self.selector.select(timeout=min(max(left, 0.05), 5.0)):
                self.dispatch(event)
            self.reap()

    def bind(self) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # a dead server's socket: we hold the lock, so no live one owns it
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(self.path)
        finally:
            os.umask(old)
        listener.listen(16)
        self.inode = os.stat(self.path).st_ino
        return listener

    def still_ours(self) -> bool:
        with contextlib.suppress(OSError):
            return os.stat(self.path).st_ino == self.inode
        return False

    def step_down(self) -> None:
        """Stop accepting, free the socket name and the lock; running children are still waited for."""
        if self.listener is None:
            return
        self.selector.unregister(self.listener)
        self.listener.close()
        self.listener = None
        if self.still_ours():
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        os.close(self.lock)

    def dispatch(self, event: selectors.SelectorKey) -> None:
        if event.data == "accept" and self.listener is not None:
            with contextlib.suppress(OSError):
                conn, _ = self.listener.accept()
                self.accept(conn)
        elif event.data == "wake":
            with contextlib.suppress(OSError):
                os.read(event.fd, 4096)
        elif isinstance(event.data, Child):
            chunk = os.read(event.fd, 65536)
            event.data.data += chunk
            if not chunk:
                self.selector.unregister(event.fd)

    def accept(self, conn: socket.socket) -> None:
        """Fails closed: only this uid, only this server's fingerprint (a stale one: step down)."""
        if peer_uid(conn) != os.getuid():
            conn.close()  # fails closed: another uid, or a platform that cannot tell
            return
        conn.settimeout(10)
        try:
            request, fds = _receive(conn)
        except (OSError, ValueError):
            conn.close()
            return
        op = request.get("op")
        if op == "session" and request.get("fingerprint") == self.fingerprint and len(fds) == 3:
            self.fork(conn, fds, request)
            return
        for fd in fds:
            os.close(fd)
        if op == "session":
            _reply(conn, {"refused": "stale"})
            self.step_down()  # the interpreter, its packages or ckaudit changed: a fresh server must start
        elif op == "status":
            _reply(conn, self.status())
        elif op == "stop":
            _reply(conn, {"stopped": os.getpid()})
            self.step_down()
        else:
            _reply(conn, {"refused": f"unknown request {op!r}"})
        conn.close()

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "python": sys.executable,
            "started": self.started,
            "sessions": self.sessions,
            "running": len(self.children),
            "idle_exit_s": self.idle,
            "preloaded": len(set(sys.modules) - self.cold),
        }

    def fork(self, conn: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
        report_r, report_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            status = 1
            try:
                os.close(report_r)
                self.become_worker(conn, fds, request, report_w)
                status = 0
            except BaseException:
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os._exit(status)
        os.close(report_w)
        for fd in fds:
            os.close(fd)
        self.sessions += 1
        child = Child(conn, report_r)
        self.children[pid] = child
        self.selector.register(report_r, selectors.EVENT_READ, child)
        with contextlib.suppress(OSError):
            _reply(conn, {"pid": pid})

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            self.finish(child, os.waitstatus_to_exitcode(status))

    def finish(self, child: Child, code: int) -> None:
        with contextlib.suppress(OSError):
            _reply(child.conn, {"exit": code})
        child.conn.close()
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(child.report)
        with contextlib.suppress(OSError):
            while chunk := os.read(child.report, 65536):
                child.data += chunk
        os.close(child.report)
        with contextlib.suppress(ValueError, TypeError):
            self.learn([str(name) for name in json.loads(child.data.decode())])

    def prewarm(self) -> None:
        """What every session would compute the same way while the fingerprint holds (server.prewarm)."""
        with contextlib.suppress(Exception):
            self.server.prewarm()

    def remembered(self) -> list[str]:
        broken = (OSError, ValueError, TypeError)
        with contextlib.suppress(*broken), open(self.preload_file, encoding="utf-8") as handle:
            return [str(name) for name in json.load(handle)][:MAX_PRELOAD]
        return []

    def learn(self, names: list[str]) -> None:
        """Remember what a session imported from site-packages, and import it here for the next ones."""
        new = [name for name in names if name not in sys.modules and name not in self.failed]
        if not new:
            return
        merged = sorted(set(self.remembered()) | set(new))[:MAX_PRELOAD]
        temporary = f"{self.preload_file}.{os.getpid()}.tmp"
        with contextlib.suppress(OSError):
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(merged, handle)
            os.replace(temporary, self.preload_file)
        self.preload(new)

    def preload(self, names: list[str]) -> None:
        for name in names:
            if name in sys.modules or name in self.failed:
                continue
            try:
                importlib.import_module(name)
            except BaseException:  # a package failing to import here is simply not preloaded
                self.failed.add(name)
        sys.path[:] = self.base_path  # a package that appended to sys.path does not change the sessions'
        os.environ.clear()
        os.environ.update(self.base_environ)
        with contextlib.suppress(Exception):
            self.server._META.warm_decompositions()
        self.server.remember_module_paths()

    def become_worker(
        self, conn: socket.socket, fds: list[int], request: dict[str, Any], report: int
    ) -> None:
        """In the forked child: the client's pipes on 0, 1, 2, its environment and cwd, then a session."""
        os.setsid()  # the client's timeout kills the child's process group, as it does a cold worker's
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.selector.close()
        for fd in (*self.wake, self.lock):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.listener is not None:
            self.listener.close()
        for other in self.children.values():
            other.conn.close()
            with contextlib.suppress(OSError):
                os.close(other.report)
        conn.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in dict(request.get("env") or {}).items()})
        os.chdir(str(request.get("cwd") or "/"))
        sys.path[:] = self.base_path
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
        sys.stderr.reconfigure(line_buffering=True, write_through=True)
        sys.stdout = sys.stderr
        faulthandler.enable()
        if hasattr(signal, "SIGUSR1"):
            faulthandler.register(signal.SIGUSR1, all_threads=False)
        preloaded = set(sys.modules) - self.cold
        self.server.COLD_MODULES = set(self.cold)
        self.server.ON_ENTER.append(_Shadows(preloaded, self.cold).drop)
        worker = self.server.session()
        found = _site_modules(preloaded | self.cold, [str(root) for root in worker.roots.seen])
        with contextlib.suppress(OSError):
            os.write(report, json.dumps(found).encode())


class _Shadows:
    """Preloaded packages a root provides itself: a cold worker would import the root's, so drop ours."""

    def __init__(self, preloaded: set[str], cold: set[str]) -> None:
        self.tops = {name.partition(".")[0] for name in preloaded} - {name.partition(".")[0] for name in cold}
        self.cold = cold

    def drop(self, root: str) -> None:
        for top in sorted(self.tops):
            if importlib.machinery.PathFinder.find_spec(top, [root]) is None:
                continue
            for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
                if name not in self.cold:
                    del sys.modules[name]


def _site_modules(known: set[str], roots: list[str]) -> list[str]:
    """Modules this session imported from site-packages (outside every root it built from)."""
    dirs = [os.path.realpath(d) for d in [*site.getsitepackages(), site.getusersitepackages()]]
    dirs = [d for d in dirs if not any(under(os.path.realpath(root), d) for root in roots)]
    found = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name in known or not isinstance(path, str) or name.startswith("_ckaudit"):
            continue
        real = os.path.realpath(path)
        if any(under(real, d) for d in dirs):  # an in-repo .venv's site-packages included
            found.append(name)
    return sorted(found)


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, MAX_MESSAGE, 3)
    fds = list(fds)
    while not data.endswith(b"\n") and len(data) < MAX_MESSAGE:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    request = json.loads(data.decode())
    if not isinstance(request, dict):
        raise ValueError("not a request")
    return request, fds


def _reply(conn: socket.socket, message: dict[str, Any]) -> None:
    conn.sendall((json.dumps(message) + "\n").encode())
