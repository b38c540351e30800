"""The static import closure finds a model's files without torch, following absolute and relative imports."""

from __future__ import annotations

from pathlib import Path

from ckaudit.globs import glob_regex
from ckaudit.registry.config import ModelSpec
from ckaudit.vcs.trees import commit_tree, work_tree
from ckaudit.worker.sources import imported_modules, model_sources, static_closure
from tests.conftest import git
from tests.modelrepo import write


def make(repo: Path) -> None:
    write(repo, "models/__init__.py", "from .net import Net\n")
    write(repo, "models/net.py", "import torch\nfrom . import layers\nfrom .util.acts import relu\n")
    write(repo, "models/layers.py", "from models.util import acts\n")
    write(repo, "models/util/__init__.py", "")
    write(repo, "models/util/acts.py", "import math\n")
    write(repo, "models/unused.py", "")
    write(repo, "scripts/train.py", "from models import Net\n")
    write(repo, "configs/net.yaml", "width: 3\n")


def test_closure_follows_relative_and_absolute_imports(git_repo: Path) -> None:
    make(git_repo)
    spec = ModelSpec(name="net", factory="models.net:Net", sources=("configs/*.yaml",))
    found = static_closure(work_tree(git_repo), spec)
    assert found.files == {
        "models/__init__.py",
        "models/net.py",
        "models/layers.py",
        "models/util/__init__.py",
        "models/util/acts.py",
        "configs/net.yaml",
    }
    # imports that name no file here are still candidates: a new torch.py at the root would shadow torch
    assert "torch.py" in found.candidates and "models/unused.py" not in found.candidates


def test_closure_from_build_code_and_committed_tree(git_repo: Path) -> None:
    make(git_repo)
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "m")
    spec = ModelSpec(name="b", build="from models.layers import acts\nmodel = None\n")
    files = static_closure(commit_tree(git_repo, "HEAD"), spec).files
    assert files == {
        "models/__init__.py",
        "models/net.py",
        "models/layers.py",
        "models/util/__init__.py",
        "models/util/acts.py",
    }


def test_reported_sources_join_the_closure(git_repo: Path) -> None:
    make(git_repo)
    spec = ModelSpec(name="net", factory="models.util.acts:relu")
    sources = model_sources(work_tree(git_repo), spec, reported=["models/unused.py", "gone.py"])
    assert "models/unused.py" in sources.files and "gone.py" not in sources.files
    assert "gone.py" in sources.candidates


def test_imported_modules_tolerates_bad_syntax() -> None:
    assert imported_modules(b"def (:\n", "a.py") == set()
    assert imported_modules(b"from .. import x\n", "a/b/c.py") == {"a", "a.x"}


def test_glob_regex() -> None:
    assert glob_regex("models/**/*.py").match("models/a/b/c.py")
    assert glob_regex("models/**/*.py").match("models/c.py")
    assert not glob_regex("models/*.py").match("models/a/c.py")
