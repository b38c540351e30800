"""One rule for where caches live (the git common dir, shared by worktrees) and one atomic writer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ckaudit.atomic import write_atomic
from ckaudit.cache.outcomes import CACHE_VERSION, JsonStore
from ckaudit.cache.store import cache_root
from ckaudit.files.engine import open_scope
from ckaudit.registry.config import Config
from ckaudit.vcs.repo import find_repo
from tests.conftest import git


def test_every_worktree_of_a_clone_shares_one_cache_root(git_repo: Path, tmp_path: Path) -> None:
    (git_repo / "a.txt").write_text("a\n")
    git(git_repo, "add", "a.txt")
    git(git_repo, "commit", "-q", "-m", "one")
    other = tmp_path / "other-worktree"
    git(git_repo, "worktree", "add", "-q", str(other))
    main_root, other_root = cache_root(find_repo(git_repo)), cache_root(find_repo(other))
    assert main_root == other_root == (git_repo / ".git" / "ckaudit").resolve()
    # both caches follow the rule: outcomes and verification results side by side
    assert JsonStore.for_repo(other).directory == main_root / "outcomes" / f"v{CACHE_VERSION}"
    assert open_scope(Config(root=other)).cache.directory == main_root / "verify"


def test_outside_git_the_user_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root(find_repo(tmp_path)) == tmp_path / "xdg" / "ckaudit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root(None) == Path.home() / ".cache" / "ckaudit"


def test_write_atomic_replaces_keeps_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "ckaudit.yaml"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n" and target.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "fresh.json"
    write_atomic(fresh, b"{}")
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.read_bytes() == b"{}" and fresh.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckaudit.yaml", "fresh.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "entry.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]
