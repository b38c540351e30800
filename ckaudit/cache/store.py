"""Where ckaudit keeps its caches, and the one way any file is written: atomically.

Every cache lives under one folder per repository: `<git common dir>/ckaudit/` — the common dir, so every
worktree of a clone shares it, and inside `.git`, so it is never committed, never seen by `git status` and
goes away with the clone. Outside a git repository the folder is `$XDG_CACHE_HOME/ckaudit/` (default
`~/.cache/ckaudit/`). Deleting it costs only speed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ckaudit.vcs.repo import GitRepo


def cache_root(repo: GitRepo | None) -> Path:
    """`<git common dir>/ckaudit` for a repository, else the user's cache folder."""
    if repo is not None:
        return repo.common_dir / "ckaudit"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ckaudit"


def write_atomic(target: Path, data: str | bytes) -> None:
    """Write a temporary file beside `target`, then rename it over `target`: a reader (another terminal,
    another worktree) sees the old content or the new, never half of it. The file keeps `target`'s
    permissions when it exists (else the umask's). Raises OSError; the temporary file never stays behind."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
