"""`ckaudit fix CKPT --registry`, as a user runs it: a git repository, checkpoints saved by torch from a
DataParallel-wrapped or torch.compile'd model (kept out of git), the registry written by `ckaudit register`,
then `fix --registry` and `scan`. The oracle is real torch: `torch.load` of the untouched file, the entry's
steps applied as a project's loader would (torch's own `consume_prefix_in_state_dict_if_present` for the
prefix), and `load_state_dict` into the model, tensor by tensor equal to what was saved."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import git, repo_snapshot, requires_torch
from tests.modelrepo import run_cli, write

pytestmark = [requires_torch, pytest.mark.slow]

TAGGER = """\
from torch import nn


class Tagger(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Linear(width, width))
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        return self.head(self.encoder(x))
"""


@pytest.fixture
def repo(git_repo: Path) -> Iterator[Path]:
    """The model committed; checkpoints/ ignored (the files live outside git, as most do)."""
    write(git_repo, "models/__init__.py", "")
    write(git_repo, "models/tagger.py", TAGGER)
    write(git_repo, ".gitignore", "checkpoints/\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-qm", "the tagger")
    (git_repo / "checkpoints").mkdir()
    sys.path.insert(0, str(git_repo))
    try:
        yield git_repo
    finally:
        sys.path.remove(str(git_repo))
        sys.modules.pop("models.tagger", None)
        sys.modules.pop("models", None)


def _trained(width: int = 8) -> Any:
    """The user's own class, with weights that differ from a fresh init (so a wrong pairing shows)."""
    import torch
    from models.tagger import Tagger  # the repository's module, imported as the training script would

    torch.manual_seed(7)
    return Tagger(width)


def _register(repo: Path, name: str) -> bytes:
    status, _ = run_cli(repo, "register", f"checkpoints/{name}", "--model", "models.tagger:Tagger")
    assert status == 0
    return (repo / "checkpoints" / name).read_bytes()


def _fix(repo: Path, name: str, *options: str) -> tuple[int, dict[str, Any]]:
    """`fix --registry`: git's index, refs, HEAD and every file but the registry and its lock untouched."""
    before = repo_snapshot(repo)
    status, out = run_cli(repo, "fix", f"checkpoints/{name}", "--registry", *options, "--format", "json")
    after = repo_snapshot(repo)
    for snapshot in (before, after):
        files = snapshot["files"]
        assert isinstance(files, dict)
        snapshot["files"] = {p: v for p, v in files.items() if p not in ("ckaudit.yaml", "ckaudit.lock")}
    assert before == after
    return status, json.loads(out) if out else {}


def _entry(repo: Path, name: str) -> dict[str, Any]:
    registry = yaml.safe_load((repo / "ckaudit.yaml").read_text(encoding="utf-8"))
    return next(c for c in registry["checkpoints"] if c["path"] == f"checkpoints/{name}")


def _scan_loads(repo: Path, name: str) -> bool:
    status, out = run_cli(repo, "scan", "--format", "json")
    (result,) = [c for c in json.loads(out)["checkpoints"] if c["path"] == f"checkpoints/{name}"]
    return bool(result["loads"]) and result["verdict"] == "ok" and status == 0


def _renamed(key: str, rename: dict[str, str]) -> str:
    """The closest enclosing entry of `rename` applies (a key, or a module path and what is under it)."""
    for old in sorted(rename, key=len, reverse=True):
        if key == old or key.startswith(old + "."):
            return rename[old] + key[len(old) :]
    return key


def _torch_oracle(repo: Path, name: str, model: Any, saved: dict[str, Any]) -> None:
    """torch.load + the entry's steps + load_state_dict: only ignored keys left over, every tensor equal."""
    import torch
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

    entry = _entry(repo, name)
    sd = torch.load(repo / "checkpoints" / name, weights_only=True)
    for part in (entry.get("key") or "").split(".") if entry.get("key") else []:
        sd = sd[part]
    steps = entry.get("load", {})
    strip = steps.get("strip_prefix", [])
    for prefix in [strip] if isinstance(strip, str) else strip:
        consume_prefix_in_state_dict_if_present(sd, prefix)
    sd = {_renamed(k, steps.get("rename", {})): v for k, v in sd.items()}
    target = type(model)(model.head.in_features)
    result = target.load_state_dict(sd, strict=False)
    assert result.missing_keys == []
    assert all(any(fnmatch.fnmatch(k, g) for g in entry.get("ignore", [])) for k in result.unexpected_keys)
    for key, value in target.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_dataparallel_checkpoint_gets_its_strip_prefix(repo: Path) -> None:
    import torch
    from torch import nn

    model = _trained()
    torch.save(nn.DataParallel(model).state_dict(), repo / "checkpoints" / "dp.pt")
    original = _register(repo, "dp.pt")
    lock_before = (repo / "ckaudit.lock").read_text(encoding="utf-8")
    assert not _scan_loads(repo, "dp.pt")

    status, report = _fix(repo, "dp.pt")
    assert status == 0 and report["checkpoints"][0]["loads"] is True
    assert _entry(repo, "dp.pt")["load"] == {"strip_prefix": "module."}
    assert (repo / "checkpoints" / "dp.pt").read_bytes() == original  # the file is only read
    assert not (repo / "checkpoints" / "dp.fixed.pt").exists()  # no copy
    lock = (repo / "ckaudit.lock").read_text(encoding="utf-8")
    assert "checkpoints/dp.pt" in lock and lock != lock_before  # the packages it loads with, recorded
    assert _scan_loads(repo, "dp.pt")
    _torch_oracle(repo, "dp.pt", model, model.state_dict())

    registry = (repo / "ckaudit.yaml").read_bytes()
    status, _ = _fix(repo, "dp.pt")  # loads now: nothing to write, a usage answer (SPEC: 2)
    assert status == 2 and (repo / "ckaudit.yaml").read_bytes() == registry


