"""The project's own promises: lint and types clean, and the README's --help text is the real one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        # in CI (which sets CI=true) a missing linter is a broken job, not a reason to pass quietly
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{name} is not installed (CI is set: install the `lint` extra)")
        pytest.skip(f"{name} is not installed")
    return found


@pytest.mark.slow  # the linters over the whole tree; run them directly while editing
@pytest.mark.parametrize(
    "command", [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]], ids=" ".join
)
def test_tree_is_clean(command: list[str]) -> None:
    done = subprocess.run([_tool(command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_readme_shows_the_real_help() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "ckaudit", "--help"], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0
    assert done.stdout in (ROOT / "README.md").read_text()
