"""Shared fixtures: real git repositories in temp dirs, and a marker for tests that need torch."""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

# The model-repository fixtures (model_repo, shared_worker, …) serve tests in vcs/, compare/ and model/.
pytest_plugins = ["tests.modelrepo", "tests.warmtools"]

HAS_TORCH = importlib.util.find_spec("torch") is not None
requires_torch = pytest.mark.torch  # skipped by pytest_runtest_setup below where torch is truly absent


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The `torch` marker: skip where torch is not installed at all (the torch-free CI job), never where it
    is installed but broken — that must fail."""
    if not HAS_TORCH and item.get_closest_marker("torch") is not None:
        pytest.skip("torch is not installed")


GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` the way a user would; return stdout."""
    import os

    env = {**os.environ, **GIT_ENV, "HOME": str(repo.parent)}
    env = {k: v for k, v in env.items() if not k.startswith("GIT_") or k in GIT_ENV}
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout


def make_venv(prefix: Path, *, torch: bool) -> Path:
    """A real virtual environment (no pip: a fraction of a second); with `torch`, its site-packages sees this
    test interpreter's (torch included) through a .pth file instead of a second install. Its python."""
    import sys

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    if torch:
        add_torch(prefix)
    return prefix / "bin" / "python"


def add_torch(prefix: Path) -> None:
    """Install torch into the environment at `prefix`, the cheap way: a .pth to this interpreter's."""
    import sys

    site = next((prefix / "lib").glob("python3*/site-packages"))
    ours = [p for p in sys.path if p.endswith("site-packages") and (Path(p) / "torch").is_dir()]
    (site / "torch_from_tests.pth").write_text("\n".join(ours) + "\n", encoding="utf-8")


@pytest.fixture(autouse=True)
def no_build_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test starts the user's warm build server; tests/worker/test_warm.py runs its own, in private
    per-test directories, and stops them."""
    monkeypatch.setenv("CKAUDIT_NO_SERVER", "1")


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """An empty git repository with an author configured."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Test Author")
    git(repo, "config", "user.email", "author@example.com")
    git(repo, "config", "commit.gpgsign", "false")
    return repo


@pytest.fixture
def run_git() -> Callable[..., str]:
    return git


def repo_snapshot(repo: Path) -> dict[str, object]:
    """Everything a read-only command must leave alone: work-tree files (bytes and mode), the index file,
    every ref (loose and packed), HEAD and the stash list."""
    files = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo).as_posix()
        if rel == ".git" or rel.startswith(".git/") or not path.is_file() or path.is_symlink():
            continue
        files[rel] = (path.read_bytes(), path.stat().st_mode)
    git_dir = repo / ".git"
    refs = {
        p.relative_to(git_dir).as_posix(): p.read_bytes()
        for p in sorted((git_dir / "refs").rglob("*"))
        if p.is_file()
    }
    optional = {
        name: (git_dir / name).read_bytes()
        for name in ("index", "HEAD", "packed-refs")
        if (git_dir / name).is_file()
    }
    return {
        "files": files,
        "symlinks": {
            p.relative_to(repo).as_posix(): str(p.readlink()) for p in repo.rglob("*") if p.is_symlink()
        },
        "git": optional,
        "refs": refs,
        "stash": git(repo, "stash", "list"),
        "status": git(
            repo,
            "--no-optional-locks",
            "status",
            "--porcelain=v1",
            "-z",
            "--ignored",
            "--untracked-files=all",
        ),
    }


@pytest.fixture
def snapshot_repo() -> Callable[[Path], dict[str, object]]:
    """`snapshot_repo(repo)` before and after a command; the two must be equal."""
    return repo_snapshot
