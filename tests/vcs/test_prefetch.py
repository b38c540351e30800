"""Trees listed ahead in a thread (blame's walk): the same trees, in order, their blob reads sharing the one
cat-file with the caller's; a git error surfaces at its commit; stopping early leaves nothing running."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ckaudit.errors import GitError
from ckaudit.vcs import Tree, commit_tree, prefetched_trees
from ckaudit.vcs.prefetch import AHEAD
from tests.conftest import git
from tests.vcs.test_repo import commit


def history(repo: Path, count: int) -> list[str]:
    for i in range(count):
        commit(repo, {"pkg/model.py": f"WIDTH = {i}\n", f"pkg/other{i % 3}.py": f"X = {i}\n"})
    return git(repo, "rev-list", "--reverse", "HEAD").split()


def test_trees_are_commit_trees_in_order_and_read_alongside_the_caller(git_repo: Path) -> None:
    shas = history(git_repo, AHEAD * 2 + 3)
    warmed: list[str] = []

    def warm(tree: Tree) -> None:
        assert threading.current_thread() is not threading.main_thread()
        tree.read_many(["pkg/model.py", "pkg/other0.py"])
        warmed.append(tree.commit or "")

    seen = []
    for sha, tree in zip(shas, prefetched_trees(git_repo, shas, warm), strict=True):
        expected = commit_tree(git_repo, sha)  # the caller reads blobs while the thread does too
        assert tree.commit == sha and tree.entries == expected.entries
        assert tree.read_many(["pkg/model.py"]) == expected.read_many(["pkg/model.py"])
        seen.append(tree.read_many(["pkg/model.py"])["pkg/model.py"])
    assert warmed == shas
    assert seen == [f"WIDTH = {i}\n".encode() for i in range(len(shas))]


def test_a_git_error_is_raised_at_its_commit_and_a_failing_warm_up_is_no_error(git_repo: Path) -> None:
    shas = history(git_repo, 3)

    def broken(tree: Tree) -> None:
        raise GitError("a warm-up that fails")

    trees = prefetched_trees(git_repo, [*shas[:2], "0" * 40, shas[2]], broken)
    assert [next(trees).commit, next(trees).commit] == shas[:2]
    with pytest.raises(GitError):
        next(trees)


def test_stopping_early_cancels_what_has_not_started(git_repo: Path) -> None:
    shas = history(git_repo, AHEAD * 3)
    started: list[str] = []
    trees = prefetched_trees(git_repo, shas, lambda tree: started.append(tree.commit or ""))
    assert next(trees).commit == shas[0]
    trees.close()  # the walk raised: the pool is shut down, pending trees are never listed
    assert not [t for t in threading.enumerate() if t.name.startswith("ckaudit-trees")]
    assert len(started) <= AHEAD + 2
