"""The load verdict on degenerate inputs, against real torch: `torch.load` + `load_state_dict(strict=True)`.

Every model here is one a user can have (no parameters at all, only non-persistent buffers, one scalar
buffer, zero-size tensors, only persistent buffers, empty child containers), every checkpoint one torch.save
really writes (its state dict as is, as a plain dict without `_metadata`, `{}`, nested under `state_dict`,
a training checkpoint, `{"state_dict": {}}`, a `_metadata`-only dict, one scalar tensor). Each model A's
checkpoint is loaded into each model B, with and without `key:`; ckaudit's verdict must equal torch's.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ckaudit.cli import main
from ckaudit.compat.check import check_compat
from ckaudit.findings import Severity
from ckaudit.reader import read_checkpoint
from ckaudit.registry.config import CheckpointEntry, ModelSpec
from ckaudit.worker.client import ModelWorker
from tests.compat.test_differential import _import
from tests.conftest import requires_torch
from tests.modeltools import write

pytestmark = [
    requires_torch,
    pytest.mark.filterwarnings("ignore:Initializing zero-element tensors:UserWarning"),
]

HEADER = "import torch\nfrom torch import nn\n\n\nclass Model(nn.Module):\n    def __init__(self):\n"
MODELS = {
    "no_state": "        super().__init__()\n",
    "non_persistent": "        super().__init__()\n"
    '        self.register_buffer("mask", torch.ones(3), persistent=False)\n',
    "scalar_buffer": '        super().__init__()\n        self.register_buffer("step", torch.tensor(0))\n',
    "zero_size": "        super().__init__()\n        self.w = nn.Parameter(torch.zeros(0))\n"
    "        self.fc = nn.Linear(0, 2)\n",
    "persistent_only": "        super().__init__()\n"
    '        self.register_buffer("mean", torch.zeros(2))\n'
    '        self.register_buffer("count", torch.tensor(1.0))\n',
    "empty_children": "        super().__init__()\n        self.seq = nn.Sequential()\n"
    "        self.blocks = nn.ModuleList()\n        self.inner = nn.Module()\n",
    "linear": "        super().__init__()\n        self.fc = nn.Linear(2, 3)\n",
}


def _forms(state: Any) -> dict[str, tuple[Any, tuple[str | None, ...]]]:
    """Checkpoints made from model A's state dict: (object saved, the `key:` values to try)."""
    import torch

    return {
        "state": (state, (None,)),
        "plain": (dict(state), (None,)),
        "nested": ({"state_dict": state}, (None, "state_dict")),
        "training": (
            {"model": state, "optimizer": {"state": {}, "param_groups": []}, "epoch": 1},
            (None, "model"),
        ),
        "empty": ({}, (None,)),
        "nested_empty": ({"state_dict": {}}, (None, "state_dict")),
        "metadata_key": ({"_metadata": {"": {"version": 1}}}, (None,)),
        "scalar": ({"step": torch.tensor(5)}, (None,)),
    }


DEGENERATE = ("no_state", "non_persistent")
INDEPENDENT = ("empty", "nested_empty", "metadata_key", "scalar")  # the same whatever model A is


def _cases() -> list[Any]:
    """Every (model A, form, model B, key); the fast tier runs each model's own state dict and the empty
    forms into the stateless models, the full suite every pair."""
    cases = []
    for a, b in itertools.product(MODELS, MODELS):
        for form, keys in _forms({}).items():
            if form in INDEPENDENT and a != "linear":
                continue
            fast = (a == b and form in ("state", "plain")) or (form in INDEPENDENT and b in DEGENERATE)
            marks = () if fast else (pytest.mark.slow,)
            cases += [pytest.param(a, form, b, key, marks=marks) for key in keys]
    return cases


