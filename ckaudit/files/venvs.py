"""Python environments inside the repository are never scanned, whatever `scan.exclude` says.

A virtualenv (`python -m venv`, virtualenv, uv, poetry's in-project `.venv`) holds `pyvenv.cfg` at its top;
a conda environment holds `conda-meta/`. Their `.pt` files are test data of installed packages (torch ships
some), never the project's checkpoints, so the scan's walk and `init`'s discovery skip such folders
whatever they are called — `env/`, `.venv-gpu/`, `envs/py311/` — and `site-packages` anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path, PurePosixPath


def is_environment(folder: Path) -> bool:
    """A Python environment (a virtualenv: `pyvenv.cfg`; a conda prefix: `conda-meta/`), whatever its name
    (`.venv`, `venv`, `env`, …), or an installation's `site-packages`: installed packages, never the
    project's checkpoints or models."""
    if folder.name == "site-packages":
        return True
    return (folder / "pyvenv.cfg").is_file() or (folder / "conda-meta").is_dir()


def outside_environments(root: Path, files: Iterable[str]) -> list[str]:
    """The root-relative `files` that do not sit inside an environment folder under `root`."""

    @cache
    def inside(folder: str) -> bool:
        if folder in ("", "."):
            return False
        parent = str(PurePosixPath(folder).parent)
        return inside(parent) or is_environment(root / folder)

    return [f for f in files if not inside(str(PurePosixPath(f).parent))]
