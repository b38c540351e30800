"""A model whose only state is non-persistent buffers, as a user registers and scans it: torch saves an empty
state dict and loads it with strict=True, so ckaudit says it loads; a parameter added later is missing-keys
(cause code), never "no state dict anywhere"."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import git, requires_torch
from tests.modelrepo import run_cli, write

pytestmark = requires_torch

MODEL = """\
import torch
from torch import nn


class Smoother(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", torch.ones(5) / 5, persistent=False)
"""
WITH_PARAMETER = MODEL + "        self.gain = nn.Parameter(torch.ones(1))\n"


def test_an_empty_state_dict_loads_and_a_new_parameter_is_missing(git_repo: Path) -> None:
    import torch

    write(git_repo, "models/smooth.py", MODEL)
    write(git_repo, "models/__init__.py", "")
    write(git_repo, "ckaudit.yaml", "version: 1\nmodels:\n  smoother:\n    factory: models.smooth:Smoother\n")
    namespace: dict[str, object] = {}
    exec(MODEL, namespace)
    (git_repo / "checkpoints").mkdir()
    torch.save(namespace["Smoother"]().state_dict(), git_repo / "checkpoints" / "smoother.pt")  # type: ignore[operator]
    status, out = run_cli(git_repo, "register", "checkpoints/smoother.pt", "--model", "smoother")
    assert status == 0, out
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "a smoothing model and its (empty) checkpoint")

    status, out = run_cli(git_repo, "scan", "--format", "json")
    report = json.loads(out)
    assert status == 0 and report["summary"]["ok"] == 1, out

    write(git_repo, "models/smooth.py", WITH_PARAMETER)
    status, out = run_cli(git_repo, "scan", "--format", "json")
    findings = [f for c in json.loads(out)["checkpoints"] for f in c["findings"]]
    assert status == 1, out
    assert [(f["rule"], f["cause"]) for f in findings if f["severity"] == "error"] == [
        ("missing-keys", "code")
    ]
    assert "gain" in json.dumps(findings)
