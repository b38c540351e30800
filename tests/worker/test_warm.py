"""The warm build server against the cold worker: same answers, fresh state per session, private socket,
invalidation, crashes and fallbacks. Every server runs in a private per-test directory and is stopped."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ckaudit.compat.check import check_compat
from ckaudit.reader import read_checkpoint
from ckaudit.registry.config import CheckpointEntry, ModelSpec
from ckaudit.worker import warmclient
from ckaudit.worker.client import ModelWorker
from tests.compat.gen import make_case
from tests.compat.test_differential import _checkpoint, _import
from tests.conftest import requires_torch
from tests.modeltools import write
from tests.warmtools import site_paths, statuses, wait_for_server

pytestmark = requires_torch
LINEAR = "from torch import nn\n\n\ndef build():\n    return nn.Linear(3, {width})\n"
SPEC = ModelSpec(name="m", factory="m:build")


def warm_worker(python: str = sys.executable, paths: list[str] | None = None) -> ModelWorker:
    return ModelWorker(python, timeout=60, warm=site_paths() if paths is None else paths)


def start_server(root: Path) -> dict:
    """One cold run, which starts the server when it closes; the server's status once it answers."""
    with warm_worker() as worker:
        assert worker.build(SPEC, root).ok
        assert worker.warm_sessions == 0
    return wait_for_server()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write(tmp_path / "repo", "m.py", LINEAR.format(width=4))
    return tmp_path / "repo"


def test_a_session_after_the_first_run_is_warm_and_fresh(server_dir: Path, root: Path) -> None:
    first = start_server(root)
    for width in (5, 6):  # the model module edited between two runs is never served stale
        write(root, "m.py", LINEAR.format(width=width))
        with warm_worker() as worker:
            build = worker.build(SPEC, root)
            assert worker.warm_sessions == 1
        assert build.ok and build.signature["weight"].shape == (width, 3)
        assert build.sources == ("m.py",)
    assert wait_for_server()["pid"] == first["pid"] and statuses()[0]["sessions"] == 2


@pytest.mark.slow  # several servers and sessions: the full suite runs it
def test_warm_and_cold_agree_on_the_dry_run_fixtures(server_dir: Path, root: Path, tmp_path: Path) -> None:
    import torch

    cases = tmp_path / "cases"
    write(cases, "cases/__init__.py", "")
    prepared = []
    for index in range(0, 330, 11):  # every 11th generated case: all mutations and transforms
        case = make_case(index)
        write(cases, f"cases/case{index}_a.py", case.model_a.source())
        write(cases, f"cases/case{index}_b.py", case.model_b.source())
        model_a = _import(cases / f"cases/case{index}_a.py", f"_warm_case{index}_a").Model()
        checkpoint = cases / f"case{index}.pt"
        torch.save(_checkpoint(model_a, case.transform), checkpoint)  # torch.compile sets an env var: first
        entry = CheckpointEntry(path=checkpoint.name, model="b", key=case.key)
        prepared.append(
            (f"case {index} ({case.mutation}/{case.transform})", entry, read_checkpoint(checkpoint))
        )
    start_server(root)
    with ModelWorker(sys.executable, timeout=60) as cold:
        for context, entry, info in prepared:
            spec = ModelSpec(name="b", factory=f"cases.{Path(entry.path).stem}_b:build")
            expected = check_compat(entry, spec, info, cases, cold)
            with warm_worker() as warm:  # a fresh child for each case
                got = check_compat(entry, spec, info, cases, warm)
                assert warm.warm_sessions == 1, context
            assert (got.loads, got.findings, got.sources) == (
                expected.loads,
                expected.findings,
                expected.sources,
            )
            assert got.build.signature == expected.build.signature, context
            assert got.build.locations == expected.build.locations, context
            assert got.build.distributions == expected.build.distributions, context


CRASHES = {
    "exit": ("import os\n\n\ndef build():\n    os._exit(7)\n", "the worker exited with status 7"),
    "kill": (
        "import os, signal\n\n\ndef build():\n    os.kill(os.getpid(), signal.SIGKILL)\n",
        "the worker was killed by SIGKILL",
    ),
}


@pytest.mark.parametrize("how", sorted(CRASHES))
def test_a_crashing_child_is_reported_like_a_cold_crash(server_dir: Path, root: Path, how: str) -> None:
    first = start_server(root)
    source, message = CRASHES[how]
    write(root, "m.py", source)
    with ModelWorker(sys.executable, timeout=60) as cold:
        expected = cold.build(SPEC, root)
    with warm_worker() as warm:
        got = warm.build(SPEC, root)
        assert warm.warm_sessions == 1
        write(root, "m.py", LINEAR.format(width=4))
        assert warm.build(SPEC, root).ok  # the next request gets a fresh child from the same server
        assert warm.warm_sessions == 2
    assert expected.error is not None and got.error is not None
    assert (got.ok, got.error.kind, got.error.message) == (False, "crashed", message)
    assert (expected.error.kind, expected.error.message) == (got.error.kind, got.error.message)
    assert got.error.location == expected.error.location
    assert wait_for_server()["pid"] == first["pid"]  # the server itself lives on


