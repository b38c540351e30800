"""Renames from real library upgrades: tiny models saved by transformers 4.51.3 (committed fixtures, see
tests/data/upgrades/make_fixtures.py), checked against the transformers installed here.

The library's own conversion (`from_pretrained`, which applies its checkpoint conversion mapping) is the
truth: the fix ckaudit prints is run on the old state dict as a user would, loaded with strict=True into the
new model, and compared tensor by tensor with what `from_pretrained` made of the same file. A map that loads
but puts a tensor on the wrong key fails here; pairs ckaudit cannot tell apart must be reported ambiguous.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ckaudit.compat.check import check_compat
from ckaudit.compat.keyfix import rename_key
from ckaudit.findings import Rule
from ckaudit.reader import read_checkpoint
from ckaudit.registry.config import CheckpointEntry, ModelSpec
from ckaudit.worker.client import ModelWorker
from tests.conftest import requires_torch
from tests.docs_details import undocumented

transformers = pytest.importorskip("transformers")
pytestmark = [requires_torch, pytest.mark.slow]
FIXTURES = Path(__file__).resolve().parents[1] / "data" / "upgrades"
CLASSES = {
    "vit": "ViTForImageClassification",
    "swin": "SwinForImageClassification",
    "segformer": "SegformerForSemanticSegmentation",
    "llava": "LlavaForConditionalGeneration",
}


def _spec(name: str) -> ModelSpec:
    folder = FIXTURES / name
    build = (
        f"import transformers\n"
        f"config = transformers.AutoConfig.from_pretrained({str(folder)!r})\n"
        f"model = transformers.{CLASSES[name]}(config)\n"
    )
    return ModelSpec(name=name, build=build)


def _truth(name: str) -> dict[str, Any]:
    cls = getattr(transformers, CLASSES[name])
    return dict(cls.from_pretrained(FIXTURES / name).state_dict())


def _old_state(name: str) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(FIXTURES / name / "model.safetensors")


def _apply_fix(fix: str, state: dict[str, Any]) -> dict[str, Any]:
    """Run the code the fix prints (`renames = …; sd = …` or `moves = …; sd = …`) on a state dict."""
    code = re.search(r"`((?:import re; subs|renames|moves) = .*?sd = \{.*?\})`", fix)
    assert code is not None, fix
    scope: dict[str, Any] = {"sd": dict(state)}
    exec(code.group(1), scope)  # the user's step, verbatim
    return dict(scope["sd"])


@requires_torch
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_upgrade_renames_match_the_librarys_conversion(
    name: str, worker: ModelWorker, tmp_path: Path
) -> None:
    import torch

    info = read_checkpoint(FIXTURES / name / "model.safetensors")
    entry = CheckpointEntry(path=f"{name}/model.safetensors", model=name)
    result = check_compat(entry, _spec(name), info, tmp_path, worker)
    truth = _truth(name)
    old = _old_state(name)
    assert not result.loads and undocumented(result.findings) == []
    renamed = [f for f in result.findings if f.rule is Rule.RENAMED_KEYS]
    print(name, [(f.rule.value, f.message) for f in result.findings])
    assert renamed, [f.message for f in result.findings]
    finding = renamed[0]
    ambiguous = finding.details.get("ambiguous", [])
    fixed = _apply_fix(finding.fix, old) if finding.details["modules"] else dict(old)
    if finding.details["modules"]:  # the `load:` snippet, applied as the registry applies it, does the same
        steps = finding.details["load_steps"]
        assert "load: {rename: {" in finding.fix and set(steps) == {"rename"}
        as_registry = {rename_key(steps["rename"], k): v for k, v in old.items()}
        assert as_registry.keys() == fixed.keys()
        assert all(as_registry[k] is fixed[k] for k in fixed)
    unsure = {k for group in ambiguous for k in group["checkpoint"]}
    model = getattr(transformers, CLASSES[name])(transformers.AutoConfig.from_pretrained(FIXTURES / name))
    outcome = model.load_state_dict(fixed, strict=False)
    # what is left is what the finding calls ambiguous (no pairing proposed) and keys the new code dropped,
    # reported by their names in the file, which the library's conversion drops too
    dropped = {k for f in result.findings if f.rule is Rule.UNEXPECTED_KEYS for k in f.details["keys"]}
    assert set(outcome.unexpected_keys) == unsure | dropped
    assert not dropped & set(truth) and dropped <= set(old)
    assert len(outcome.missing_keys) == sum(len(g["model"]) for g in ambiguous)
    wrong = [k for k, v in fixed.items() if k in truth and not torch.equal(v, truth[k])]
    assert wrong == [], f"{name}: tensors moved to the wrong key: {wrong}"
    for group in ambiguous:  # each ambiguous group holds the truth's own pairs, not a guess
        true_pairs = {
            o: n for o in group["checkpoint"] for n in group["model"] if torch.equal(old[o], truth[n])
        }
        assert len(true_pairs) == len(group["checkpoint"])
