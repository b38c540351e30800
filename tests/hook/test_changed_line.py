"""The hook names the staged line that makes a checkpoint fail (a default argument, a module constant, a
config field, a deleted layer), besides the layers it affects: real git repositories, real checkpoints
saved by torch, the in-process `ckaudit hook` over the index."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import git, requires_torch
from tests.modelrepo import SharedWorker, run_cli, untouched, write

pytestmark = requires_torch

WIDE = """\
from torch import nn

SCALE = 1


class Wide(nn.Module):
    def __init__(self, width=64, classes=3):
        super().__init__()
        hidden = width * SCALE
        self.fc1 = nn.Linear(8, hidden)
        self.fc2 = nn.Linear(hidden, classes)
        self.out = nn.Linear(classes, classes)
"""

REGISTRY = f"""\
version: 1
python: {sys.executable}
models:
  wide:
    factory: models.wide:Wide
checkpoints:
  - path: checkpoints/wide.pt
    model: wide
"""


@pytest.fixture
def wide_repo(git_repo: Path) -> Path:
    import torch

    write(git_repo, "models/__init__.py", "")
    write(git_repo, "models/wide.py", WIDE)
    write(git_repo, "ckaudit.yaml", REGISTRY)
    (git_repo / "checkpoints").mkdir()
    torch.save(_state(), git_repo / "checkpoints" / "wide.pt")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "wide model")
    return git_repo


def _state() -> dict[str, object]:
    from torch import nn

    model = nn.Module()
    model.fc1, model.fc2, model.out = nn.Linear(8, 64), nn.Linear(64, 3), nn.Linear(3, 3)
    return model.state_dict()


def _hook(repo: Path, new_source: str) -> tuple[int, list[dict]]:
    write(repo, "models/wide.py", new_source)
    git(repo, "add", "models/wide.py")
    with untouched(repo):
        status, out = run_cli(repo, "hook", "--format", "json")
    return status, json.loads(out)["checkpoints"][0]["findings"]


def test_a_changed_default_is_named_with_old_and_new_text(wide_repo: Path, worker: SharedWorker) -> None:
    status, findings = _hook(wide_repo, WIDE.replace("width=64", "width=128"))
    assert status == 1
    resized = [f for f in findings if f["rule"] == "shape-mismatch"]
    assert resized, findings
    for finding in resized:  # both layers the default flows into, each naming the line that changed
        assert "models/wide.py:7 width=64 -> width=128" in finding["message"], finding["message"]
        assert finding["details"]["changed"] == [
            {"path": "models/wide.py", "line": 7, "old_line": 7, "old": "width=64", "new": "width=128"}
        ]
    keys = {m["key"] for f in resized for m in f["details"].get("mismatches", [f["details"]])}
    assert {"fc1.weight", "fc2.weight"} <= keys


def test_a_module_constant_flows_through_an_assignment(wide_repo: Path, worker: SharedWorker) -> None:
    status, findings = _hook(wide_repo, WIDE.replace("SCALE = 1", "SCALE = 2"))
    assert status == 1
    messages = [f["message"] for f in findings if f["rule"] == "shape-mismatch"]
    assert messages and all("models/wide.py:3 SCALE = 1 -> SCALE = 2" in m for m in messages), messages


def test_a_deleted_layer_is_named_on_the_unexpected_keys(wide_repo: Path, worker: SharedWorker) -> None:
    source = WIDE.replace("        self.out = nn.Linear(classes, classes)\n", "")
    status, findings = _hook(wide_repo, source)
    assert status == 1
    unexpected = next(f for f in findings if f["rule"] == "unexpected-keys")
    assert "models/wide.py:12 deleted `self.out = nn.Linear(classes, classes)`" in unexpected["message"]


def test_an_unrelated_change_is_not_named(wide_repo: Path, worker: SharedWorker) -> None:
    source = (
        WIDE.replace("classes=3", "classes=3, dropout=0.1")
        .replace(
            "self.out = nn.Linear(classes, classes)",
            "self.out = nn.Linear(classes, classes)\n        self.p = dropout",
        )
        .replace("nn.Linear(8, hidden)", "nn.Linear(9, hidden)")
    )
    status, findings = _hook(wide_repo, source)
    assert status == 1
    fc1 = next(f for f in findings if f["rule"] == "shape-mismatch")
    assert [c["new"] for c in fc1["details"]["changed"]] == ["9"]  # fc1's own line; not `dropout=0.1`


def test_check_and_blame_name_the_line_of_the_commit_that_broke_it(
    wide_repo: Path, worker: SharedWorker
) -> None:
    base = git(wide_repo, "rev-parse", "HEAD").strip()
    write(wide_repo, "models/wide.py", WIDE.replace("width=64", "width=128"))
    git(wide_repo, "commit", "-q", "-am", "wider")
    write(wide_repo, "README.md", "unrelated\n")
    git(wide_repo, "add", "README.md")
    git(wide_repo, "commit", "-q", "-m", "docs")
    with untouched(wide_repo):
        status, out = run_cli(wide_repo, "check", "--base", base, "--head", "HEAD", "--format", "json")
        assert status == 1
        named = [f["details"].get("changed") for f in json.loads(out)["checkpoints"][0]["findings"]]
        assert named and all(n and n[0]["new"] == "width=128" for n in named), named
        status, out = run_cli(wide_repo, "blame", "checkpoints/wide.pt", "--format", "json")
    blame = json.loads(out)
    (broke,) = blame["breaks"]
    step = next(s for s in blame["history"] if s["commit"] == broke)
    assert step["findings"] and all(
        "models/wide.py:7 width=64 -> width=128" in f["message"] for f in step["findings"]
    ), step["findings"]
