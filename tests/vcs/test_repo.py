"""The one git layer (GitPython): a hook's environment cannot redirect it, blobs come from one persistent
cat-file, and nothing the user owns is written."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ckaudit.errors import GitError
from ckaudit.vcs.repo import find_repo, open_repo
from ckaudit.vcs.trees import commit_tree, index_tree, materialise
from tests.conftest import git


def commit(repo: Path, files: dict[str, str], message: str = "change") -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def test_hook_variables_do_not_redirect_the_calls(
    git_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit(git_repo, {"mine.py": "A = 1\n"})
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    commit(other, {"theirs.py": "B = 2\n"})
    # what a hook run from another repository's git could leave in the environment
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    found = open_repo(git_repo)
    assert found.run("ls-files").decode().split() == ["mine.py"]
    assert set(commit_tree(git_repo, "HEAD").entries) == {"mine.py"}
    assert set(index_tree(git_repo).entries) == {"mine.py"}


def test_blobs_through_one_persistent_cat_file_see_new_commits(git_repo: Path) -> None:
    commit(git_repo, {"pkg/a.py": "A = 1\n"})
    first = commit_tree(git_repo, "HEAD")
    assert first.read_many(["pkg/a.py"]) == {"pkg/a.py": b"A = 1\n"}
    commit(git_repo, {"pkg/a.py": "A = 2\n", "pkg/b.py": "B = 1\n"})  # objects written after cat-file started
    second = commit_tree(git_repo, "HEAD")
    assert second.read_many(["pkg/a.py", "pkg/b.py"]) == {"pkg/a.py": b"A = 2\n", "pkg/b.py": b"B = 1\n"}
    repo = find_repo(git_repo)
    assert repo is not None
    process = repo._batch("--batch")
    assert process.alive() and repo._batch("--batch") is process  # one process served both trees
    with pytest.raises(GitError, match="cat-file"):
        repo.read_blobs(["0" * 40])
    assert repo.blob_sizes(["0" * 40]) == {}  # a missing object is no size, not an error
    head = repo.resolve_commit("HEAD")
    assert head is not None
    with pytest.raises(GitError, match="is commit, not a blob"):
        repo.read_blobs([head])
    b_oid = second.oid("pkg/b.py") or ""
    assert repo.read_blobs([b_oid]) == {b_oid: b"B = 1\n"}  # in step again after the errors


def test_reading_writes_nothing(git_repo: Path, snapshot_repo: Callable[[Path], dict[str, object]]) -> None:
    commit(git_repo, {"models/net.py": "X = 1\n", "ckaudit.yaml": "version: 1\n"})
    (git_repo / "models" / "net.py").write_text("X = 2\n")  # an unstaged change: the index is stale
    before = snapshot_repo(git_repo)
    index_stat = os.stat(git_repo / ".git" / "index")
    with materialise(index_tree(git_repo)) as folder:
        assert (folder / "models" / "net.py").read_text() == "X = 1\n"
    with materialise(commit_tree(git_repo, "HEAD")) as folder:
        assert (folder / "ckaudit.yaml").is_file()
    assert open_repo(git_repo).resolve_commit("HEAD~5") is None
    assert snapshot_repo(git_repo) == before
    assert os.stat(git_repo / ".git" / "index").st_mtime_ns == index_stat.st_mtime_ns


def test_outside_a_repository(tmp_path: Path) -> None:
    assert find_repo(tmp_path) is None
    with pytest.raises(GitError, match="not inside a git work tree"):
        open_repo(tmp_path)