def test_compiled_training_checkpoint_with_renamed_layers(repo: Path) -> None:
    """A training script's dict around a torch.compile'd model whose `encoder` was called `backbone` when
    it was saved: the container key, the prefix and the rename, all written, all checked by torch."""
    import torch

    model = _trained()
    compiled = torch.compile(model)  # OptimizedModule: every key under `_orig_mod.`
    state = {
        k.replace("_orig_mod.encoder.", "_orig_mod.backbone."): v for k, v in compiled.state_dict().items()
    }
    torch.save({"model": state, "iter_num": 12, "best_val_loss": 1.5}, repo / "checkpoints" / "run.pt")
    original = _register(repo, "run.pt")
    _, out = run_cli(repo, "scan", "--format", "json")
    (before,) = json.loads(out)["checkpoints"]
    advised = [f["details"]["load_steps"] for f in before["findings"] if "load_steps" in f["details"]]

    status, report = _fix(repo, "run.pt")
    assert status == 0, report
    entry = _entry(repo, "run.pt")
    assert entry["key"] == "model"
    assert [entry["load"]] == advised  # what the scan's advice said to paste, written
    assert (repo / "checkpoints" / "run.pt").read_bytes() == original
    assert _scan_loads(repo, "run.pt")
    _torch_oracle(repo, "run.pt", model, model.state_dict())


def test_compiled_checkpoint_of_a_model_that_lost_a_layer(repo: Path) -> None:
    """Both causes written: the prefix as `load:`, the entries the model no longer defines as `ignore:`."""
    import torch
    from torch import nn

    model = _trained()
    model.aux = nn.Linear(8, 2)  # a head the code has since dropped
    compiled = torch.compile(model)
    torch.save(compiled.state_dict(), repo / "checkpoints" / "old.pt")
    _register(repo, "old.pt")

    status, _ = _fix(repo, "old.pt")
    assert status == 0
    entry = _entry(repo, "old.pt")
    assert entry["load"] == {"strip_prefix": "_orig_mod."}
    assert set(entry["ignore"]) in ({"aux.*"}, {"aux.weight", "aux.bias"})
    assert _scan_loads(repo, "old.pt")
    _torch_oracle(repo, "old.pt", model, model.state_dict())


def test_given_steps_are_written_only_when_they_load(repo: Path) -> None:
    import torch
    from torch import nn

    model = _trained()
    torch.save(nn.DataParallel(model).state_dict(), repo / "checkpoints" / "dp.pt")
    _register(repo, "dp.pt")
    registry = (repo / "ckaudit.yaml").read_bytes()

    status, report = _fix(repo, "dp.pt", "--strip-prefix", "modul")  # a wrong prefix: still fails
    assert status == 1 and report["checkpoints"][0]["loads"] is False
    assert (repo / "ckaudit.yaml").read_bytes() == registry

    status, _ = _fix(repo, "dp.pt", "--strip-prefix", "module.")
    assert status == 0 and _entry(repo, "dp.pt")["load"] == {"strip_prefix": "module."}
    _torch_oracle(repo, "dp.pt", model, model.state_dict())


def test_no_registry_step_for_a_resized_layer_or_missing_keys(repo: Path) -> None:
    """A resize is not a key step; missing keys would start fresh: nothing is written, exit 2."""
    import torch

    torch.save(_trained(16).state_dict(), repo / "checkpoints" / "wide.pt")
    _register(repo, "wide.pt")
    partial = {k: v for k, v in _trained().state_dict().items() if not k.startswith("head.")}
    torch.save(partial, repo / "checkpoints" / "headless.pt")
    _register(repo, "headless.pt")
    registry = (repo / "ckaudit.yaml").read_bytes()
    lock = (repo / "ckaudit.lock").read_bytes()
    for name in ("wide.pt", "headless.pt"):
        status, _ = _fix(repo, name)
        assert status == 2
    assert (repo / "ckaudit.yaml").read_bytes() == registry and (repo / "ckaudit.lock").read_bytes() == lock


def test_registry_refuses_copy_options_and_unregistered_files(repo: Path) -> None:
    import torch

    torch.save(_trained().state_dict(), repo / "checkpoints" / "loose.pt")
    digest = hashlib.sha256((repo / "checkpoints" / "loose.pt").read_bytes()).hexdigest()
    assert _fix(repo, "loose.pt")[0] == 2  # not registered
    assert not (repo / "ckaudit.yaml").exists()
    _register(repo, "loose.pt")
    assert _fix(repo, "loose.pt", "--to", "safetensors")[0] == 2
    assert hashlib.sha256((repo / "checkpoints" / "loose.pt").read_bytes()).hexdigest() == digest
