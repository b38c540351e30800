"""The git layer reads commits, the index and the working tree, and materialises only sources and config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ckaudit.vcs.trees import (
    MAX_BLOB,
    blob_oid,
    commit_tree,
    hook_index_env,
    index_tree,
    materialise,
    resolve_commit,
    work_tree,
)
from tests.conftest import git
from tests.modelrepo import untouched, write


@pytest.fixture
def repo(git_repo: Path) -> Path:
    write(git_repo, "pkg/__init__.py", "")
    write(git_repo, "pkg/mod.py", "VALUE = 1\n")
    write(git_repo, "conf/settings.yaml", "a: 1\n")
    (git_repo / "weights.pt").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    (git_repo / "big.json").write_text("x" * (MAX_BLOB + 1))
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "one")
    return git_repo


def test_commit_tree_materialises_sources_and_config_only(repo: Path) -> None:
    with untouched(repo):
        tree = commit_tree(repo, "HEAD")
        with materialise(tree) as root:
            found = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
            assert (root / "pkg/mod.py").read_text() == "VALUE = 1\n"
        assert not root.exists()  # cleaned up
    assert found == ["conf/settings.yaml", "pkg/__init__.py", "pkg/mod.py"]
    assert tree.oid("pkg/mod.py") == blob_oid(b"VALUE = 1\n")


def test_index_is_staged_content_not_working_tree(repo: Path) -> None:
    write(repo, "pkg/mod.py", "VALUE = 2\n")
    git(repo, "add", "pkg/mod.py")
    write(repo, "pkg/mod.py", "VALUE = 3\n")
    with untouched(repo):
        index = index_tree(repo)
        with materialise(index) as root:
            assert (root / "pkg/mod.py").read_text() == "VALUE = 2\n"
        assert work_tree(repo).read_many(["pkg/mod.py"])["pkg/mod.py"] == b"VALUE = 3\n"
        assert commit_tree(repo, "HEAD").read_many(["pkg/mod.py"])["pkg/mod.py"] == b"VALUE = 1\n"


def test_hook_index_env_follows_git_index_file(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """During `git commit -a` git points GIT_INDEX_FILE at a temporary index: read that one."""
    other = repo / ".git" / "other-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(other)}
    write(repo, "pkg/mod.py", "VALUE = 9\n")
    import subprocess

    subprocess.run(["git", "add", "pkg/mod.py"], cwd=repo, env=env, check=True)
    monkeypatch.setenv("GIT_INDEX_FILE", ".git/other-index")  # relative, as git sometimes gives it
    staged = index_tree(repo, hook_index_env(repo))
    assert staged.read_many(["pkg/mod.py"])["pkg/mod.py"] == b"VALUE = 9\n"
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert index_tree(repo, hook_index_env(repo)).read_many(["pkg/mod.py"])["pkg/mod.py"] == b"VALUE = 1\n"


def test_unborn_head_and_bad_revisions(git_repo: Path) -> None:
    assert resolve_commit(git_repo, "HEAD") is None
    from ckaudit.errors import GitError

    with pytest.raises(GitError):
        commit_tree(git_repo, "no-such-branch")


def test_subfolder_root_sees_root_relative_paths(repo: Path) -> None:
    tree = commit_tree(repo / "pkg", "HEAD")
    assert sorted(tree.entries) == ["__init__.py", "mod.py"]
