"""A real library upgrade, as a user meets it: a tiny local package installed with pip into the project's
own virtualenv at 1.0, the checkpoint registered (ckaudit.lock records mylayers 1.0), then pip upgrades it
to 2.0, whose layer drops its bias. The break is `package-version` (environment) from the committed lock —
the same cached, with `--no-cache`, and in a fresh clone on a colleague's machine — naming both versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.compare.test_environment import assert_a_comment_commit_is_not_blamed
from tests.compare.test_registry_and_lock import _clone
from tests.conftest import add_torch, git, requires_torch
from tests.modelrepo import run_cli, write

pytestmark = [requires_torch, pytest.mark.slow]  # real pip, and a worker per command in that venv

LAYERS = """\
from torch import nn


class Head(nn.Linear):
    def __init__(self, width: int, classes: int) -> None:
        super().__init__(width, classes, bias={bias})
"""
BLOCKS = """\
from mylayers import Head


def head(width: int, classes: int) -> Head:
    return Head(width, classes)
"""


def wheel(tmp: Path, version: str, bias: bool) -> Path:
    """mylayers VERSION built into a wheel by pip, as a package index would serve it."""
    source = tmp / f"mylayers-{version}"
    write(source, "mylayers/__init__.py", LAYERS.format(bias=bias))
    write(
        source,
        "pyproject.toml",
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "mylayers"\nversion = "{version}"\n',
    )
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, "-w", str(tmp / "dist"), str(source)], check=True, capture_output=True)
    return tmp / "dist" / f"mylayers-{version}-py3-none-any.whl"


def venv_with(repo: Path, package: Path) -> None:
    """The project's own `.venv` (found without `python:`), torch reachable, `package` pip-installed."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(repo / ".venv")], check=True)
    add_torch(repo / ".venv")
    pip_install(repo, package)


def pip_install(repo: Path, package: Path) -> None:
    python = repo / ".venv" / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index", "--no-deps"]
    subprocess.run([*pip, str(package)], check=True, capture_output=True)


def scan(repo: Path, *extra: str) -> tuple[int, dict]:
    status, out = run_cli(repo, "scan", "--format", "json", *extra)
    (result,) = [c for c in json.loads(out)["checkpoints"] if c["path"] == "checkpoints/net.pt"]
    return status, result


def test_a_pip_upgrade_that_drops_a_bias_is_package_version_everywhere(
    model_repo: Path, tmp_path: Path
) -> None:
    v1, v2 = wheel(tmp_path, "1.0", bias=True), wheel(tmp_path, "2.0", bias=False)
    registry = (model_repo / "ckaudit.yaml").read_text(encoding="utf-8")
    write(
        model_repo,
        "ckaudit.yaml",
        "".join(line for line in registry.splitlines(True) if not line.startswith("python:")),
    )
    write(model_repo, "models/blocks.py", BLOCKS)
    write(model_repo, ".gitignore", ".venv/\n")
    venv_with(model_repo, v1)
    assert run_cli(model_repo, "register", "checkpoints/net.pt", "--model", "net")[0] == 0
    assert '"mylayers": "1.0"' in (model_repo / "ckaudit.lock").read_text(encoding="utf-8")
    git(model_repo, "add", "-A")
    git(model_repo, "commit", "-qm", "the head comes from mylayers; registered with mylayers 1.0")
    assert scan(model_repo)[0] == 0

    pip_install(model_repo, v2)  # the upgrade: Head has no bias any more
    cached, uncached = scan(model_repo), scan(model_repo, "--no-cache")
    assert cached == uncached
    status, result = cached
    assert status == 1 and result["verdict"] == "environment", result
    changed = result["findings"][0]
    assert changed["rule"] == "package-version" and changed["severity"] == "error"
    assert "mylayers 1.0 -> 2.0" in changed["message"] and "(absent)" not in changed["message"]
    assert changed["details"]["packages"] == {"mylayers": {"before": "1.0", "now": "2.0"}}
    assert [f["rule"] for f in result["findings"][1:]] == ["unexpected-keys"]  # the evidence, as a warning

    # a colleague's fresh clone with mylayers 2.0 installed says the same, from the committed lock alone
    clone = _clone(model_repo, tmp_path / "clone")
    venv_with(clone, v2)
    assert scan(clone, "--no-cache") == cached

    assert_a_comment_commit_is_not_blamed(model_repo)
