"""Python environments inside the project are installed packages, not the project: the scan's walk and
`init` skip any folder holding a virtualenv (`pyvenv.cfg`) or a conda prefix (`conda-meta/`), whatever it is
called, and nothing else (a folder named `env` with the project's own code is the project's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ckaudit.files.engine import walk_files
from tests.conftest import requires_torch
from tests.files import factory
from tests.modelrepo import run_cli

pytestmark = requires_torch


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder (no git: the scan walks it) with a venv named `venv`, a conda prefix named `env`, and a
    folder `envs` of the project's own that holds a checkpoint."""
    root = tmp_path / "project"
    root.mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    factory.save_zip(root / "venv" / "lib" / "site-packages" / "pkg" / "bundled.pt")
    (root / "env" / "conda-meta").mkdir(parents=True)
    factory.save_zip(root / "env" / "lib" / "data.pth")
    factory.save_zip(root / "envs" / "cartpole" / "policy.pt")
    factory.save_zip(root / "checkpoints" / "model.pt")
    return root


def test_the_walk_skips_environments_by_what_they_are_not_their_name(project: Path) -> None:
    files = walk_files(project, ())
    assert "envs/cartpole/policy.pt" in files and "checkpoints/model.pt" in files
    assert not [f for f in files if f.startswith(("venv/", "env/"))], files


def test_scan_and_init_see_only_the_project_checkpoints(project: Path) -> None:
    status, out = run_cli(project, "scan", "--files-only", "--format", "json")
    paths = sorted(c["path"] for c in json.loads(out)["checkpoints"])
    assert paths == ["checkpoints/model.pt", "envs/cartpole/policy.pt"], out
    status, _ = run_cli(project, "init", "--no-match")
    assert status == 0
    registry = (project / "ckaudit.yaml").read_text(encoding="utf-8")
    assert "policy.pt" in registry and "bundled.pt" not in registry and "data.pth" not in registry
