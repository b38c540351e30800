"""`ckaudit blame` on a generated history with known breaking points: a break later reverted, an unbuildable
commit passed over, and a break that arrives through a merge (traced to the branch commit)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import git, requires_torch
from tests.modelrepo import BLOCKS, NET, SharedWorker, run_cli, untouched, write

pytestmark = requires_torch

BREAK_CONV = NET.replace("nn.Conv2d(3, 8, 3)", "nn.Conv2d(1, 8, 3)")
FORWARD = NET.replace("super().__init__()", "super().__init__()\n        self.scale = 2")
BREAK_HEAD = BLOCKS.replace("nn.Linear(width, classes)", "nn.Linear(width * 2, classes)")


@dataclass
class History:
    repo: Path
    commits: list[str]  # first-parent, oldest first
    break_conv: str
    revert: str
    unbuildable: str
    merge: str
    branch_break: str


def commit(repo: Path, message: str, files: dict[str, str] | None = None) -> str:
    for path, text in (files or {}).items():
        write(repo, path, text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def noise(repo: Path, i: int) -> str:
    return commit(repo, f"unrelated change {i}", {"scripts/tool.py": f"print({i})\n"})


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, checkpoint_bytes: bytes) -> History:
    from tests.modelrepo import populate

    repo = tmp_path_factory.mktemp("blame") / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    populate(repo, checkpoint_bytes)
    commits = [commit(repo, "initial model")]
    commits += [noise(repo, i) for i in range(4)]
    commits.append(commit(repo, "forward-only: a scale", {"models/net.py": FORWARD}))
    commits.append(commit(repo, "grey images", {"models/net.py": BREAK_CONV}))
    break_conv = commits[-1]
    commits += [noise(repo, i) for i in range(4, 6)]
    git(repo, "revert", "--no-edit", break_conv)
    commits.append(git(repo, "rev-parse", "HEAD").strip())
    revert = commits[-1]
    commits.append(commit(repo, "typo", {"models/net.py": NET.replace("def __init__", "def __init__(")}))
    unbuildable = commits[-1]
    commits.append(commit(repo, "fix typo", {"models/net.py": NET}))
    commits += [noise(repo, i) for i in range(6, 9)]
    git(repo, "checkout", "-q", "-b", "feature")
    noise(repo, 100)
    branch_break = commit(repo, "wider head", {"models/blocks.py": BREAK_HEAD})
    noise(repo, 101)
    git(repo, "checkout", "-q", "main")
    commits.append(commit(repo, "docs", {"README.md": "docs\n"}))
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge feature", "feature")
    commits.append(git(repo, "rev-parse", "HEAD").strip())
    merge = commits[-1]
    commits += [noise(repo, i) for i in range(9, 14)]
    return History(repo, commits, break_conv, revert, unbuildable, merge, branch_break)


def blame_json(repo: Path, *extra: str) -> tuple[int, dict]:
    with untouched(repo):
        status, out = run_cli(repo, "blame", "checkpoints/net.pt", "--format", "json", *extra)
    return status, json.loads(out)


@pytest.mark.slow  # builds the model at every commit of a branching history
def test_blame_names_breaks_fixes_and_the_merged_commit(history: History, worker: SharedWorker) -> None:
    status, data = blame_json(history.repo)
    assert status == 1  # fails at the newest commit
    walked = [h["commit"] for h in data["history"]]
    assert len(data["history"]) >= 20
    assert set(walked) <= set(history.commits)  # first-parent only: no feature-branch commit
    statuses = {h["commit"]: h["status"] for h in data["history"]}
    assert statuses[history.commits[0]] == "loads"
    assert statuses[history.break_conv] == "fails"
    assert statuses[history.unbuildable] == "unbuildable"
    assert data["breaks"] == [history.break_conv, history.merge]
    assert data["fixes"] == [history.revert]
    assert data["introduced_by"] == {history.merge: history.branch_break}
    changed = data["changes"][history.break_conv]["signature"]["changed"]
    assert changed == [
        {"key": "conv1.weight", "before": [[8, 3, 3, 3], "float32"], "after": [[8, 1, 3, 3], "float32"]}
    ]
    first = data["history"][0]
    assert {"commit", "date", "author", "subject", "status", "findings"} <= set(first)
    assert data["checkpoint"] == "checkpoints/net.pt" and data["model"] == "net"


def test_blame_warm_cache_builds_nothing_and_text_reads_well(history: History, worker: SharedWorker) -> None:
    blame_json(history.repo)
    worker.builds = 0
    status, out = run_cli(history.repo, "blame", "checkpoints/net.pt")
    assert worker.builds == 0
    assert status == 1
    assert "last loads" in out and "first fails" in out and "grey images" in out
    assert "conv1.weight" in out and history.branch_break[:10] in out


def test_blame_refuses_unregistered_paths(history: History) -> None:
    status, _ = run_cli(history.repo, "blame", "checkpoints/nope.pt")
    assert status == 2


def test_blame_refuses_a_revision_that_names_no_commit(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = run_cli(history.repo, "blame", "checkpoints/net.pt", "--rev", "no-such-branch")
    assert status == 2
    assert "'no-such-branch' names no commit" in capsys.readouterr().err


def test_blame_text_is_a_screenful_with_the_changed_lines(history: History, worker: SharedWorker) -> None:
    """Issue 18: last good, first bad, the diff lines that matter; every commit only on --verbose."""
    with untouched(history.repo):
        status, out = run_cli(history.repo, "blame", "checkpoints/net.pt")
        _, verbose = run_cli(history.repo, "blame", "checkpoints/net.pt", "--verbose")
    lines = out.splitlines()
    assert status == 1
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    assert "history:" not in out and "`--verbose` lists them" in out
    assert "changed at models/net.py:9" in out  # the hunk of the break, in the newer commit's numbering
    assert "- self.conv1 = nn.Conv2d(3, 8, 3)" in out and "+ self.conv1 = nn.Conv2d(1, 8, 3)" in out
    assert "models/blocks.py:" in out and "+ return nn.Linear(width * 2, classes)" in out  # the merge's
    assert "print(" not in out  # scripts/tool.py is no model code
    _, data = blame_json(history.repo)
    assert "history:" in verbose
    assert all(f"{h['status']:<11} {h['commit'][:10]}" in verbose for h in data["history"])
    code = data["changes"][history.break_conv]["source_diff"]
    assert code["lines"] == [  # the commit before the break added `scale`; the break dropped it again
        "models/net.py:9",
        "- self.scale = 2",
        "- self.conv1 = nn.Conv2d(3, 8, 3)",
        "+ self.conv1 = nn.Conv2d(1, 8, 3)",
    ]
    assert code["command"].startswith("git diff ") and "models/net.py" in code["command"]
