"""check_compat on the cases people meet: what the finding says, where it points, and the fix it proposes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ckaudit.compat.check import CompatResult, check_compat, spec_from_cli
from ckaudit.compat.keyfix import (
    collapse_keys,
    collapsed_renames,
    find_prefix,
    module_renames,
    rename_key,
)
from ckaudit.compat.renames import propose_renames
from ckaudit.errors import CkauditError
from ckaudit.findings import Rule, Severity
from ckaudit.reader.types import CheckpointInfo
from ckaudit.registry.config import CheckpointEntry, Config, ModelSpec
from ckaudit.scan.evaluator import Outcome
from ckaudit.scan.policy import judge
from ckaudit.worker.client import ModelWorker
from tests.conftest import requires_torch
from tests.modeltools import info_from_torch, write

CLASSIFIER = """from torch import nn


class ModelA(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3)
        self.fc1 = nn.Linear(16 * 26 * 26, num_classes)


class ModelB(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 13 * 13, num_classes)


class Renamed(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3)
        self.head = nn.Linear(16 * 26 * 26, num_classes)


class WithNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3)
        self.norm = nn.BatchNorm2d(16)


class Config:
    pass


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(width)


class OldTagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(Block(4), Block(4), Block(4))
        self.classifier = nn.Linear(4, 2)


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(Block(4), Block(4), Block(4))
        self.head = nn.Linear(4, 2)


class Wrapped(nn.Module):
    def __init__(self):
        super().__init__()
        self.module = ModelA()
