"""Every piece of advice ckaudit prints, followed as a user would on a copy, and loaded with real torch.

`ignore:` globs must match exactly the failing keys among every key of the model and the file; rename code
is executed verbatim and the result must load with strict=True with each tensor where it belongs; a pairing
a dry run cannot decide is reported ambiguous, not proposed.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest

from ckaudit.compat.check import CompatResult, check_compat
from ckaudit.findings import CheckpointResult, Finding, Report, Rule
from ckaudit.registry.config import CheckpointEntry, ModelSpec
from ckaudit.report.text import SCREENFUL, render
from ckaudit.worker.client import ModelWorker
from tests.conftest import requires_torch
from tests.docs_details import undocumented
from tests.modeltools import info_from_torch, write

pytestmark = [requires_torch]

NETS = """import torch
from torch import nn


class Attn(nn.Module):
    def __init__(self, width, mask=False):
        super().__init__()
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        if mask:
            self.register_buffer("mask", torch.ones(4, 4))


class Block(nn.Module):
    def __init__(self, width, mask=False):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.attn = Attn(width, mask)
        self.fc = nn.Linear(width, width)


class Tower(nn.Module):
    def __init__(self, width=8, depth=12, mask=False, pos=False):
        super().__init__()
        self.embed = nn.Linear(3, width)
        self.blocks = nn.ModuleList(Block(width, mask) for _ in range(depth))
        self.head = nn.Linear(width, 2)
        if pos:
            self.pos_embed = nn.Parameter(torch.zeros(1, 4, width))


def Masked():
    return Tower(mask=True)


def WithPos():
    return Tower(pos=True)


def Wide():
    return Tower(width=16)


def Small():
    return Tower(depth=2)


class Pair(nn.Module):
    def __init__(self, first, second):
        super().__init__()
        setattr(self, first, nn.Linear(4, 4))
        setattr(self, second, nn.Linear(4, 4))


def OldPair():
    return Pair("alpha", "beta")


def NewPair():
    return Pair("left", "right")


class Stage(nn.Module):
    def __init__(self, width, down_in=None, down_out=None):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3)
        if down_in is not None:
            self.downsample = nn.Conv2d(down_in, width, 1)
        if down_out is not None:
            self.downsample = nn.Conv2d(width, down_out, 1)


class DownAtEnd(nn.Module):
    def __init__(self):
        super().__init__()
        self.stages = nn.Sequential(Stage(4, down_out=8), Stage(8, down_out=16), Stage(16))


class DownAtStart(nn.Module):
    def __init__(self):
        super().__init__()
        self.stages = nn.Sequential(Stage(4), Stage(8, down_in=4), Stage(16, down_in=8))


class Old(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 6))
        self.aux = nn.Linear(6, 3)
        self.head = nn.Module()
        self.head.fc = nn.Linear(6, 2)


class TFNorm(nn.Module):  # a LayerNorm as TF-era code wrote it: gamma and beta

    def __init__(self, width):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(width))
        self.beta = nn.Parameter(torch.zeros(width))


class OldEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.ModuleDict({"ln": TFNorm(8), "fc": nn.Linear(8, 8)}) for _ in "abc")


class NewEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        norm = nn.LayerNorm
        self.layers = nn.ModuleList(nn.ModuleDict({"ln": norm(8), "fc": nn.Linear(8, 8)}) for _ in "abc")


class New(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 6))
        self.fc = nn.Linear(6, 2)
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("advice")
    write(root, "nets.py", NETS)
    return root


