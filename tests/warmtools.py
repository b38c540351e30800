"""A private warm build server directory per test, and helpers to wait for the server and read its status.

The directory is short (AF_UNIX paths are limited to ~107 bytes) and every server started in it is stopped
when the test ends, so no test leaves a daemon behind.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ckaudit.worker import warmclient


@pytest.fixture
def server_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="cks"))
    folder = base / "srv"
    monkeypatch.delenv("CKAUDIT_NO_SERVER", raising=False)
    monkeypatch.setenv("CKAUDIT_SERVER_DIR", str(folder))
    monkeypatch.setenv("CKAUDIT_SERVER_IDLE", "300")
    try:
        yield folder
    finally:
        for log in folder.glob("*.log"):  # shown with a failing test's captured output
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        warmclient.stop_all()
        shutil.rmtree(base, ignore_errors=True)


def statuses() -> list[dict[str, Any]]:
    return [answer for path in warmclient.servers() if (answer := warmclient.ask(path, "status"))]


def wait_for_server(timeout: float = 120.0, pid: int | None = None) -> dict[str, Any]:
    """The running server's status once it answers (another pid than `pid`, when given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [s for s in statuses() if s.get("pid") != pid]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError("the build server did not start")


def site_paths() -> list[str]:
    """This interpreter's import folders as the interpreter probe reports them (no script folder)."""
    return [p for p in sys.path if p and "site-packages" in p]