@pytest.fixture(scope="module")
def edge_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every model as `edges/<name>.py` and every checkpoint as `ckpt/<model>-<form>.pt`, saved by torch."""
    import torch

    root = tmp_path_factory.mktemp("edges")
    write(root, "edges/__init__.py", "")
    for name, body in MODELS.items():
        module = _import(write(root, f"edges/{name}.py", HEADER + body), f"_edge_{name}")
        for form, (obj, _) in _forms(module.Model().state_dict()).items():
            (root / "ckpt").mkdir(exist_ok=True)
            torch.save(obj, root / f"ckpt/{name}-{form}.pt")
    return root


def torch_loads(root: Path, checkpoint: Path, model: str, key: str | None) -> tuple[bool, str]:
    """What a user's `model.load_state_dict(torch.load(path)[key], strict=True)` does."""
    import torch

    loaded = torch.load(checkpoint, weights_only=True)
    built = _import(root / f"edges/{model}.py", f"_edge_oracle_{model}").Model()
    try:
        built.load_state_dict(loaded[key] if key else loaded, strict=True)
    except (RuntimeError, KeyError, TypeError) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return True, ""


@pytest.mark.parametrize(("model_a", "form", "model_b", "key"), _cases())
def test_edge_verdict_equals_torch(
    model_a: str, form: str, model_b: str, key: str | None, edge_root: Path, worker: ModelWorker
) -> None:
    checkpoint = edge_root / f"ckpt/{model_a}-{form}.pt"
    loads, said = torch_loads(edge_root, checkpoint, model_b, key)
    entry = CheckpointEntry(path=checkpoint.relative_to(edge_root).as_posix(), model="b", key=key)
    spec = ModelSpec(name="b", factory=f"edges.{model_b}:Model")
    result = check_compat(entry, spec, read_checkpoint(checkpoint), edge_root, worker)
    errors = [f for f in result.findings if f.severity is Severity.ERROR]
    context = f"torch: {'loads' if loads else said!r}; ckaudit: {result}"
    assert result.build.ok, context
    assert result.loads == loads, context
    assert bool(errors) == (not loads), context


# --- the same through the commands a user runs, with no `python:` (ckaudit's own interpreter has torch)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status = main([*args, "--format", "json"])
    return status, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "model", ["non_persistent", "no_state", "scalar_buffer", "zero_size", "empty_children"]
)
def test_diagnose_and_scan_agree_with_torch(
    model: str,
    git_repo: Path,
    run_git: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    write(git_repo, "models/__init__.py", "")
    module = _import(write(git_repo, "models/net.py", HEADER + MODELS[model]), f"_edge_cli_{model}")
    checkpoint = git_repo / "ckpt/net.pt"
    checkpoint.parent.mkdir()
    torch.save(module.Model().state_dict(), checkpoint)
    write(git_repo, "ckaudit.yaml", "version: 1\nmodels:\n  net:\n    factory: models.net:Model\n")
    monkeypatch.chdir(git_repo)
    assert main(["register", "ckpt/net.pt", "--model", "net"]) == 0
    run_git(git_repo, "add", "-A")
    run_git(git_repo, "commit", "-qm", "model and checkpoint")
    capsys.readouterr()

    status, report = _run(capsys, "diagnose", "ckpt/net.pt", "--no-cache")
    assert status == 0 and [c["verdict"] for c in report["checkpoints"]] == ["ok"], report
    status, report = _run(capsys, "scan", "--no-cache")
    assert status == 0 and [c["verdict"] for c in report["checkpoints"]] == ["ok"], report
    assert report["summary"]["ok"] == 1

    write(git_repo, "models/net.py", HEADER + MODELS["linear"])  # now the model has state it lacks
    changed = _import(git_repo / "models/net.py", f"_edge_cli_{model}_linear").Model()
    with pytest.raises(RuntimeError, match="Error\\(s\\) in loading"):  # torch's own answer, the oracle
        changed.load_state_dict(torch.load(checkpoint, weights_only=True), strict=True)
    status, report = _run(capsys, "scan", "--no-cache")
    assert status == 1 and [c["verdict"] for c in report["checkpoints"]] == ["code"], report
