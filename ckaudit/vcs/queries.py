"""Small read-only questions to git plumbing (`-z` output, through `GitRepo.run`). Git is read, never written.

Every function takes a `GitRepo` found from the scan root. Paths in and out are relative to that root (which
may be a subfolder of the work tree, like `sample_repo/` inside ckaudit's own repository); outside a git
repository `find_repo` returns None and callers fall back to the folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ckaudit.vcs.repo import GitRepo, find_repo, nul_separated

__all__ = ["GitRepo", "HistoryHint", "find_repo", "history_hint", "ignored", "lfs_tracked", "tracked_files"]

_LITERAL = "--literal-pathspecs"  # for commands taking pathspecs: a path with `*` or `:` is just a path


@dataclass(frozen=True)
class HistoryHint:
    """Where a missing path went: the last commit that deleted it or renamed it away."""

    commit: str
    subject: str
    date: str
    renamed_to: str | None  # root-relative new path, None for a plain deletion


def tracked_files(repo: GitRepo) -> set[str]:
    """Paths in the index under the root (root-relative): what a clone would have."""
    return set(nul_separated(repo.run(_LITERAL, "ls-files", "-z", "--cached", "--", ".")))


def ignored(repo: GitRepo, paths: Iterable[str]) -> set[str]:
    """Which of the (untracked) `paths` the repository's ignore rules exclude."""
    wanted = list(paths)
    if not wanted:
        return set()
    stdin = "\0".join(wanted).encode("utf-8", errors="surrogateescape") + b"\0"
    # Exit status 1 means "none ignored"; 128 would be a real error and raises.
    return set(nul_separated(repo.run("check-ignore", "-z", "--stdin", input=stdin, ok=(0, 1))))


def lfs_tracked(repo: GitRepo, path: str) -> bool:
    """Whether `.gitattributes` routes `path` through Git LFS (works for paths that do not exist)."""
    out = nul_separated(repo.run("check-attr", "-z", "filter", "--", path))
    return len(out) >= 3 and out[2] == "lfs"


def history_hint(repo: GitRepo, path: str) -> HistoryHint | None:
    """The most recent commit that removed `path` (deleted or renamed away), with the new name if renamed."""
    fmt = "%H%x00%s%x00%ad"
    log = repo.run(
        _LITERAL,
        "log",
        "-1",
        "--diff-filter=D",
        "--date=short",
        f"--format={fmt}",
        "--",
        path,
        ok=None,  # no answer (no commits yet) is no hint
    )
    fields = log.decode("utf-8", errors="replace").strip("\n").split("\0")
    if len(fields) < 3 or not fields[0]:
        return None
    commit, subject, date = fields[0], fields[1], fields[2]
    return HistoryHint(commit=commit, subject=subject, date=date, renamed_to=_renamed_to(repo, commit, path))


def _renamed_to(repo: GitRepo, commit: str, path: str) -> str | None:
    """Run rename detection over the whole commit (a pathspec would hide the new name) and look for `path`."""
    diff = repo.run(
        "diff-tree",
        "-r",
        "-M",
        "--name-status",
        "-z",
        "--no-commit-id",
        f"{commit}^1",
        commit,
        ok=None,  # a root commit has no parent: no rename
    )
    items = nul_separated(diff)
    old = repo.prefix + path
    i = 0
    while i < len(items):
        status = items[i]
        if status.startswith(("R", "C")) and i + 2 < len(items):
            if status.startswith("R") and items[i + 1] == old:
                return repo.from_toplevel(items[i + 2]) or items[i + 2]
            i += 3
        else:
            i += 2
    return None
