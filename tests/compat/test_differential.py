"""ckaudit's load verdict against real torch: torch.load + load_state_dict(strict=True) is the oracle.

Each case writes model A and model B as source files, saves A's state dict with torch.save (wrapped,
compiled, halved, stripped of BatchNorm counters, nested in a training checkpoint), and compares what torch
really does when B loads it with what ckaudit says (the torch-free reader + ONE worker for all cases).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ckaudit.compat.check import check_compat
from ckaudit.findings import Rule, Severity
from ckaudit.reader import read_checkpoint
from ckaudit.registry.config import CheckpointEntry, ModelSpec
from ckaudit.worker.client import ModelWorker
from tests.compat.gen import EDGE_CASES, Case, edge_case, make_case
from tests.conftest import requires_torch
from tests.modeltools import write

CASES = 330
EXPLAINS_MISSING = {Rule.MISSING_KEYS, Rule.KEY_PREFIX, Rule.RENAMED_KEYS, Rule.WRONG_CONTAINER_KEY}
EXPLAINS_UNEXPECTED = {Rule.UNEXPECTED_KEYS, Rule.KEY_PREFIX, Rule.RENAMED_KEYS, Rule.WRONG_CONTAINER_KEY}
REKEYING = {Rule.KEY_PREFIX, Rule.RENAMED_KEYS, Rule.WRONG_CONTAINER_KEY}
EXPECTED_RULE = {
    "dp": Rule.KEY_PREFIX,
    "compile": Rule.KEY_PREFIX,
    "dp_compile": Rule.KEY_PREFIX,
    "training_nokey": Rule.WRONG_CONTAINER_KEY,
}

pytestmark = [requires_torch]


@pytest.fixture(scope="module")
def case_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("differential")
    write(root, "cases/__init__.py", "")
    return root


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _checkpoint(model: Any, transform: str) -> Any:
    import torch
    from torch import nn

    if transform in ("dp", "compile", "dp_compile"):
        wrapped = torch.compile(model) if "compile" in transform else model
        return (nn.DataParallel(wrapped) if "dp" in transform else wrapped).state_dict()
    if transform == "half":
        return model.half().state_dict()
    state = model.state_dict()
    if transform.startswith("no_nbt"):
        for key in [k for k in state if k.endswith("num_batches_tracked")]:
            del state[key]
        if transform == "no_nbt_plain":
            return dict(state)
        if transform == "no_nbt_meta_v1":
            for entry in state._metadata.values():
                entry["version"] = 1
    if transform == "plain_empty":
        return {}
    if transform.startswith("training"):
        return {
            "model_state_dict": state,
            "epoch": 3,
            "optimizer_state_dict": {"state": {}, "param_groups": []},
        }
    return state


def _torch_verdict(module: ModuleType, path: Path, key: str | None) -> tuple[bool, set[str], str]:
    import torch

    loaded = torch.load(path, weights_only=True)
    state = loaded[key] if key else loaded
    try:
        module.build().load_state_dict(state, strict=True)
    except RuntimeError as exc:
        text = str(exc)
        kinds = {
            kind
            for kind, marker in (
                ("size", "size mismatch for"),
                ("missing", "Missing key(s)"),
                ("unexpected", "Unexpected key(s)"),
            )
            if marker in text
        }
        return False, kinds, text
    return True, set(), ""


def _prepare(case: Case, root: Path, name: str) -> tuple[Path, ModuleType]:
    a_path = write(root, f"cases/{name}_a.py", case.model_a.source())
    b_path = write(root, f"cases/{name}_b.py", case.model_b.source())
    model_a = _import(a_path, f"_diff_{name}_a").Model()
    checkpoint = root / f"ckpt/{name}.pt"
    checkpoint.parent.mkdir(exist_ok=True)
    import torch

    torch.save(_checkpoint(model_a, case.transform), checkpoint)
    return checkpoint, _import(b_path, f"_diff_{name}_b")


def _compare(case: Case, root: Path, name: str, worker: ModelWorker) -> tuple[Any, set[str], str]:
    """torch's verdict and ckaudit's on the same file and model B; the shared assertions made."""
    checkpoint, module_b = _prepare(case, root, name)
    torch_loads, kinds, torch_text = _torch_verdict(module_b, checkpoint, case.key)
    entry = CheckpointEntry(path=checkpoint.relative_to(root).as_posix(), model="b", key=case.key)
    spec = ModelSpec(name="b", factory=f"cases.{name}_b:build")
    result = check_compat(entry, spec, read_checkpoint(checkpoint), root, worker)
    rules = {f.rule for f in result.findings if f.severity is Severity.ERROR}
    context = f"{name} ({case.mutation}/{case.transform}): torch said {torch_text!r}, ckaudit {result}"
    assert result.build.ok, context
    assert result.loads == torch_loads, context
    assert bool(rules) == (not torch_loads), context
    if "size" in kinds:
        assert Rule.SHAPE_MISMATCH in rules, context
    if "missing" in kinds:
        assert rules & EXPLAINS_MISSING, context
    if "unexpected" in kinds:
        assert rules & EXPLAINS_UNEXPECTED, context
    if Rule.SHAPE_MISMATCH in rules and "size" not in kinds:
        assert rules & REKEYING, context  # a size mismatch revealed once the keys were lined up
    return result, rules, context


FAST_CASES = 24  # the fast tier runs the first cases; the full suite all of them


@pytest.mark.parametrize(
    "index", [pytest.param(i, marks=(pytest.mark.slow,) if i >= FAST_CASES else ()) for i in range(CASES)]
)
def test_verdict_equals_torch(index: int, case_root: Path, worker: ModelWorker) -> None:
    case = make_case(index)
    result, rules, context = _compare(case, case_root, f"case{index}", worker)
    if case.transform in EXPECTED_RULE and case.mutation == "same":
        assert EXPECTED_RULE[case.transform] in rules, context
    if case.mutation == "rename" and case.transform in ("none", "half"):
        assert rules & {Rule.RENAMED_KEYS}, context
    if case.mutation == "model-wrapped" and case.transform == "none":
        prefix = next(f for f in result.findings if f.rule is Rule.KEY_PREFIX)
        assert prefix.details["mode"] == "add" and prefix.details["prefix"] == "module.", context


FAST_EDGE_CASES = 36  # every pair of edge models as saved; the full suite adds `{}` and training files


@pytest.mark.parametrize(
    "index",
    [pytest.param(i, marks=(pytest.mark.slow,) if i >= FAST_EDGE_CASES else ()) for i in range(EDGE_CASES)],
)
def test_degenerate_verdict_equals_torch(index: int, case_root: Path, worker: ModelWorker) -> None:
    """Little or no state: empty state dicts (a model without parameters, one with only non-persistent
    buffers), a lone 0-d buffer, `{}` saved for any model, the same inside a training checkpoint. torch loads
    an empty state dict into a model without persistent state; anything else is a key finding, never
    "no state dict anywhere"."""
    case = edge_case(index)
    _, rules, context = _compare(case, case_root, f"edge{index}", worker)
    wrong_container = Rule.WRONG_CONTAINER_KEY in rules
    assert wrong_container == (case.transform == "training_nokey"), context
