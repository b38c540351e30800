"""A headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`): load a page,
collect console errors, uncaught exceptions and every network request, evaluate a script in the page and
take a screenshot. Standard library only (no browser-automation package in the test dependencies)."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def chromium() -> str | None:
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


@dataclass
class PageVisit:
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    value: Any = None  # what the evaluated script returned
    screenshot: bytes = b""


class _Pipe:
    """DevTools messages: NUL-terminated JSON, commands on the child's fd 3, replies on its fd 4."""

    def __init__(self, binary: str, profile: str) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child_r, from_child_w)]
            os.dup2(high[0], 3)  # copies above 10 first: neither original can be overwritten by the other
            os.dup2(high[1], 4)
            os.set_inheritable(3, True)  # dup2 onto itself keeps os.pipe's close-on-exec
            os.set_inheritable(4, True)

        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            args, preexec_fn=wire, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, session: str | None = None, timeout: float = 30, **params: Any) -> Any:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._read(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result")
            self.events.append(reply)
        raise TimeoutError(method)

    def wait_for(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(method)
            self.events.append(self._read(deadline))

    def _read(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_child], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("no message from chromium")
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_child)
        os.close(self._from_child)


def visit(
    page: Path, script: str, *, width: int = 1280, height: int = 900, full_page: bool = True
) -> PageVisit:
    """Open `page` from file://, run `script` (an expression; its JSON value is returned), screenshot it."""
    binary = chromium()
    assert binary is not None, "chromium is not installed"
    with tempfile.TemporaryDirectory() as profile:
        pipe = _Pipe(binary, profile)
        try:
            return _visit(pipe, page, script, width, height, full_page)
        finally:
            pipe.close()


def _visit(pipe: _Pipe, page: Path, script: str, width: int, height: int, full_page: bool) -> PageVisit:
    target = pipe.send("Target.createTarget", url="about:blank")["targetId"]
    session = pipe.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.send(f"{domain}.enable", session)
    pipe.send(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=width < 600,
    )
    pipe.send("Page.navigate", session, url=page.resolve().as_uri())
    pipe.wait_for("Page.loadEventFired")
    result = pipe.send("Runtime.evaluate", session, expression=script, returnByValue=True)
    shot: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
    if full_page:
        size = pipe.send("Page.getLayoutMetrics", session)["cssContentSize"]
        shot["clip"] = {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
    png = pipe.send("Page.captureScreenshot", session, **shot)["data"]
    visit = PageVisit(value=result["result"].get("value"), screenshot=base64.b64decode(png))
    for event in pipe.events:
        _record(event, visit)
    return visit


def _record(event: dict[str, Any], visit: PageVisit) -> None:
    method, params = event.get("method"), event.get("params") or {}
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
        visit.errors.append(f"console.{params['type']}: {params.get('args')}")
    elif method == "Runtime.exceptionThrown":
        visit.errors.append(f"exception: {params.get('exceptionDetails')}")
    elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        visit.errors.append(f"log: {params['entry'].get('text')}")
    elif method == "Network.requestWillBeSent":
        visit.requests.append(params.get("request", {}).get("url", ""))
    elif method == "Network.loadingFailed":
        visit.errors.append(f"load failed: {params.get('errorText')}")
