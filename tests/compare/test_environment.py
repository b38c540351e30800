"""A library upgrade between two runs: the model's head layer comes from an installed package (a real
distribution on PYTHONPATH, with its dist-info), whose version changes. The cached outcome must not be
reused; the break is `package-version` (environment), naming the distribution and both versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, requires_torch
from tests.modelrepo import run_cli, untouched, write

pytestmark = [requires_torch, pytest.mark.slow]

LAYERS = """\
from torch import nn


class Head(nn.Linear):
    def __init__(self, width: int, classes: int) -> None:
        super().__init__(width, classes * {factor})
"""
BLOCKS = """\
from mylayers import Head


def head(width: int, classes: int) -> Head:
    return Head(width, classes)
"""


def install(site: Path, version: str, factor: int) -> None:
    """What pip leaves behind: the package and NAME-VERSION.dist-info (the old one removed)."""
    for old in site.glob("mylayers-*.dist-info"):
        for file in old.iterdir():
            file.unlink()
        old.rmdir()
    write(site, "mylayers/__init__.py", LAYERS.format(factor=factor))
    info = site / f"mylayers-{version}.dist-info"
    write(info, "METADATA", f"Metadata-Version: 2.1\nName: mylayers\nVersion: {version}\n")
    write(info, "top_level.txt", "mylayers\n")


def test_an_upgrade_re_evaluates_and_blames_the_environment(
    model_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    install(site, "1.0", factor=1)
    monkeypatch.setenv("PYTHONPATH", str(site))
    write(model_repo, "models/blocks.py", BLOCKS)
    git(model_repo, "commit", "-qam", "the head comes from mylayers")

    status, out = run_cli(model_repo, "scan", "--format", "json")
    assert status == 0, out
    # `register` records in ckaudit.lock the versions the model imported while the checkpoint loaded
    assert run_cli(model_repo, "register", "checkpoints/net.pt", "--model", "net")[0] == 0
    assert '"mylayers": "1.0"' in (model_repo / "ckaudit.lock").read_text(encoding="utf-8")
    git(model_repo, "add", "ckaudit.yaml", "ckaudit.lock")
    git(model_repo, "commit", "-qm", "register the checkpoint")

    install(site, "2.0", factor=2)  # Head now has twice the outputs
    status, out = run_cli(model_repo, "scan", "--format", "json")
    (result,) = [c for c in json.loads(out)["checkpoints"] if c["path"] == "checkpoints/net.pt"]
    assert status == 1 and result["verdict"] == "environment", out
    changed = result["findings"][0]
    assert changed["rule"] == "package-version" and changed["cause"] == "environment"
    assert "mylayers 1.0 -> 2.0" in changed["message"] and "fc1.weight" in changed["message"]
    assert changed["details"]["packages"] == {"mylayers": {"before": "1.0", "now": "2.0"}}

    assert_a_comment_commit_is_not_blamed(model_repo)


def assert_a_comment_commit_is_not_blamed(repo: Path) -> None:
    """After the upgrade, a comment-only commit passes: the hook says HEAD broke with the packages."""
    write(repo, "models/net.py", (repo / "models/net.py").read_text() + "# a comment\n")
    git(repo, "add", "models/net.py")
    with untouched(repo):
        status, out = run_cli(repo, "hook", "models/net.py", "--format", "json")
    findings = json.loads(out)["checkpoints"][0]["findings"]
    assert status == 0, out
    assert [f["rule"] for f in findings] == ["package-version"] and findings[0]["severity"] == "warning"
    assert "at HEAD" in findings[0]["message"]
