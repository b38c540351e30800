"""Which interpreter runs the model worker: the project's, since model code imports the project's packages."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ckaudit.errors import ConfigError
from ckaudit.registry.config import Config


def resolve_python(config: Config) -> str:
    """`python:` of ckaudit.yaml (relative to the root), else $VIRTUAL_ENV's, else ROOT/.venv's, else ours."""
    if config.python:
        return _configured(config, config.python)
    candidates = []
    if os.environ.get("VIRTUAL_ENV"):
        candidates.append(Path(os.environ["VIRTUAL_ENV"]) / "bin" / "python")
    candidates.append(config.root / ".venv" / "bin" / "python")
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    return sys.executable


def _configured(config: Config, python: str) -> str:
    if "/" not in python:  # a command name such as python3.11: look it up on PATH
        found = shutil.which(python)
        if found:
            return found
    path = Path(os.path.expanduser(python))
    path = path if path.is_absolute() else config.root / path
    if not path.exists():
        raise ConfigError(str(config.path or "ckaudit.yaml"), None, f"python: {python} does not exist")
    return str(path)
