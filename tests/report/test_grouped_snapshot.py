"""Acceptance (issue 18): one staged change that widens two layers, three checkpoints of the model registered.

Made as a user would: a git repository, real `torch.save` checkpoints, a registry, the default `width=64`
changed to `128` and staged, then `ckaudit hook`. The answer is one block — the three checkpoints listed
once, the two layers as one finding, the changed default's line named on its own `changed:` line, the
fix naming every way forward (restore, re-save or convert, `expect: fails`, remove) — in 15 lines, exactly
the snapshot below.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import git, requires_torch
from tests.modelrepo import run_cli, untouched, write

pytestmark = requires_torch

MLP = """\
from torch import nn


class MLP(nn.Module):
    def __init__(self, inputs: int = 16, width: int = 64, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(inputs, width)
        self.out = nn.Linear(width, classes)

    def forward(self, x):
        return self.out(self.fc1(x).relu())
"""

NAMES = ("mlp_best", "mlp_epoch1", "mlp_epoch2")

# The block names the line the user changed (the `width` default), besides the two layers it resizes.
EXPECTED = """\
3 checkpoints  [fails: code]  model mlp
  checkpoints/mlp_best.pt, checkpoints/mlp_epoch1.pt, checkpoints/mlp_epoch2.pt
  error shape-mismatch: loads at HEAD but not with the staged code: 3 tensors in
      2 layers (fc1, out) resized by one change: 64 -> 128
      changed: models/mlp.py:5 width: int = 64 -> width: int = 128
      key          checkpoint   model
      fc1.weight   [64, 16]     [128, 16]
      fc1.bias     [64]         [128]
      out.weight   [10, 64]     [10, 128]
      models/mlp.py:7  self.fc1 = nn.Linear(inputs, width)
      models/mlp.py:8  self.out = nn.Linear(width, classes)
      fix: Restore the old sizes, re-save or convert the checkpoint, mark it
           `expect: fails` with a `reason:`, or remove it from the registry.

3 checkpoints: 0 ok, 3 code; 3 errors.
"""


def _widened_repo(repo: Path) -> None:
    import torch

    write(repo, "models/__init__.py", "")
    write(repo, "models/mlp.py", MLP)
    sys.path.insert(0, str(repo))
    try:
        from models.mlp import MLP as Model  # the user's own class, saved as their training script would

        for name in NAMES:
            (repo / "checkpoints").mkdir(exist_ok=True)
            torch.save(Model().state_dict(), repo / "checkpoints" / f"{name}.pt")
    finally:
        sys.path.remove(str(repo))
        sys.modules.pop("models.mlp", None)
        sys.modules.pop("models", None)
    entries = "".join(f"  - path: checkpoints/{name}.pt\n    model: mlp\n" for name in NAMES)
    registry = f"version: 1\npython: {sys.executable}\nmodels:\n  mlp:\n    factory: models.mlp:MLP\n"
    write(repo, "ckaudit.yaml", registry + "checkpoints:\n" + entries)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "an MLP and three checkpoints")
    write(repo, "models/mlp.py", MLP.replace("width: int = 64", "width: int = 128"))
    git(repo, "add", "models/mlp.py")


def test_one_change_three_checkpoints_is_one_block(git_repo: Path) -> None:
    _widened_repo(git_repo)
    with untouched(git_repo):
        status, text = run_cli(git_repo, "hook", "--no-cache")
        json_status, out = run_cli(git_repo, "hook", "--no-cache", "--format", "json")
    assert status == json_status == 1
    assert text == EXPECTED
    assert len(text.splitlines()) <= 15  # the acceptance: ≤ 15 lines, with the changed line named
    assert all(len(line) <= 80 for line in text.splitlines())
    report = json.loads(out)
    # JSON keeps every checkpoint's findings; the grouping is an additive field
    assert [len(c["findings"]) for c in report["checkpoints"]] == [1, 1, 1]
    assert report["groups"] == [
        {"checkpoints": [f"checkpoints/{n}.pt" for n in NAMES], "model": "mlp", "verdict": "code"}
    ]
    finding = report["checkpoints"][0]["findings"][0]
    # JSON's message still names the changed line; text puts it on a line of its own
    assert finding["message"].endswith("— changed: models/mlp.py:5 width: int = 64 -> width: int = 128")
    assert [(c["path"], c["line"]) for c in finding["details"]["changed"]] == [("models/mlp.py", 5)]
    assert finding["location"]["line"] == 7
    assert [(a["path"], a["line"]) for a in finding["details"]["also_at"]] == [("models/mlp.py", 8)]
