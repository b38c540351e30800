"""Advice in the registry's own words, followed as a user would: `ckaudit register` writes the registry, the
`load:` snippet and `ignore:` globs a scan prints are pasted into it, and the next scan loads; real torch
(`load_state_dict`) is the oracle. An `ignore:` never covers a key the file may hold under another name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import git, requires_torch
from tests.modelrepo import run_cli, write

pytestmark = requires_torch

NET = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 2)
"""


def _scan(repo: Path) -> dict[str, Any]:
    _, out = run_cli(repo, "scan", "--format", "json")
    (result,) = [c for c in json.loads(out)["checkpoints"] if c["path"] == "net.pt"]
    return result


def test_compiled_checkpoint_of_a_model_that_lost_layers(git_repo: Path) -> None:
    """Both causes named (key-prefix and the removed keys); pasting the advice makes it load."""
    import torch
    from torch import nn

    write(git_repo, "models/__init__.py", "")
    write(git_repo, "models/net.py", NET)
    old = nn.Module()
    old.fc1, old.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)
    old.extra = nn.Sequential(*(nn.Linear(2, 2) for _ in range(3)))  # more keys than the model keeps
    saved = {f"_orig_mod.{k}": v for k, v in old.state_dict().items()}
    torch.save(saved, git_repo / "net.pt")
    git(git_repo, "add", "models")
    git(git_repo, "commit", "-qm", "model")
    assert run_cli(git_repo, "register", "net.pt", "--model", "models.net:Net")[0] == 0

    result = _scan(git_repo)
    assert not result["loads"]
    rules = [f["rule"] for f in result["findings"]]
    assert rules[:2] == ["key-prefix", "unexpected-keys"], rules
    prefix, unexpected = result["findings"][:2]
    assert 'load: {strip_prefix: "_orig_mod."}' in prefix["fix"]
    steps, globs = prefix["details"]["load_steps"], unexpected["details"]["ignore"]

    registry = yaml.safe_load((git_repo / "ckaudit.yaml").read_text())
    (entry,) = registry["checkpoints"]
    entry["load"], entry["ignore"] = steps, globs  # what the user pastes
    (git_repo / "ckaudit.yaml").write_text(yaml.safe_dump(registry))
    after = _scan(git_repo)
    assert after["loads"], after["findings"]

    model = torch.nn.Module()
    model.fc1, model.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)
    stripped = {k.removeprefix(steps["strip_prefix"]): v for k, v in saved.items()}
    outcome = model.load_state_dict(stripped, strict=False)  # the oracle: only the removed layer is left
    assert outcome.missing_keys == [] and sorted(outcome.unexpected_keys) == sorted(
        unexpected["details"]["keys"]
    )


def test_ignore_is_not_advised_for_keys_the_file_has_under_another_name(git_repo: Path) -> None:
    """nanochat's half-initialised case: `emb.weight` is missing, the file's unused `emb.table` has its
    shape; ignoring it would leave it freshly initialised. Keys with no such twin may still be ignored."""
    import torch

    write(git_repo, "models/__init__.py", "")
    write(
        git_repo,
        "models/net.py",
        NET.replace(
            "super().__init__()", "super().__init__()\n        self.emb = nn.Embedding(10, 3)"
        ).replace(
            "self.fc2 = nn.Linear(8, 2)", "self.fc2 = nn.Linear(8, 2)\n        self.gate = nn.Linear(2, 1)"
        ),
    )
    state = {"fc1.weight": torch.zeros(8, 4), "fc1.bias": torch.zeros(8)}
    state |= {"fc2.weight": torch.zeros(2, 8), "fc2.bias": torch.zeros(2), "emb.table": torch.zeros(10, 3)}
    torch.save(state, git_repo / "net.pt")
    git(git_repo, "add", "models")
    git(git_repo, "commit", "-qm", "model")
    assert run_cli(git_repo, "register", "net.pt", "--model", "models.net:Net")[0] == 0

    missing = next(f for f in _scan(git_repo)["findings"] if f["rule"] == "missing-keys")
    assert missing["details"]["same_shape_in_checkpoint"] == ["emb.weight"]
    assert "emb.weight" in missing["fix"] and "load: {rename:" in missing["fix"]
    assert missing["details"]["ignore"] == ["gate.*"] or set(missing["details"]["ignore"]) == {
        "gate.weight",
        "gate.bias",
    }
