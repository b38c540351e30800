"""The lines of the model's code that changed between the last commit that loads a checkpoint and the first
that does not: `git diff --unified=0` over the model's source files (both commits' closures, plus the
registry, whose `kwargs`/`build:` count as model code), trimmed for a screen.

Only changed lines are kept (without their indentation), each hunk headed by `path:line` (the line in
the newer commit), so the answer reads like the finding locations; the full diff is one `git diff` away
and the command is printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ckaudit.registry import CONFIG_NAME
from ckaudit.vcs import git

MAX_LINES = 12
_HUNK = re.compile(rb"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass(frozen=True)
class SourceDiff:
    command: str  # the git command that shows it all
    lines: tuple[str, ...]  # `path:line` headers and -/+ lines, in diff order


def trimmed(lines: Sequence[str], command: str, limit: int = MAX_LINES) -> list[str]:
    """At most `limit` lines; the last one then says how many changed lines are left and how to see them."""
    if len(lines) <= limit:
        return list(lines)
    rest = sum(1 for line in lines[limit - 1 :] if line[:1] in "+-")
    return [*lines[: limit - 1], f"… {rest} more changed lines: `{command}`"]


def by_relevance(lines: Sequence[str], focus: Iterable[tuple[str, int]]) -> list[str]:
    """The hunks that touch a line the findings point at (within 3 lines) first, then the other hunks of
    those files, then the rest — each group in diff order — so trimming keeps the lines that matter."""
    hunks: list[list[str]] = []
    for line in lines:
        if line[:1] in "+-" and hunks:
            hunks[-1].append(line)
        else:
            hunks.append([line])
    points = list(focus)

    def rank(hunk: list[str]) -> int:
        path, _, start = hunk[0].rpartition(":")
        if not start.isdigit():
            return 2
        first, last = int(start), int(start) + max(sum(1 for h in hunk if h[:1] == "+"), 1)
        if any(p == path and first - 3 <= line <= last + 3 for p, line in points):
            return 0
        return 1 if any(p == path for p, _ in points) else 2

    return [line for hunk in sorted(hunks, key=rank) for line in hunk]


def source_diff(repo: Path, old: str, new: str, sources: Iterable[str]) -> SourceDiff:
    """The changed lines of the model's sources and ckaudit.yaml between two commits (no context lines),
    with the git command that shows the whole diff."""
    paths = sorted({*sources, CONFIG_NAME})
    command = f"git diff {old[:10]} {new[:10]} -- {' '.join(paths)}"
    out = git(repo, "diff", "--unified=0", "--no-color", "--no-ext-diff", old, new, "--", *paths)
    lines: list[str] = []
    path, header = "", False
    for raw in out.splitlines():
        text = raw.decode("utf-8", "replace").rstrip()
        if raw.startswith(b"diff --git "):
            header = True
        elif header and raw.startswith((b"+++ b/", b"--- a/")):
            path = text[6:]  # the new name, or the old one for a deleted file
        elif (hunk := _HUNK.match(raw)) is not None:
            header = False
            lines.append(f"{path}:{hunk.group(1).decode()}")
        elif not header and raw[:1] in (b"+", b"-"):
            lines.append(f"{text[0]} {text[1:].strip()}")  # indentation dropped: more code fits a line
    return SourceDiff(command, tuple(lines))
