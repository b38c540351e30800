"""Folders `init` never looks into: virtual environments and caches, where `.pt` files belong to installed
packages (a test fixture of some library, a downloaded hub model) and `.py` files to libraries.

A folder is skipped when it holds a `pyvenv.cfg` (any virtualenv, whatever its name: `env/`, `.venv-3.11/`)
or `conda-meta/` (a conda environment), or when it is named `__pycache__`, `.cache`, `site-packages`,
`dist-packages`, `node_modules`, `.git`, `.tox` or `.nox`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from ckaudit.files import is_environment

SKIPPED_NAMES = frozenset(
    {"__pycache__", ".cache", "site-packages", "dist-packages", "node_modules", ".git", ".tox", ".nox"}
)


class SkippedFolders:
    """Answers "is this root-relative path inside a skipped folder?", each folder looked at once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._environment: dict[str, bool] = {}
        self.found: set[str] = set()  # the skipped folders that held something asked about

    def _is_environment(self, folder: str) -> bool:
        if folder not in self._environment:
            self._environment[folder] = is_environment(self.root / folder)
        return self._environment[folder]

    def skipped(self, rel: str) -> bool:
        """Whether `rel` lies in a folder `init` does not look into (virtualenvs, caches, VCS folders); the
        folder is remembered so `init` can say what it passed over."""
        parts = PurePosixPath(rel).parts[:-1]
        for depth, name in enumerate(parts, start=1):
            folder = "/".join(parts[:depth])
            if name in SKIPPED_NAMES or self._is_environment(folder):
                self.found.add(folder)
                return True
        return False

    def keep(self, paths: Iterable[str]) -> list[str]:
        """The paths outside skipped folders."""
        return [p for p in paths if not self.skipped(p)]
