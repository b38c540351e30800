"""Interpreter discovery for the layouts users have, each built for real (`python -m venv`; torch reached
through a .pth file, see tests/conftest.py `make_venv`), with no `python:` in ckaudit.yaml. ckaudit's own
interpreter stands for pre-commit's hook environment (no torch), so only the discovered one can build."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ckaudit.cli import main
from ckaudit.registry.config import Config
from ckaudit.worker.interpreter import InterpreterNotFound, find_interpreter
from tests.conftest import make_venv, requires_torch
from tests.modeltools import write
from tests.registry.test_interpreter import no_env  # noqa: F401  (a fixture)

pytestmark = requires_torch

MODEL = """\
import sys

from torch import nn


def build():
    # the verdict is ok only when the worker runs in the environment the test expects
    assert sys.prefix == {prefix!r}, sys.prefix
    return nn.Linear(2, 3)
"""


@pytest.fixture
def env(no_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    for name in ("WORKON_HOME", "POETRY_VIRTUALENVS_PATH", "POETRY_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    return no_env


def _found(root: Path) -> str:
    return find_interpreter(Config(root=root)).path


@pytest.mark.parametrize("folder", ["venv", "env"])
def test_in_repository_venv_and_env(folder: str, tmp_path: Path, env: Path) -> None:
    root = tmp_path / "repo"
    python = make_venv(root / folder, torch=True)
    assert _found(root) == str(python)


def test_env_folder_without_pyvenv_cfg_is_not_an_environment(tmp_path: Path, env: Path) -> None:
    root = tmp_path / "repo"
    python = make_venv(tmp_path / "elsewhere", torch=True)
    (root / "env" / "bin").mkdir(parents=True)
    (root / "env" / "bin" / "python").symlink_to(python)  # an `env/` of the project's own, not a venv
    with pytest.raises(InterpreterNotFound) as raised:
        find_interpreter(Config(root=root))
    assert "repository's env" not in str(raised.value)


def test_uv_project_environment_relative_to_the_root(
    tmp_path: Path, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    python = make_venv(root / "build" / "uv-env", torch=True)
    monkeypatch.setenv("UV_PROJECT_ENVIRONMENT", "build/uv-env")
    assert _found(root) == str(python)


def test_poetry_environment_by_project_name(
    tmp_path: Path, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "repo"
    write(root, "pyproject.toml", '[tool.poetry]\nname = "My_Model.Zoo"\nversion = "0.1"\n')
    cache = Path(os.environ["HOME"]) / ".cache" / "pypoetry" / "virtualenvs"
    make_venv(cache / "other-project-AbCd1234-py3.11", torch=True)  # another project's: never picked
    python = make_venv(cache / "my-model-zoo-Xy12Ab34-py3.11", torch=True)
    assert _found(root) == str(python)
    moved = tmp_path / "poetry-venvs"
    elsewhere = make_venv(moved / "my-model-zoo-Zz99Yy88-py3.12", torch=True)
    monkeypatch.setenv("POETRY_VIRTUALENVS_PATH", str(moved))
    monkeypatch.setattr("ckaudit.worker.interpreter._probes", {})
    assert _found(root) == str(elsewhere)


def test_pipenv_environment_by_folder_name(
    tmp_path: Path, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "my repo"  # pipenv writes the space as `_`
    root.mkdir()
    store = Path(os.environ["HOME"]) / ".local" / "share" / "virtualenvs"
    make_venv(store / "other-Q1w2E3r4", torch=True)
    python = make_venv(store / "my_repo-Q1w2E3r4", torch=True)
    assert _found(root) == str(python)
    workon = tmp_path / "workon"
    elsewhere = make_venv(workon / "my_repo-Zx9Cv8Bn", torch=True)
    monkeypatch.setenv("WORKON_HOME", str(workon))
    monkeypatch.setattr("ckaudit.worker.interpreter._probes", {})
    assert _found(root) == str(elsewhere)


@pytest.mark.parametrize("layout", ["pipenv", "conda", "env"])
def test_scan_builds_in_the_discovered_environment(
    layout: str,
    tmp_path: Path,
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As a user runs it: `ckaudit scan` with no `python:`; the model asserts which sys.prefix runs it."""
    import torch
    from torch import nn

    root = tmp_path / "proj"
    prefix = {
        "pipenv": Path(os.environ["HOME"]) / ".local/share/virtualenvs/proj-Ab12Cd34",
        "conda": tmp_path / "miniconda3" / "envs" / "ml",
        "env": root / "env",
    }[layout]
    make_venv(prefix, torch=True)
    if layout == "conda":
        monkeypatch.setenv("CONDA_PREFIX", str(prefix))
    write(root, "models/__init__.py", "")
    write(root, "models/net.py", MODEL.format(prefix=str(prefix)))
    (root / "ckpt").mkdir()
    torch.save(nn.Linear(2, 3).state_dict(), root / "ckpt" / "net.pt")
    write(
        root,
        "ckaudit.yaml",
        "version: 1\nmodels:\n  net:\n    factory: models.net:build\n"
        "checkpoints:\n  - path: ckpt/net.pt\n    model: net\n",
    )
    monkeypatch.chdir(root)
    status = main(["scan", "--format", "json", "--no-cache"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0, report
    assert [c["verdict"] for c in report["checkpoints"]] == ["ok"], report
