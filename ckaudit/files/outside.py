"""Checkpoint files that are here but not in git — ignored (`*.pt` in .gitignore) or never added — which is
where most teams keep them. `init` registers them; their signatures go to ckaudit.lock, which is committed."""

from __future__ import annotations

from ckaudit import globs
from ckaudit.files.engine import FileScope, walk_files
from ckaudit.registry import Config
from ckaudit.vcs import ignored


def checkpoints_outside_git(config: Config, scope: FileScope) -> dict[str, str]:
    """path -> "ignored" or "untracked", for files the scan globs select that git does not track."""
    if scope.repo is None or scope.tracked is None:
        return {}  # outside git, the scan already walks the folder
    tracked = scope.tracked
    found = [
        path
        for path in walk_files(scope.root, tuple(config.scan.exclude))
        if path not in tracked and globs.matches(path, config.scan.include)
    ]
    gitignored = ignored(scope.repo, found)
    return {path: "ignored" if path in gitignored else "untracked" for path in found}