"""


def line_of(text: str) -> int:
    """The line of CLASSIFIER that holds `text` (1-based)."""
    return next(n for n, line in enumerate(CLASSIFIER.splitlines(), 1) if text in line)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    write(root, "models/__init__.py", "")
    write(root, "models/classifier.py", CLASSIFIER)
    return root


def save(repo: Path, name: str, obj: Any) -> CheckpointInfo:
    import torch

    path = repo / "checkpoints" / name
    path.parent.mkdir(exist_ok=True)
    torch.save(obj, path)
    return info_from_torch(path)


def model(name: str) -> Any:
    import importlib

    return getattr(importlib.import_module("models.classifier"), name)


@pytest.fixture(scope="module")
def classes(repo: Path) -> Any:
    import sys

    sys.path.insert(0, str(repo))
    yield {name: model(name) for name in ("ModelA", "ModelB", "Renamed", "WithNorm", "OldTagger")}
    sys.path.remove(str(repo))
    for name in [m for m in sys.modules if m == "models" or m.startswith("models.")]:
        del sys.modules[name]


def check(repo: Path, worker: ModelWorker, info: CheckpointInfo, factory: str, **entry: Any) -> CompatResult:
    spec = ModelSpec(name=factory.rsplit(":", 1)[1], factory=factory)
    return check_compat(
        CheckpointEntry(path="checkpoints/x.pt", model=spec.name, **entry), spec, info, repo, worker
    )


def rules(result: CompatResult) -> list[Rule]:
    return [f.rule for f in result.findings]


@requires_torch
def test_resized_layers_show_both_shapes_and_the_defining_line(
    repo: Path, worker: ModelWorker, classes: Any
) -> None:
    info = save(repo, "a.pth", classes["ModelA"]().state_dict())
    result = check(repo, worker, info, "models.classifier:ModelB")
    assert not result.loads and rules(result) == [Rule.SHAPE_MISMATCH, Rule.SHAPE_MISMATCH]
    conv = result.findings[0]
    assert conv.message == "conv1.weight: [16, 3, 3, 3] in the checkpoint, [16, 1, 3, 3] in the model"
    assert conv.location is not None and (conv.location.path, conv.location.line) == (
        "models/classifier.py",
        14,
    )
    assert conv.location.snippet == "self.conv1 = nn.Conv2d(1, 16, 3)"
    assert result.sources == ("models/__init__.py", "models/classifier.py")


@requires_torch
@pytest.mark.parametrize(
    ("wrap", "prefix"),
    [
        ("dp", "module."),
        pytest.param("compile", "_orig_mod.", marks=pytest.mark.slow),  # torch.compile's import is slow
        pytest.param("both", "module._orig_mod.", marks=pytest.mark.slow),
    ],
)
def test_wrapper_prefixes_are_named_with_the_call_that_strips_them(
    repo: Path, worker: ModelWorker, classes: Any, wrap: str, prefix: str
) -> None:
    import torch
    from torch import nn

    net = classes["ModelA"]()
    wrapped = torch.compile(net) if wrap in ("compile", "both") else net
    wrapped = nn.DataParallel(wrapped) if wrap in ("dp", "both") else wrapped
    result = check(repo, worker, save(repo, f"{wrap}.pt", wrapped.state_dict()), "models.classifier:ModelA")
    assert not result.loads and rules(result) == [Rule.KEY_PREFIX]
    assert result.findings[0].details["prefix"] == prefix
    assert f'consume_prefix_in_state_dict_if_present(sd, "{prefix}")' in result.findings[0].fix
    location = result.findings[0].location  # the whole state dict moved: the model's class, not a layer
    assert location is not None
    assert (location.path, location.line) == ("models/classifier.py", line_of("class ModelA("))


@requires_torch
def test_model_side_prefix_points_at_the_wrapping_line(repo: Path, worker: ModelWorker, classes: Any) -> None:
    result = check(
        repo, worker, save(repo, "bare.pt", classes["ModelA"]().state_dict()), "models.classifier:Wrapped"
    )
    assert rules(result) == [Rule.KEY_PREFIX]
    assert result.findings[0].details["mode"] == "add"
    location = result.findings[0].location
    assert location is not None and (location.line, location.snippet) == (
        line_of("self.module = ModelA()"),
        "self.module = ModelA()",
    )


@requires_torch
def test_prefix_then_shape_mismatch(repo: Path, worker: ModelWorker, classes: Any) -> None:
    from torch import nn

    info = save(repo, "dp_a.pt", nn.DataParallel(classes["ModelA"]()).state_dict())
    result = check(repo, worker, info, "models.classifier:ModelB")
    assert rules(result) == [Rule.KEY_PREFIX, Rule.SHAPE_MISMATCH, Rule.SHAPE_MISMATCH]


@requires_torch
def test_renamed_layers_get_a_module_rename_map(repo: Path, worker: ModelWorker, classes: Any) -> None:
    info = save(repo, "a2.pth", classes["ModelA"]().state_dict())
    result = check(repo, worker, info, "models.classifier:Renamed")
    assert rules(result) == [Rule.RENAMED_KEYS]
    assert result.findings[0].details["modules"] == {"conv1": "stem", "fc1": "head"}
    assert result.findings[0].message == "layers renamed: conv1 -> stem, fc1 -> head"
    location = result.findings[0].location
    assert location is not None and location.line == line_of("self.stem = nn.Conv2d(3, 16, 3)")


@requires_torch
def test_renamed_containers_collapse_to_the_highest_module_moves(
    repo: Path, worker: ModelWorker, classes: Any
) -> None:
    info = save(repo, "tagger_v1.pt", classes["OldTagger"]().state_dict())
    result = check(repo, worker, info, "models.classifier:Tagger")
    assert not result.loads and rules(result) == [Rule.RENAMED_KEYS]
    finding = result.findings[0]
    assert finding.message == "layers renamed: backbone -> encoder, classifier -> head"
    assert finding.details["modules"] == {"backbone": "encoder", "classifier": "head"}
    assert finding.details["keys_renamed"] == 20
    assert finding.details["renames"] == {
        **{
            f"backbone.{{0..2}}.{leaf}": f"encoder.{{0..2}}.{leaf}"
            for leaf in (
                "conv.weight",
                "norm.weight",
                "norm.bias",
                "norm.running_mean",
                "norm.running_var",
                "norm.num_batches_tracked",
            )
        },
        "classifier.weight": "head.weight",
        "classifier.bias": "head.bias",
    }
    assert '`moves = {"backbone.": "encoder.", "classifier.": "head."}' in finding.fix
    assert finding.location is not None and (finding.location.line, finding.location.snippet) == (
        line_of("self.encoder = nn.Sequential("),
        "self.encoder = nn.Sequential(Block(4), Block(4), Block(4))",
    )


@requires_torch
def test_training_checkpoint_container_key(repo: Path, worker: ModelWorker, classes: Any) -> None:
    state = classes["ModelA"]().state_dict()
    info = save(
        repo, "train.pt", {"model_state_dict": state, "optimizer_state_dict": {"state": {}}, "epoch": 12}
    )
    assert check(repo, worker, info, "models.classifier:ModelA", key="model_state_dict").loads
    for key in (None, "state_dict"):
        result = check(repo, worker, info, "models.classifier:ModelA", key=key)
        assert not result.loads and rules(result) == [Rule.WRONG_CONTAINER_KEY], key
        assert "key: model_state_dict" in result.findings[0].fix


@requires_torch
def test_ignore_strict_dtype_and_expected_failures(repo: Path, worker: ModelWorker, classes: Any) -> None:
    state = classes["WithNorm"]().half().state_dict()
    del state["norm.num_batches_tracked"]
    info = save(repo, "norm.pt", state)  # keeps _metadata version 2: torch wants num_batches_tracked
    assert rules(check(repo, worker, info, "models.classifier:WithNorm"))[0] is Rule.MISSING_KEYS
    ignored = check(repo, worker, info, "models.classifier:WithNorm", ignore=("*.num_batches_tracked",))
    assert ignored.loads and rules(ignored) == [Rule.DTYPE_CHANGE]
    assert ignored.findings[0].severity is Severity.WARNING and "float16" in ignored.findings[0].message
    assert check(repo, worker, info, "models.classifier:WithNorm", strict=False).loads
    expected = check(repo, worker, info, "models.classifier:ModelB", expect_fails=True, reason="v2 head")
    assert not expected.loads and Severity.ERROR in {f.severity for f in expected.findings}  # raw: the policy
    entry = CheckpointEntry(path="checkpoints/x.pt", model="ModelB", expect_fails=True, reason="v2 head")
    judged = judge(entry, Outcome(False, True, expected.findings, {}))  # applies `expect: fails`, once
    assert {f.severity for f in judged} == {Severity.NOTE}
    assert all(f.message.startswith("expected failure (v2 head): ") for f in judged)
    again = check(repo, worker, info, "models.classifier:WithNorm", strict=False, expect_fails=True)
    assert again.loads and Rule.STALE_EXPECTATION not in rules(again)  # the commands add that note


@requires_torch
def test_missing_class_and_model_error(repo: Path, worker: ModelWorker, classes: Any) -> None:
    info = save(repo, "plain.pt", classes["ModelA"]().state_dict())
    with_globals = CheckpointInfo(
        info.path,
        info.format,
        info.size,
        candidates=info.candidates,
        globals=(
            "collections.OrderedDict",
            "models.classifier.Config",
            "models.classifier.TrainArgs",
            "torch._utils._rebuild_tensor_v2",
        ),
    )
    result = check(repo, worker, with_globals, "models.classifier:ModelA")
    assert not result.loads and rules(result) == [Rule.MISSING_CLASS]
    assert result.findings[0].details["global_name"] == "models.classifier.TrainArgs"
    broken = check(repo, worker, info, "models.classifier:Gone")
    assert rules(broken) == [Rule.MODEL_ERROR] and "Gone" in broken.findings[0].message


def test_spec_from_cli(tmp_path: Path) -> None:
    config = Config(root=tmp_path, models={"clf": ModelSpec("clf", factory="models.c:A", kwargs={"n": 1})})
    assert spec_from_cli("clf", None, config).kwargs == {"n": 1}
    assert spec_from_cli("clf", '{"n": 2}', config).kwargs == {"n": 2}
    assert spec_from_cli("pkg.mod:Net", '{"width": 8}', config) == ModelSpec(
        "pkg.mod:Net", "pkg.mod:Net", kwargs={"width": 8}
    )
    for bad_model, bad_kwargs in (("nonsense", None), ("pkg:Net", "{not json"), ("pkg:Net", "[1]")):
        with pytest.raises(CkauditError):
            spec_from_cli(bad_model, bad_kwargs, config)


def test_key_helpers() -> None:
    keys = [f"layers.{i}.attn.qkv.weight" for i in range(32)] + ["layers.3.mlp.w", "layers.5.mlp.w", "head.w"]
    assert collapse_keys(keys) == ["layers.{0..31}.attn.qkv.weight", "layers.{3,5}.mlp.w", "head.w"]
    grid = [f"a.{i}.b.{j}.w" for i in range(2) for j in range(3)]
    assert collapse_keys(grid) == ["a.{0..1}.b.{0..2}.w"]
    fix = find_prefix(["fc.w", "fc.b"], ["module._orig_mod.fc.w", "module._orig_mod.fc.b"])
    assert fix is not None and (fix.mode, fix.prefix) == ("strip", "module._orig_mod.")
    inverse = find_prefix(["model.fc.w"], ["fc.w"])
    assert inverse is not None and (inverse.mode, inverse.prefix) == ("add", "model.")
    model, saved = {"new.w": (2, 3), "new.b": (2,)}, {"old.w": (2, 3), "old.b": (2,)}
    proposal = propose_renames(["new.w", "new.b"], ["old.w", "old.b"], model, saved)
    assert proposal is not None and proposal.renames == {"old.w": "new.w", "old.b": "new.b"}
    assert propose_renames(["new.w"], ["old.b"], model, saved) is None


def test_module_renames_take_the_highest_module_that_moves_as_one() -> None:
    renames = {f"backbone.{i}.{leaf}": f"encoder.{i}.{leaf}" for i in range(3) for leaf in ("w", "b")}
    renames |= {"classifier.w": "head.w", "fc.w": "fc.weight"}
    moves = module_renames(renames)
    assert moves == {"backbone": "encoder", "classifier": "head", "fc.w": "fc.weight"}
    assert all(rename_key(moves, old) == new for old, new in renames.items())
    assert rename_key(moves, "other.w") == "other.w"
    # a checkpoint key that stays where it is under `backbone` keeps the move below it
    kept = module_renames(renames, ["backbone.3.w"])
    assert list(kept)[:3] == ["backbone.0", "backbone.1", "backbone.2"]
    assert rename_key(kept, "backbone.3.w") == "backbone.3.w"
    assert collapsed_renames(renames) == {
        "backbone.{0..2}.w": "encoder.{0..2}.w",
        "backbone.{0..2}.b": "encoder.{0..2}.b",
        "classifier.w": "head.w",
        "fc.w": "fc.weight",
    }


def test_pair_renames_follow_the_models_order() -> None:
    model = {"stem.w": (2,), "body.w": (3,), "head.w": (4,)}
    saved = {"old_head.w": (4,), "old_stem.w": (2,), "old_body.w": (3,)}
    proposal = propose_renames(list(reversed(model)), list(saved), model, saved)
    assert proposal is not None and list(proposal.renames.values()) == ["stem.w", "body.w", "head.w"]
