"""The evaluator's per-tree memos (static closure, materialised checkout) are keyed by what a tree is, never
by an id that a dropped tree leaves free: blame creates and drops one tree per commit, and on nanochat's
history a new commit's tree got the id of an earlier, freed one (issue 17)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from ckaudit.cache import JsonStore
from ckaudit.registry.config import Config, ModelSpec
from ckaudit.scan.evaluator import Evaluator
from ckaudit.vcs import commit_tree, index_tree
from tests.conftest import git

SPEC = ModelSpec("m", factory="models.net:Net")


def _commit(repo: Path, files: dict[str, str]) -> str:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "change")
    return git(repo, "rev-parse", "HEAD").strip()


def test_each_commit_gets_its_own_closure_however_trees_come_and_go(git_repo: Path) -> None:
    first = _commit(git_repo, {"models/__init__.py": "", "models/net.py": "X = 1\n"})
    second = _commit(
        git_repo, {"models/net.py": "from models.extra import Y\n", "models/extra.py": "Y = 2\n"}
    )
    evaluator = Evaluator(Config(root=git_repo, models={"m": SPEC}), JsonStore(None))
    seen = []
    for sha in [first, second] * 20:  # trees dropped right away, as blame's walk does
        seen.append((sha, evaluator.sources(commit_tree(git_repo, sha), SPEC).files))
        gc.collect()
    assert {files for sha, files in seen if sha == first} == {
        frozenset({"models/__init__.py", "models/net.py"})
    }
    assert {files for sha, files in seen if sha == second} == {
        frozenset({"models/__init__.py", "models/net.py", "models/extra.py"})
    }
    assert evaluator.identity(commit_tree(git_repo, first)) == evaluator.identity(
        commit_tree(git_repo, first)
    )


def test_a_tree_known_by_its_object_is_kept_while_the_evaluator_lives(git_repo: Path) -> None:
    _commit(git_repo, {"models/__init__.py": "", "models/net.py": "X = 1\n"})
    evaluator = Evaluator(Config(root=git_repo, models={"m": SPEC}), JsonStore(None))
    staged = index_tree(git_repo)
    alive = weakref.ref(staged)
    key = evaluator.identity(staged)
    del staged
    gc.collect()
    assert alive() is not None and evaluator.identity(alive()) == key  # its id cannot go to another tree
