"""Interpreter discovery with real virtual environments: one that sees this interpreter's torch (through a
.pth file) and one that does not, the way pre-commit's hook environment does not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ckaudit.registry.config import Config
from ckaudit.worker.interpreter import InterpreterNotFound, find_interpreter, resolve_python
from tests.conftest import add_torch, make_venv, requires_torch

pytestmark = requires_torch


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No active environment variables, HOME without poetry/pipenv folders, PATH with a torch-less python3,
    and ckaudit's own interpreter standing for pre-commit's (no torch)."""
    for name in ("VIRTUAL_ENV", "CONDA_PREFIX", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    hook_env = make_venv(tmp_path / "hook-env", torch=False)
    git_dir = str(Path(shutil.which("git") or "/usr/bin/git").parent)
    monkeypatch.setenv("PATH", os.pathsep.join([str(hook_env.parent), git_dir]))
    monkeypatch.setattr(sys, "executable", str(hook_env))
    monkeypatch.setattr("ckaudit.worker.interpreter._probes", {})
    return hook_env


def test_repository_venv_is_found_and_a_torchless_virtual_env_passed_over(
    tmp_path: Path, no_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    venv = make_venv(root / ".venv", torch=True)
    monkeypatch.setenv("VIRTUAL_ENV", str(no_env.parent.parent))  # pre-commit's: first in the old order
    found = find_interpreter(Config(root=root))
    assert found.path == str(venv) and found.torch


@pytest.mark.slow
def test_conda_prefix_and_virtual_env_with_torch(
    tmp_path: Path, no_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conda = make_venv(tmp_path / "conda", torch=True)
    monkeypatch.setenv("CONDA_PREFIX", str(conda.parent.parent))
    assert resolve_python(Config(root=tmp_path / "repo")) == str(conda)
    monkeypatch.delenv("CONDA_PREFIX")
    active = make_venv(tmp_path / "active", torch=True)
    monkeypatch.setenv("VIRTUAL_ENV", str(active.parent.parent))
    assert resolve_python(Config(root=tmp_path / "repo")) == str(active)


@pytest.mark.slow
def test_python_setting_path_forms(tmp_path: Path, no_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    venv = make_venv(root / "envs" / "torch", torch=True)
    assert resolve_python(Config(root=root, python="envs/torch/bin/python")) == str(venv)
    monkeypatch.setenv("ENVS", str(root / "envs"))
    assert resolve_python(Config(root=root, python="$ENVS/torch/bin/python")) == str(venv)
    monkeypatch.setenv("PATH", os.pathsep.join([str(no_env.parent), str(venv.parent), os.environ["PATH"]]))
    assert resolve_python(Config(root=root, python="python3")) == str(venv.parent / "python3")


def test_nothing_with_torch_is_one_error_naming_what_was_tried(tmp_path: Path, no_env: Path) -> None:
    root = tmp_path / "repo"
    make_venv(root / ".venv", torch=False)
    with pytest.raises(InterpreterNotFound) as raised:
        find_interpreter(Config(root=root))
    message = str(raised.value)
    assert f"{root / '.venv' / 'bin' / 'python'} (the repository's .venv): no torch there" in message
    assert "python: .venv/bin/python" in message
    with pytest.raises(InterpreterNotFound, match="does not exist"):
        find_interpreter(Config(root=root, python="missing/bin/python"))


@pytest.mark.slow
def test_probe_is_cached_until_the_environment_changes(tmp_path: Path, no_env: Path, run_git: object) -> None:
    """A venv probed without torch, then given torch: its site-packages changed, so it is probed again."""
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    venv = make_venv(root / ".venv", torch=False)
    with pytest.raises(InterpreterNotFound):
        find_interpreter(Config(root=root))
    records = list((root / ".git").rglob("interpreter/*/*.json"))
    assert records, "the probe was not cached"
    add_torch(root / ".venv")
    import ckaudit.worker.interpreter as interpreter

    interpreter._probes.clear()
    assert find_interpreter(Config(root=root)).path == str(venv)


def _slug(name: str, location: Path) -> str:
    """How poetry (of the project's folder) and pipenv (of its Pipfile) name an environment kept outside the
    project: the name, then the first 8 characters of the urlsafe base64 of the real path's sha256."""
    import base64
    import hashlib

    digest = hashlib.sha256(os.path.realpath(location).encode()).digest()
    return f"{name}-{base64.urlsafe_b64encode(digest).decode()[:8]}"


def test_an_env_folder_in_the_repository_is_found(tmp_path: Path, no_env: Path) -> None:
    root = tmp_path / "repo"
    venv = make_venv(root / "env", torch=True)  # `python -m venv env`, as many tutorials do
    assert resolve_python(Config(root=root)) == str(venv)


@pytest.mark.slow
def test_poetry_and_pipenv_environments_of_this_project_not_a_namesake(
    tmp_path: Path, no_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both keep environments under the user's home named `<project>-<hash of its path>`: another clone of a
    project with the same name (sorted first here, torch included) is not this project's environment."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.poetry]\nname = "Net_Models"\n', encoding="utf-8")
    poetry = tmp_path / "home" / ".cache" / "pypoetry" / "virtualenvs"
    make_venv(poetry / "net-models-AAAAAAAA-py3.11", torch=True)
    mine = make_venv(poetry / f"{_slug('net-models', root)}-py3.11", torch=True)
    assert resolve_python(Config(root=root)) == str(mine)

    (root / "pyproject.toml").unlink()
    pipenv = tmp_path / "workon"
    monkeypatch.setenv("WORKON_HOME", str(pipenv))
    make_venv(pipenv / "repo-AAAAAAAA", torch=True)
    mine = make_venv(pipenv / _slug("repo", root / "Pipfile"), torch=True)
    monkeypatch.setattr("ckaudit.worker.interpreter._probes", {})
    assert resolve_python(Config(root=root)) == str(mine)