@pytest.fixture(scope="module")
def nets(repo: Path) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("advice_nets", repo / "nets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _random_state(net: Any) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    return {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in net.state_dict().items()}


def _check(repo: Path, worker: ModelWorker, state: dict[str, Any], factory: str) -> CompatResult:
    import torch

    path = repo / "checkpoints" / f"{factory}.pt"
    path.parent.mkdir(exist_ok=True)
    torch.save(state, path)
    spec = ModelSpec(name=factory, factory=f"nets:{factory}")
    entry = CheckpointEntry(path=f"checkpoints/{factory}.pt", model=factory)
    result = check_compat(entry, spec, info_from_torch(path), repo, worker)
    assert undocumented(result.findings) == []  # every detail is one docs/json-format.md names
    return result


def _only(result: CompatResult, rule: Rule) -> Finding:
    found = [f for f in result.findings if f.rule is rule]
    assert len(found) == 1, [f.message for f in result.findings]
    return found[0]


def _matched(globs: list[str], keys: Any) -> set[str]:
    return {k for k in keys if any(fnmatch.fnmatchcase(k, g) for g in globs)}


def _run_fix(fix: str, state: dict[str, Any]) -> dict[str, Any]:
    code = re.search(r"`((?:import re; subs|renames|moves) = .*?sd = \{.*?\})`", fix)
    assert code is not None, fix
    scope: dict[str, Any] = {"sd": dict(state)}
    exec(code.group(1), scope)
    return dict(scope["sd"])


def test_new_buffers_get_exact_globs_and_persistent_false(repo: Path, worker: ModelWorker, nets: Any) -> None:
    state = _random_state(nets.Tower())
    result = _check(repo, worker, state, "Masked")
    finding = _only(result, Rule.MISSING_KEYS)
    model = nets.Masked()
    universe = {*model.state_dict(), *state}
    assert finding.details["ignore"] == ["blocks.*.attn.mask"]
    assert _matched(finding.details["ignore"], universe) == set(finding.details["keys"])
    assert "persistent=False" in finding.fix and '"blocks.*.attn.mask"' in finding.fix
    outcome = model.load_state_dict(state, strict=False)  # what `ignore:` allows
    assert set(outcome.missing_keys) == _matched(finding.details["ignore"], universe)


def test_a_new_top_level_parameter_is_matched_by_its_own_name(
    repo: Path, worker: ModelWorker, nets: Any
) -> None:
    state = _random_state(nets.Tower())
    finding = _only(_check(repo, worker, state, "WithPos"), Rule.MISSING_KEYS)
    assert finding.details["ignore"] == ["pos_embed"] and "persistent=False" not in finding.fix
    model = nets.WithPos()
    assert _matched(["pos_embed"], {*model.state_dict(), *state}) == {"pos_embed"}


def test_a_pairing_names_cannot_decide_is_ambiguous_not_proposed(
    repo: Path, worker: ModelWorker, nets: Any
) -> None:
    result = _check(repo, worker, _random_state(nets.OldPair()), "NewPair")
    finding = _only(result, Rule.RENAMED_KEYS)
    assert finding.details["modules"] == {} and "ambiguous" in finding.message
    groups = finding.details["ambiguous"]
    assert {k for g in groups for k in g["checkpoint"]} == {
        "alpha.weight",
        "beta.weight",
        "alpha.bias",
        "beta.bias",
    }
    assert {k for g in groups for k in g["model"]} == {
        "left.weight",
        "right.weight",
        "left.bias",
        "right.bias",
    }
    assert "moves =" not in finding.fix and "renames =" not in finding.fix


def test_a_downsample_moved_to_the_next_stage_is_a_rename_not_a_resize(
    repo: Path, worker: ModelWorker, nets: Any
) -> None:
    import torch

    state = _random_state(nets.DownAtEnd())
    result = _check(repo, worker, state, "DownAtStart")
    assert [f.rule for f in result.findings] == [Rule.RENAMED_KEYS], [f.message for f in result.findings]
    finding = result.findings[0]
    assert finding.details["modules"] == {
        "stages.0.downsample": "stages.1.downsample",
        "stages.1.downsample": "stages.2.downsample",
    }
    fixed = _run_fix(finding.fix, state)
    model = nets.DownAtStart()
    model.load_state_dict(fixed, strict=True)
    assert torch.equal(model.stages[1].downsample.weight, state["stages.0.downsample.weight"])
    assert torch.equal(model.stages[2].downsample.weight, state["stages.1.downsample.weight"])


def test_renames_prefix_guard_and_leftovers_named_as_in_the_file(
    repo: Path, worker: ModelWorker, nets: Any
) -> None:
    import torch

    state = _random_state(nets.Old())
    result = _check(repo, worker, state, "New")
    rules = [f.rule for f in result.findings]
    assert Rule.KEY_PREFIX not in rules  # `head.` pairs 2 of 10 differing keys: not the explanation
    renamed = _only(result, Rule.RENAMED_KEYS)
    unexpected = _only(result, Rule.UNEXPECTED_KEYS)
    assert set(unexpected.details["keys"]) == {"aux.weight", "aux.bias"}  # as in the file
    model = nets.New()
    universe = {*model.state_dict(), *state}
    assert _matched(unexpected.details["ignore"], universe) == {"aux.weight", "aux.bias"}
    fixed = _run_fix(renamed.fix, state)
    fixed = {k: v for k, v in fixed.items() if k not in _matched(unexpected.details["ignore"], fixed)}
    model.load_state_dict(fixed, strict=True)  # strict, after the printed steps
    assert torch.equal(model.fc.weight, state["head.fc.weight"])
    assert torch.equal(model.encoder[1].weight, state["backbone.1.weight"])


def test_gamma_and_beta_become_weight_and_bias(repo: Path, worker: ModelWorker, nets: Any) -> None:
    import torch

    state = _random_state(nets.OldEncoder())
    finding = _only(_check(repo, worker, state, "NewEncoder"), Rule.RENAMED_KEYS)
    assert "ambiguous" not in finding.details
    model = nets.NewEncoder()
    model.load_state_dict(_run_fix(finding.fix, state), strict=True)
    for i in range(3):  # all six [8]-shaped tensors: each where its name says
        assert torch.equal(model.layers[i]["ln"].weight, state[f"layers.{i}.ln.gamma"])
        assert torch.equal(model.layers[i]["ln"].bias, state[f"layers.{i}.ln.beta"])


@pytest.mark.parametrize("wrap", ["dp", pytest.param("compile", marks=pytest.mark.slow)])  # compile: ~9 s
def test_the_printed_prefix_strip_loads_strict(repo: Path, worker: ModelWorker, nets: Any, wrap: str) -> None:
    import torch
    from torch import nn

    net = nets.Tower(depth=2)
    wrapped = nn.DataParallel(net) if wrap == "dp" else torch.compile(net)
    state = _random_state(wrapped)
    finding = _only(_check(repo, worker, state, "Small"), Rule.KEY_PREFIX)
    code = re.search(
        r"`(torch\.nn\.modules\.utils\.consume_prefix_in_state_dict_if_present\(sd, [^`]+\))`", finding.fix
    )
    assert code is not None, finding.fix
    sd = dict(state)
    exec(code.group(1), {"torch": torch, "sd": sd})
    nets.Small().load_state_dict(sd, strict=True)


def test_a_width_change_across_twelve_blocks_fits_one_screen(
    repo: Path, worker: ModelWorker, nets: Any
) -> None:
    result = _check(repo, worker, _random_state(nets.Tower()), "Wide")
    mismatches = [f for f in result.findings if f.rule is Rule.SHAPE_MISMATCH]
    assert len(mismatches) == 1
    keys = {m["key"] for m in mismatches[0].details["mismatches"]}
    assert len(keys) == 2 + 12 * 8 + 1  # embed (2), every block tensor, head.weight
    checkpoint = CheckpointResult("checkpoints/Tower.pt", "Wide", "zip", 0, 0, result.findings, loads=False)
    text = render(Report("/r", "scan", (checkpoint,)))
    block = text.split("\n\n")[0].splitlines()
    assert len(block) <= SCREENFUL and block[0].endswith("[fails: code]  model Wide")
    assert all(len(line) <= 80 for line in block), block
