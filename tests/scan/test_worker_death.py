"""A worker that dies is never a verdict about the code, and never cached (SPEC: "A build that dies without an
answer ... is an internal failure (exit 3)"): a model killed by SIGKILL, what the out-of-memory killer sends,
only while an environment variable says so, so "the environment recovers" is a real step, and the breaking
commit that follows must be blocked (issue 21: a cached crash once let it pass as "already fails at HEAD")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git, requires_torch
from tests.modelrepo import BLOCKS, NET, run_cli, untouched, write

pytestmark = [requires_torch, pytest.mark.slow]  # each command starts a real worker (torch imported)

KILLABLE = BLOCKS.replace(
    "from torch import nn\n",
    "import os\nimport signal\n\nfrom torch import nn\n",
).replace(
    "    return nn.Linear(width, classes)\n",
    "    if os.environ.get('CKAUDIT_TEST_KILL'):  # the machine runs out of memory\n"
    "        os.kill(os.getpid(), signal.SIGKILL)\n"
    "    return nn.Linear(width, classes)\n",
)
BREAKING = NET.replace("nn.Conv2d(3, 8, 3)", "nn.Conv2d(1, 8, 3)")
HARMLESS = NET + "\n# a comment\n"


@pytest.fixture
def killable_repo(model_repo: Path) -> Path:
    write(model_repo, "models/blocks.py", KILLABLE)
    git(model_repo, "commit", "-q", "-am", "a model that the OOM killer can kill")
    return model_repo


def outcomes_cached(repo: Path) -> list[Path]:
    return sorted((repo / ".git" / "ckaudit").glob("outcomes/*/outcome/*/*.json"))


def test_a_killed_build_is_exit_3_then_a_breaking_commit_is_blocked(
    killable_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = killable_repo
    write(repo, "models/net.py", HARMLESS)
    git(repo, "add", "models/net.py")
    monkeypatch.setenv("CKAUDIT_TEST_KILL", "1")
    with untouched(repo):
        status, out = run_cli(repo, "hook", "models/net.py")
    said = capsys.readouterr().err
    assert status == 3, out + said
    assert "killed by SIGKILL" in said and "not a verdict about the code" in said, said
    assert "checkpoints/net.pt" in said and "cause: code" not in out
    assert outcomes_cached(repo) == []  # nothing of the dead run is kept

    monkeypatch.delenv("CKAUDIT_TEST_KILL")  # the environment recovers
    write(repo, "models/net.py", BREAKING)
    git(repo, "add", "models/net.py")
    with untouched(repo):
        status, out = run_cli(repo, "hook", "models/net.py")
    assert status == 1, out
    assert "loads at HEAD but not with the staged code" in out and "conv1.weight" in out, out
    assert outcomes_cached(repo)  # complete outcomes are cached


def test_scan_and_check_say_the_worker_died(
    killable_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(killable_repo, "models/net.py", HARMLESS)  # so that `check` has a model to compare
    monkeypatch.setenv("CKAUDIT_TEST_KILL", "1")
    for argv in (["scan"], ["check", "--base", "HEAD"]):
        status, out = run_cli(killable_repo, *argv)
        said = capsys.readouterr().err
        assert status == 3, (argv, out, said)
        assert "died without an answer" in said and "SIGKILL" in said, said
    assert outcomes_cached(killable_repo) == []
    monkeypatch.delenv("CKAUDIT_TEST_KILL")
    status, out = run_cli(killable_repo, "scan")
    assert status == 0, out
