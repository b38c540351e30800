"""Progress bars: only for a person at a terminal, never in machine output or CI."""

from __future__ import annotations

import io

import pytest

from ckaudit import progress as progress_mod
from ckaudit.progress import byte_progress, progress, progress_enabled


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    "fmt,tty,env,expected",
    [
        ("text", True, {}, True),
        ("text", False, {}, False),
        ("json", True, {}, False),
        ("sarif", True, {}, False),
        ("github", True, {}, False),
        ("text", True, {"CI": "true"}, False),
        ("text", True, {"GITHUB_ACTIONS": "true"}, False),
        ("text", True, {"CI": ""}, True),
    ],
)
def test_progress_enabled(fmt: str, tty: bool, env: dict[str, str], expected: bool) -> None:
    stream = _Tty() if tty else io.StringIO()
    assert progress_enabled(fmt, stream=stream, environ=env) is expected


def test_disabled_progress_is_a_silent_pass_through(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress(range(5), desc="x", enabled=False)) == [0, 1, 2, 3, 4]
    with byte_progress(100, desc="verify", enabled=False) as bar:
        bar.update(50)
    assert capsys.readouterr().err == ""


def test_enabled_progress_draws_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    err = _Tty()
    monkeypatch.setattr(progress_mod.sys, "stderr", err)
    assert list(progress(iter(range(3)), total=3, desc="models", enabled=True)) == [0, 1, 2]
    with byte_progress(2048, desc="verify", enabled=True) as bar:
        bar.update(2048)
    drawn = err.getvalue()
    assert "models" in drawn and "verify" in drawn
