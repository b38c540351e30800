"""A repository vouches for its own pickled classes in ckaudit.yaml (`trusted_globals:`), as a user would:
a training script of the repository saves its config object into the checkpoint, `ckaudit scan` calls it
unsafe until the registry trusts the class, then prints the add_safe_globals line that makes it load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ckaudit.cli import main
from tests.conftest import requires_torch

pytestmark = requires_torch

CONFIG_PY = """\
class TrainConfig:
    def __init__(self, lr=0.1):
        self.lr = lr
"""
TRAIN_PY = """\
import torch
from mypkg.config import TrainConfig
torch.save({"model": {"w": torch.ones(2)}, "config": TrainConfig()}, "ck/run.pt")
"""


def _scan(repo: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]]]:
    status = main(["scan", str(repo), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    (entry,) = [c for c in report["checkpoints"] if c["path"] == "ck/run.pt"]
    return status, [f for f in entry["findings"] if f["rule"] != "not-tracked"]


@pytest.mark.slow
def test_trusted_globals_turn_unsafe_into_an_allow_line(
    git_repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(git_repo.parent / "xdg"))
    (git_repo / "mypkg").mkdir()
    (git_repo / "mypkg" / "__init__.py").write_text("")
    (git_repo / "mypkg" / "config.py").write_text(CONFIG_PY)
    (git_repo / "ck").mkdir()
    subprocess.run([sys.executable, "-c", TRAIN_PY], cwd=git_repo, check=True, capture_output=True)
    registry = git_repo / "ckaudit.yaml"
    registry.write_text("version: 1\ncheckpoints:\n  - path: ck/run.pt\n")

    status, findings = _scan(git_repo, capsys)
    assert status == 1
    assert [(f["rule"], f["details"].get("unsafe")) for f in findings] == [
        ("unsafe-pickle", ["mypkg.config.TrainConfig"])
    ]
    assert "trusted_globals" in findings[0]["fix"] and "add_safe_globals([" not in findings[0]["fix"]

    registry.write_text(registry.read_text() + "trusted_globals: [mypkg.config.TrainConfig]\n")
    _status, findings = _scan(git_repo, capsys)
    assert [f["rule"] for f in findings] == ["weights-only-blocked"]
    assert "add_safe_globals([mypkg.config.TrainConfig])" in findings[0]["fix"]
