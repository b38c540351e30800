"""The trimmed source diff blame prints: changed lines only, cut with a count and the command for all."""

from __future__ import annotations

from pathlib import Path

from ckaudit.compare.sourcediff import by_relevance, source_diff, trimmed
from tests.conftest import git


def test_changed_lines_of_the_model_files_only(git_repo: Path) -> None:
    (git_repo / "model.py").write_text("class M:\n    width = 64\n    depth = 2\n")
    (git_repo / "tool.py").write_text("print(1)\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "one")
    old = git(git_repo, "rev-parse", "HEAD").strip()
    (git_repo / "model.py").write_text("class M:\n    width = 128\n    depth = 2\n")
    (git_repo / "tool.py").write_text("print(2)\n")
    git(git_repo, "commit", "-q", "-am", "two")
    new = git(git_repo, "rev-parse", "HEAD").strip()
    diff = source_diff(git_repo, old, new, ["model.py"])
    assert diff.lines == ("model.py:2", "- width = 64", "+ width = 128")
    assert diff.command == f"git diff {old[:10]} {new[:10]} -- ckaudit.yaml model.py"


def test_trimmed_says_what_is_left_and_how_to_see_it() -> None:
    lines = ["a.py:1", *(f"+ line {i}" for i in range(20))]
    short = trimmed(lines, "git diff x y", limit=5)
    assert short == ["a.py:1", "+ line 0", "+ line 1", "+ line 2", "… 17 more changed lines: `git diff x y`"]
    assert trimmed(lines[:3], "git diff x y", limit=5) == lines[:3]


def test_hunks_at_the_findings_lines_come_first() -> None:
    lines = ["a.py:3", "- x = 1", "+ x = 2", "b.py:40", "+ pass", "model.py:12", "- w = 64", "+ w = 128"]
    ordered = by_relevance(lines, [("model.py", 14), ("b.py", 1)])
    assert ordered == [
        "model.py:12",
        "- w = 64",
        "+ w = 128",
        "b.py:40",
        "+ pass",
        "a.py:3",
        "- x = 1",
        "+ x = 2",
    ]
    assert by_relevance(lines, []) == lines
