"""The real `pre-commit` framework runs the hook from this checkout (`pre-commit try-repo`), in its own
isolated environment without torch; models are built by the worker under the interpreter the registry names.

The hook repository is a clone of this checkout at HEAD, so pre-commit installs its environment once per
session (PRE_COMMIT_HOME is shared) instead of once per uncommitted-changes snapshot.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import GIT_ENV, git, repo_snapshot, requires_torch
from tests.modelrepo import NET, write

pytestmark = [requires_torch, pytest.mark.slow]  # the real pre-commit installs its environment

CHECKOUT = Path(__file__).resolve().parents[2]
PRE_COMMIT = Path(sys.executable).with_name("pre-commit")
BREAKING = NET.replace("nn.Conv2d(3, 8, 3)", "nn.Conv2d(1, 8, 3)")
FORWARD = NET.replace("super().__init__()", "super().__init__()\n        self.scale = 2.0")


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, Path]]:
    if not PRE_COMMIT.exists():
        pytest.skip("pre-commit is not installed beside the test interpreter")
    base = tmp_path_factory.mktemp("pre-commit")
    clone = base / "ckaudit"
    subprocess.run(["git", "clone", "-q", str(CHECKOUT), str(clone)], check=True, env=_env(base))
    rev = git(clone, "rev-parse", "HEAD").strip()
    yield clone, rev, base / "home"


def _env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    return {**env, **GIT_ENV, "HOME": str(home), **(extra or {})}


def try_repo(repo: Path, hook_repo: tuple[Path, str, Path], *files: str) -> subprocess.CompletedProcess[str]:
    clone, rev, home = hook_repo
    command = [
        str(PRE_COMMIT),
        "try-repo",
        str(clone),
        "ckaudit",
        "--ref",
        rev,
        "--verbose",
        "--files",
        *files,
    ]
    env = _env(repo.parent, {"PRE_COMMIT_HOME": str(home)})
    before = repo_snapshot(repo)
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, env=env, timeout=600)
    after = repo_snapshot(repo)
    for key in ("files", "refs", "stash", "symlinks"):
        assert before[key] == after[key], f"{key} changed"
    assert before["git"] == after["git"], "the index or HEAD changed"  # type: ignore[index]
    return result


def test_forward_only_change_passes(model_repo: Path, hook_repo: tuple[Path, str, Path]) -> None:
    write(model_repo, "models/net.py", FORWARD)
    git(model_repo, "add", "models/net.py")
    result = try_repo(model_repo, hook_repo, "models/net.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout


def test_breaking_change_fails_with_layer_shapes_and_line(
    model_repo: Path, hook_repo: tuple[Path, str, Path]
) -> None:
    write(model_repo, "models/net.py", BREAKING)
    git(model_repo, "add", "models/net.py")
    result = try_repo(model_repo, hook_repo, "models/net.py")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Failed" in result.stdout and "conv1.weight" in result.stdout
    assert "[8, 3, 3, 3]" in result.stdout and "[8, 1, 3, 3]" in result.stdout
    assert "models/net.py:9" in result.stdout


def test_partial_staging_and_its_inverse(model_repo: Path, hook_repo: tuple[Path, str, Path]) -> None:
    write(model_repo, "models/net.py", FORWARD)
    git(model_repo, "add", "models/net.py")
    write(model_repo, "models/net.py", BREAKING)  # unstaged: pre-commit stashes it, the hook never sees it
    assert try_repo(model_repo, hook_repo, "models/net.py").returncode == 0
    git(model_repo, "add", "models/net.py")
    write(model_repo, "models/net.py", FORWARD)  # staged break, harmless working tree
    result = try_repo(model_repo, hook_repo, "models/net.py")
    assert result.returncode == 1 and "conv1.weight" in result.stdout
