"""The one walk of a folder outside git: root-relative file paths, pruned folder by folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def walk_files(root: Path, enter: Callable[[str], bool]) -> list[str]:
    """Root-relative POSIX paths of the files under `root`, sorted. `enter("sub/dir/")` decides whether the
    walk goes into a folder, so a pruned tree (.git, node_modules, excluded globs) is never read."""
    found: list[str] = []
    for folder, dirs, names in os.walk(root):
        rel = Path(folder).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        dirs[:] = sorted(d for d in dirs if enter(f"{prefix}{d}/"))
        found.extend(prefix + n for n in names)
    return sorted(found)


def name_of(folder: str) -> str:
    """The last name of a folder path as `walk_files` hands it to `enter` ("sub/dir/" -> "dir")."""
    return folder.rstrip("/").rsplit("/", 1)[-1]