def test_the_socket_is_private_and_the_server_idles_out(server_dir: Path, root: Path, monkeypatch) -> None:
    monkeypatch.setenv("CKAUDIT_SERVER_IDLE", "2")
    status = start_server(root)
    assert stat.S_IMODE(server_dir.stat().st_mode) == 0o700
    (socket_path,) = warmclient.servers()
    assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600 and socket_path.stat().st_uid == os.getuid()
    deadline = time.monotonic() + 30
    while warmclient.servers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not warmclient.servers(), "the server did not exit after its idle period"
    assert not statuses() and status["idle_exit_s"] == 2


@pytest.mark.skipif(os.getuid() != 0 or not hasattr(os, "setuid"), reason="needs root to act as another uid")
def test_another_uid_is_refused(server_dir: Path, root: Path) -> None:
    start_server(root)
    (socket_path,) = warmclient.servers()
    server_dir.chmod(0o711)  # let the other uid reach the socket: SO_PEERCRED must still turn it away
    server_dir.parent.chmod(0o711)
    socket_path.chmod(0o666)
    probe = (
        "import os, socket, sys\nos.setgid(65534); os.setuid(65534)\ns = socket.socket(socket.AF_UNIX)\n"
        's.connect(sys.argv[1])\ntry:\n    s.sendall(b\'{"op": "status"}\\n\'); answer = s.recv(100)\n'
        "except (ConnectionResetError, BrokenPipeError):  # closed before or while we wrote\n"
        "    answer = b''\nprint(repr(answer))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(socket_path)], capture_output=True, text=True)
    server_dir.chmod(0o700)
    assert result.returncode == 0, result.stderr  # it did connect: only the uid check stands in the way
    assert result.stdout.strip() == "b''"  # closed without an answer
    assert statuses()  # and the server still serves its own user


def test_a_directory_open_to_others_is_never_used(server_dir: Path, root: Path) -> None:
    server_dir.mkdir(mode=0o755)
    server_dir.chmod(0o755)
    with warm_worker() as worker:
        assert worker.build(SPEC, root).ok and worker.warm_sessions == 0
    time.sleep(1.0)
    assert sorted(server_dir.iterdir()) == []  # no server started there


@pytest.mark.parametrize("how", ["disabled", "no-fork", "no-socket-dir"])
def test_fallback_to_the_cold_worker(
    server_dir: Path, root: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    if how == "disabled":
        monkeypatch.setenv("CKAUDIT_NO_SERVER", "1")
    elif how == "no-fork":
        monkeypatch.delattr(os, "fork")
        assert warmclient.unavailable() == "this platform has no fork or Unix sockets"
    else:
        blocker = server_dir.parent / "file"
        blocker.write_text("not a directory")
        monkeypatch.setenv("CKAUDIT_SERVER_DIR", str(blocker / "srv"))
    with warm_worker() as worker:
        build = worker.build(SPEC, root)
        assert build.ok and worker.warm_sessions == 0
    time.sleep(1.0)
    assert not server_dir.exists() or not list(server_dir.glob("*.sock"))


@pytest.mark.slow  # several servers and sessions: the full suite runs it
def test_a_preloaded_package_shadowed_by_the_root_is_not_used(server_dir: Path, root: Path) -> None:
    """The server preloads what sessions imported from site-packages; a root with its own module of that
    name gets its own, as a cold worker would."""
    write(root, "m.py", "import yaml\nfrom torch import nn\n\n\ndef build():\n    return nn.Linear(3, 4)\n")
    start_server(root)
    with warm_worker() as worker:  # this session's import of yaml is learnt and preloaded
        assert worker.build(SPEC, root).ok
    deadline = time.monotonic() + 30
    while wait_for_server()["preloaded"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    write(root, "yaml.py", "WIDTH = 9\n")
    write(
        root,
        "m.py",
        "import yaml\nfrom torch import nn\n\n\ndef build():\n    return nn.Linear(3, yaml.WIDTH)\n",
    )
    with warm_worker() as worker:
        build = worker.build(SPEC, root)
        assert worker.warm_sessions == 1
    assert build.ok and build.signature["weight"].shape == (9, 3) and "yaml.py" in build.sources


@pytest.mark.slow  # several servers and sessions: the full suite runs it
def test_server_status_and_stop_commands(server_dir: Path, root: Path) -> None:
    status = start_server(root)
    shown = subprocess.run(
        [sys.executable, "-m", "ckaudit", "server", "status"], capture_output=True, text=True
    )
    assert shown.returncode == 0 and f"pid {status['pid']}:" in shown.stdout
    stopped = subprocess.run(
        [sys.executable, "-m", "ckaudit", "server", "stop"], capture_output=True, text=True
    )
    assert stopped.returncode == 0 and str(status["pid"]) in stopped.stdout
    deadline = time.monotonic() + 10
    while warmclient.servers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not warmclient.servers()
    shown = subprocess.run(
        [sys.executable, "-m", "ckaudit", "server", "status"], capture_output=True, text=True
    )
    assert "no build server is running" in shown.stdout
