"""The client side of the warm build server (warm.py): where it lives, whether it may be used, reaching it.

One server per user and interpreter (the key: the interpreter's path as configured), in a directory only the
user can enter: `$CKAUDIT_SERVER_DIR`, else `$XDG_RUNTIME_DIR/ckaudit`, else `<tmp>/ckaudit-<uid>`; a
directory that is not the user's own or is open to others is never used (the cold worker runs instead).
`CKAUDIT_NO_SERVER=1` turns it off; `CKAUDIT_SERVER_IDLE` sets its idle exit (seconds, default 900).

A session is a `WarmChild`: the same pipes a cold `subprocess.Popen` of server.py has (the client made them
and handed the far ends over with SCM_RIGHTS), its pid, and the exit status the server reports.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ckaudit.cache import code_fingerprint
from ckaudit.worker.warm import is_private, peer_uid

SERVER = Path(__file__).with_name("server.py")
DEFAULT_IDLE = 900.0
HANDSHAKE_TIMEOUT = 30.0  # the server may be importing a package a session used; beyond this, go cold
_VOLATILE = ("PWD", "OLDPWD", "SHLVL", "_")  # shell bookkeeping that changes from one run to the next


def unavailable() -> str | None:
    """Why no warm server can be used here, or None."""
    if os.environ.get("CKAUDIT_NO_SERVER", "").strip() not in ("", "0"):
        return "CKAUDIT_NO_SERVER is set"
    if not hasattr(os, "fork") or not hasattr(socket, "AF_UNIX") or not hasattr(socket, "send_fds"):
        return "this platform has no fork or Unix sockets"
    if not hasattr(socket, "SO_PEERCRED") or not hasattr(os, "posix_spawn"):
        return "this platform cannot check a socket peer's uid"
    return None


def server_dir(create: bool = True) -> Path | None:
    """The private directory of the user's servers; None when it is not private (fail closed)."""
    configured = os.environ.get("CKAUDIT_SERVER_DIR")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if configured:
        folder = Path(configured)
    elif runtime and os.path.isdir(runtime):
        folder = Path(runtime) / "ckaudit"
    else:
        folder = Path(tempfile.gettempdir()) / f"ckaudit-{os.getuid()}"
    if create:
        with contextlib.suppress(OSError):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder if is_private(folder) else None


def server_key(python: str) -> str:
    """One server per interpreter path: the name of its socket and lock files."""
    return hashlib.sha256(os.path.abspath(python).encode()).hexdigest()[:20]


def worker_env() -> dict[str, str]:
    """The environment a cold worker gets (the same for a warm child)."""
    from ckaudit.proc import clean_env

    return clean_env({"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"})


def fingerprint(python: str, paths: Sequence[str], env: Mapping[str, str]) -> str:
    """What a server is only valid for: the interpreter, its import folders as they are now (an install or
    upgrade changes a site-packages folder's mtime), ckaudit's own code and the environment."""
    parts: list[Any] = [os.path.abspath(python), _stat(os.path.realpath(python))]
    parts += [[folder, _stat(folder)] for folder in sorted(set(paths))]  # the probe cache keeps no order
    parts += [code_fingerprint(), sorted((k, v) for k, v in env.items() if k not in _VOLATILE)]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def _stat(path: str) -> list[int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_mtime_ns, info.st_size, info.st_ino]


