"""Small read-only questions to git plumbing (`-z` output, through `proc.run`). Git is read, never written.

Every function takes a `GitRepo` found from the scan root. Paths in and out are relative to that root (which
may be a subfolder of the work tree, like `sample_repo/` inside ckaudit's own repository); outside a git
repository `find_repo` returns None and callers fall back to the folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ckaudit.proc import CommandError, run

_GIT = ("git", "-c", "core.quotepath=off")
_LITERAL = "--literal-pathspecs"  # for commands taking pathspecs: a path with `*` or `:` is just a path


@dataclass(frozen=True)
class GitRepo:
    root: Path  # the folder ckaudit works on (cwd for every git call)
    toplevel: Path  # the work tree's top
    git_dir: Path  # absolute; where caches live
    prefix: str  # root relative to toplevel, posix with a trailing slash ("" at the top)

    def from_toplevel(self, path: str) -> str | None:
        """A toplevel-relative path as root-relative, or None when it lies outside the root."""
        return path[len(self.prefix) :] if path.startswith(self.prefix) else None


@dataclass(frozen=True)
class HistoryHint:
    """Where a missing path went: the last commit that deleted it or renamed it away."""

    commit: str
    subject: str
    date: str
    renamed_to: str | None  # root-relative new path, None for a plain deletion


def _git(repo_root: Path, *args: str, stdin: bytes | None = None, check: bool = True) -> bytes:
    return run([*_GIT, *args], cwd=repo_root, input=stdin, check=check).stdout


def _split_z(data: bytes) -> list[str]:
    return [item for item in data.decode("utf-8", errors="surrogateescape").split("\0") if item]


def find_repo(root: Path) -> GitRepo | None:
    """The repository containing `root`, or None (not a repository, no git installed, bare repository)."""
    try:
        out = run(
            [*_GIT, "rev-parse", "--show-toplevel", "--absolute-git-dir", "--show-prefix"],
            cwd=root,
            check=True,
        ).stdout.decode("utf-8", errors="surrogateescape")
    except (CommandError, NotADirectoryError):
        return None
    lines = out.split("\n")
    if len(lines) < 3 or not lines[0]:
        return None
    return GitRepo(root=root, toplevel=Path(lines[0]), git_dir=Path(lines[1]), prefix=lines[2])


def tracked_files(repo: GitRepo) -> set[str]:
    """Paths in the index under the root (root-relative): what a clone would have."""
    return set(_split_z(_git(repo.root, _LITERAL, "ls-files", "-z", "--cached", "--", ".")))


def ignored(repo: GitRepo, paths: Iterable[str]) -> set[str]:
    """Which of the (untracked) `paths` the repository's ignore rules exclude."""
    wanted = list(paths)
    if not wanted:
        return set()
    stdin = "\0".join(wanted).encode("utf-8", errors="surrogateescape") + b"\0"
    # Exit status 1 means "none ignored"; 128 would be a real error and raises through check below.
    out = run([*_GIT, "check-ignore", "-z", "--stdin"], cwd=repo.root, input=stdin, check=False)
    if out.returncode not in (0, 1):
        raise CommandError(["git", "check-ignore"], out.returncode, out.stderr.decode(errors="replace"))
    return set(_split_z(out.stdout))


def lfs_tracked(repo: GitRepo, path: str) -> bool:
    """Whether `.gitattributes` routes `path` through Git LFS (works for paths that do not exist)."""
    out = _split_z(_git(repo.root, "check-attr", "-z", "filter", "--", path))
    return len(out) >= 3 and out[2] == "lfs"


def history_hint(repo: GitRepo, path: str) -> HistoryHint | None:
    """The most recent commit that removed `path` (deleted or renamed away), with the new name if renamed."""
    fmt = "%H%x00%s%x00%ad"
    log = _git(
        repo.root,
        _LITERAL,
        "log",
        "-1",
        "--diff-filter=D",
        "--date=short",
        f"--format={fmt}",
        "--",
        path,
        check=False,
    )
    fields = log.decode("utf-8", errors="replace").strip("\n").split("\0")
    if len(fields) < 3 or not fields[0]:
        return None
    commit, subject, date = fields[0], fields[1], fields[2]
    return HistoryHint(commit=commit, subject=subject, date=date, renamed_to=_renamed_to(repo, commit, path))


def _renamed_to(repo: GitRepo, commit: str, path: str) -> str | None:
    """Run rename detection over the whole commit (a pathspec would hide the new name) and look for `path`."""
    diff = _git(
        repo.root,
        "diff-tree",
        "-r",
        "-M",
        "--name-status",
        "-z",
        "--no-commit-id",
        f"{commit}^1",
        commit,
        check=False,
    )
    items = _split_z(diff)
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
