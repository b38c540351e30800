"""The worker in the user's real environment: torch installed by pip into a virtualenv inside the repository
(not reached through a `.pth` file outside it), and the project installed editable from a `src/` layout.

Set up as a user would: no `python:` in ckaudit.yaml (the interpreter is found), the registry written by
`ckaudit register`, the venv gitignored. The venv with torch is installed once per session (about a minute)
and hard-linked into each test's repository.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git, requires_torch
from tests.modelrepo import (
    BLOCKS,
    NET,
    PRE_COMMIT,
    SHAPES,
    assert_cache_transparent,
    readme_hooks,
    run_cli,
    run_pre_commit,
    untouched,
    write,
)

pytestmark = [requires_torch, pytest.mark.slow]

BREAKING = NET.replace("nn.Conv2d(3, 8, 3)", "nn.Conv2d(1, 8, 3)")
MODELS = "version: 1\nmodels:\n  net:\n    factory: {factory}\n    kwargs: {{classes: 4}}\n"


@pytest.fixture(scope="session")
def torch_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with torch really installed into it by pip (the CPU build this suite pins)."""
    import torch

    prefix = tmp_path_factory.mktemp("template") / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(prefix)], check=True)
    subprocess.run(
        [
            str(prefix / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            f"torch=={torch.__version__.split('+')[0]}",
        ],
        check=True,
        timeout=900,
    )
    return prefix


def _install_venv(template: Path, repo: Path) -> Path:
    """The template venv at `repo/.venv` (hard links: instant; a venv finds its prefix from where it is)."""
    subprocess.run(["cp", "-al", str(template), str(repo / ".venv")], check=True)
    write(repo, ".gitignore", ".venv/\n")
    return repo / ".venv" / "bin" / "python"


def _save_checkpoint(path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({key: torch.zeros(shape) for key, shape in SHAPES.items()}, path)


def _project(repo: Path, template: Path, package: str = "models", prefix: str = "") -> None:
    """A model repository as a user has it: code, a checkpoint, the in-repo venv, a registry by `register`."""
    _install_venv(template, repo)
    net = NET.replace("from models.blocks", f"from {package}.blocks")
    write(repo, f"{prefix}{package}/__init__.py", "")
    write(repo, f"{prefix}{package}/net.py", net)
    write(repo, f"{prefix}{package}/blocks.py", BLOCKS)
    _save_checkpoint(repo / "checkpoints" / "net.pt")
    write(repo, "ckaudit.yaml", MODELS.format(factory=f"{package}.net:Net"))
    status, out = run_cli(repo, "register", "checkpoints/net.pt", "--model", "net")
    assert status == 0, out
    assert "python:" not in (repo / "ckaudit.yaml").read_text(encoding="utf-8")


def _json(repo: Path, *argv: str) -> tuple[int, dict[str, object]]:
    status, out = run_cli(repo, *argv, "--format", "json")
    return status, json.loads(out)


def _rules(report: dict[str, object]) -> list[str]:
    checkpoints = report["checkpoints"]
    assert isinstance(checkpoints, list)
    return [f["rule"] for c in checkpoints for f in c["findings"]]


@pytest.fixture
def venv_repo(git_repo: Path, torch_venv: Path) -> Path:
    _project(git_repo, torch_venv)
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "model, checkpoint, registry")
    return git_repo


def test_scan_diagnose_and_check_use_the_repository_venv(venv_repo: Path) -> None:
    """torch lives under the repository root: the worker must not take it for project code."""
    with untouched(venv_repo):
        status, report = _json(venv_repo, "scan")
        assert status == 0 and report["summary"]["ok"] == 1, report  # type: ignore[index]
        assert "model-error" not in _rules(report)
        status, out = run_cli(venv_repo, "diagnose", "checkpoints/net.pt", "--model", "net")
        assert status == 0 and "model-error" not in out, out
    write(venv_repo, "models/net.py", BREAKING)
    with untouched(venv_repo):
        status, report = _json(venv_repo, "check", "--base", "HEAD")
    assert status == 1 and "shape-mismatch" in _rules(report), report
    text = json.dumps(report)
    assert "models/net.py" in text and ".venv" not in text  # locations point at the model, never into torch


def test_init_pairs_the_checkpoint_with_its_model(git_repo: Path, torch_venv: Path) -> None:
    _project(git_repo, torch_venv)
    (git_repo / "ckaudit.yaml").unlink()
    (git_repo / "ckaudit.lock").unlink(missing_ok=True)
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "a model repository before ckaudit")
    status, out = run_cli(git_repo, "init")
    assert status == 0, out
    registry = (git_repo / "ckaudit.yaml").read_text(encoding="utf-8")
    assert re.search(r"path: checkpoints/net\.pt\n\s+model: \w+", registry), registry
    assert ".venv" not in registry  # nothing registered from inside the virtualenv