class WarmChild:
    """A forked worker session, with the subset of `subprocess.Popen` the worker client uses."""

    def __init__(self, control: socket.socket, pid: int, pipes: tuple[IO[bytes], IO[bytes], IO[bytes]]):
        self.control, self.pid = control, pid
        self.stdin, self.stdout, self.stderr = pipes
        self.returncode: int | None = None
        self._buffer = b""

    def poll(self) -> int | None:
        """The session's exit status once the server reported it, else None (as `Popen.poll`)."""
        if self.returncode is None:
            self._read(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit status the server reports (as `Popen.wait`, with its TimeoutExpired)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"warm worker {self.pid}", timeout or 0.0)
            self._read(left)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Signal the forked child directly (same user), e.g. SIGUSR1 for a stack on timeout."""
        if self.returncode is None:
            os.kill(self.pid, sig)

    def _read(self, timeout: float | None) -> None:
        readable, _, _ = select.select([self.control], [], [], timeout)
        if not readable:
            return
        try:
            chunk = self.control.recv(4096)
        except OSError:
            chunk = b""
        if not chunk:  # the server went away without saying how the child ended
            self.returncode = -signal.SIGKILL if _gone(self.pid) else 255
            self.control.close()
            return
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and "exit" in message:
                    self.returncode = int(message["exit"])
                    self.control.close()
                    return


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _connect(path: Path, timeout: float) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    if peer_uid(sock) != os.getuid():  # someone else's process on our socket name: never talk to it
        sock.close()
        return None
    return sock


def _request(path: Path, message: Mapping[str, Any], fds: Sequence[int] = ()) -> tuple[socket.socket, dict]:
    sock = _connect(path, HANDSHAKE_TIMEOUT)
    if sock is None:
        raise OSError("no server")
    try:
        socket.send_fds(sock, [(json.dumps(message) + "\n").encode()], list(fds))
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        answer = json.loads(reply.decode()) if reply.strip() else {}
    except (OSError, ValueError):
        sock.close()
        raise OSError("the server did not answer") from None
    return sock, dict(answer)


def open_session(python: str, print_: str) -> WarmChild | str:
    """A forked worker session from the running server for `python`, or why there is none."""
    folder = server_dir()
    if folder is None:
        return "the server directory is not private"
    path = folder / f"{server_key(python)}.sock"
    if not path.exists():
        return "not running"
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    hello = {"op": "session", "fingerprint": print_, "env": worker_env(), "cwd": os.getcwd()}
    try:
        sock, answer = _request(path, hello, [stdin_r, out_w, err_w])
    except OSError as exc:
        answer, sock = {"refused": str(exc)}, None
    finally:
        for fd in (stdin_r, out_w, err_w):
            os.close(fd)
    if sock is None or "pid" not in answer:
        for fd in (stdin_w, out_r, err_r):
            os.close(fd)
        if sock is not None:
            sock.close()
        return str(answer.get("refused", "refused"))
    sock.settimeout(None)
    pipes = (os.fdopen(stdin_w, "wb"), os.fdopen(out_r, "rb"), os.fdopen(err_r, "rb"))
    return WarmChild(sock, int(answer["pid"]), pipes)


def start(python: str, print_: str) -> bool:
    """Start the server for `python` in the background (it exits at once if one is already starting)."""
    folder = server_dir()
    if folder is None:
        return False
    key = server_key(python)
    idle = os.environ.get("CKAUDIT_SERVER_IDLE") or str(DEFAULT_IDLE)
    argv = [python, str(SERVER), "--warm", str(folder), key, print_, idle]
    try:
        log = os.open(folder / f"{key}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError:
        return False
    try:
        os.posix_spawn(
            python,
            argv,
            worker_env(),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, log, 2),
            ],
            setsid=True,
        )
    except OSError:
        return False
    finally:
        os.close(log)
    return True


def servers() -> list[Path]:
    """The sockets of this user's running (or dead, not yet cleaned) build servers."""
    folder = server_dir(create=False)
    return sorted(folder.glob("*.sock")) if folder is not None else []


def ask(path: Path, op: str) -> dict[str, Any] | None:
    """`status` or `stop` to one server socket; None when nothing answers there."""
    try:
        sock, answer = _request(path, {"op": op})
    except OSError:
        return None
    sock.close()
    return answer


def stop_all(wait: float = 10.0) -> list[int]:
    """Ask every server of this user to stop; the pids that agreed (their sockets are gone on return)."""
    stopped = []
    for path in servers():
        answer = ask(path, "stop")
        if answer and "stopped" in answer:
            stopped.append(int(answer["stopped"]))
    deadline = time.monotonic() + wait
    while any(_alive(pid) for pid in stopped) and time.monotonic() < deadline:
        time.sleep(0.05)
    return stopped


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child (started by this process): reap it
            return False
    return not _gone(pid)
