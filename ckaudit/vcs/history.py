"""Commits in history: `git log` read into `Commit` records (blame walks them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ckaudit.vcs.trees import git

# fields NUL-separated, records ended by RS: a subject may hold anything but those two
_FORMAT = "%H%x00%P%x00%an%x00%aI%x00%s%x1e"


@dataclass(frozen=True)
class Commit:
    sha: str
    parents: tuple[str, ...]
    author: str
    date: str
    subject: str


def log(repo: Path, revs: Iterable[str], paths: Iterable[str], first_parent: bool = True) -> list[Commit]:
    """Commits oldest first, touching `paths`."""
    args = ["log", "--reverse", f"--format={_FORMAT}", *(["--first-parent"] if first_parent else []), *revs]
    out = git(repo, *args, "--", *paths).decode("utf-8", "replace")
    commits = []
    for record in out.split("\x1e"):
        fields = record.strip("\n").split("\0")
        if len(fields) == 5:
            sha, parents, author, date, subject = fields
            commits.append(Commit(sha, tuple(parents.split()), author, date, subject))
    return commits