def test_the_hook_through_real_pre_commit_with_the_venv_inside(venv_repo: Path, tmp_path: Path) -> None:
    if not PRE_COMMIT.exists():
        pytest.skip("pre-commit is not installed beside the test interpreter")
    write(venv_repo, ".pre-commit-config.yaml", readme_hooks())
    git(venv_repo, "add", "-A")
    git(venv_repo, "commit", "-q", "-m", "hooks")
    write(venv_repo, "models/net.py", BREAKING)
    git(venv_repo, "add", "models/net.py")
    result = run_pre_commit(venv_repo, tmp_path, "models/net.py")
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "conv1.weight" in result.stdout, output
    assert "model-error" not in output and "METH_CLASS" not in output and "Traceback" not in output


PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "netpkg"
version = "0.1"

[tool.setuptools.packages.find]
where = ["src"]
"""


@pytest.fixture
def editable_repo(git_repo: Path, torch_venv: Path) -> Iterator[Path]:
    """A src-layout project installed with `pip install -e .` into its own in-repo venv."""
    _project(git_repo, torch_venv, package="netpkg", prefix="src/")
    write(git_repo, "pyproject.toml", PYPROJECT)
    python = git_repo / ".venv" / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", "."], cwd=git_repo, check=True, timeout=600
    )
    for leftover in git_repo.glob("src/*.egg-info"):
        shutil.rmtree(leftover)
    write(git_repo, ".gitignore", ".venv/\n*.egg-info/\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "src layout, installed editable")
    yield git_repo


def test_editable_install_builds_the_index_not_the_working_tree(editable_repo: Path) -> None:
    """The editable install points the interpreter at the working tree's `src/`; the hook's staged side must
    still be the staged code: a breaking edit only in the working tree does not block, a staged one does."""
    write(editable_repo, "src/netpkg/net.py", BREAKING.replace("from models.", "from netpkg."))
    with untouched(editable_repo):
        status, out = run_cli(editable_repo, "hook", "src/netpkg/net.py")
    assert status == 0, out  # nothing staged breaks: the working tree's edit is not what is committed
    git(editable_repo, "add", "src/netpkg/net.py")
    with untouched(editable_repo):
        status, out = run_cli(editable_repo, "hook", "src/netpkg/net.py")
    assert status == 1 and "conv1.weight" in out and "src/netpkg/net.py" in out, out
    with untouched(editable_repo):
        status, report = _json(editable_repo, "scan")
    assert status == 1 and "shape-mismatch" in _rules(report), report


def test_editable_install_hook_is_the_same_cached_and_uncached(editable_repo: Path) -> None:
    """Found by the cache property: `register` built the model before the project was installed (an import
    error) and that outcome was cached, so after `pip install -e .` the hook read HEAD as failing. A build
    that cannot import is never cached."""
    write(editable_repo, "src/netpkg/net.py", BREAKING.replace("from models.", "from netpkg."))
    git(editable_repo, "add", "src/netpkg/net.py")
    run_cli(editable_repo, "hook", "src/netpkg/net.py")  # fills the cache as the first run does
    assert_cache_transparent(editable_repo, ["hook", "src/netpkg/net.py"])
