"""Where ckaudit keeps its caches, (files in them are written by `ckaudit.atomic`).

Every cache lives under one folder per repository: `<git common dir>/ckaudit/` — the common dir, so every
worktree of a clone shares it, and inside `.git`, so it is never committed, never seen by `git status` and
goes away with the clone. Outside a git repository the folder is `$XDG_CACHE_HOME/ckaudit/` (default
`~/.cache/ckaudit/`). Deleting it costs only speed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ckaudit.vcs import GitRepo


def cache_root(repo: GitRepo | None) -> Path:
    """`<git common dir>/ckaudit` for a repository, else the user's cache folder."""
    if repo is not None:
        return repo.common_dir / "ckaudit"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ckaudit"
