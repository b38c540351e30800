"""Proposed rename maps against the library's own conversion, key by key, on real version pairs: committed
records made by tests/data/upgrades/make_records.py (transformers 4.51.3 builds and saves tiny models,
today's `from_pretrained` loads them; a loaded tensor equal to an old one under another name is the truth's
rename). The records hold keys and shapes only, so these tests need neither version nor torch.

A case is *equal* when the proposal makes exactly the truth's renames: none it lacks, none it adds (an
identity, a move where the library renames nothing, a pair of tensors the library transforms), nothing
left ambiguous. A proposal must never be wrong; cases that are not equal yet are marked xfail(strict) with
what is missing, so a case that starts to match fails the suite until the mark is removed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ckaudit.compat.renames import propose_renames

RECORDS = sorted((Path(__file__).resolve().parents[1] / "data" / "upgrades" / "records").glob("*.json"))
NOT_EQUAL_YET: dict[str, str] = {}


def compare(record: dict[str, Any]) -> dict[str, Any]:
    """What the proposer says about one record, measured against the truth."""
    checkpoint = {k: tuple(v) for k, v in record["checkpoint_shapes"].items()}
    model = {k: tuple(v) for k, v in record["model_shapes"].items()}
    missing = [k for k in model if k not in checkpoint]
    unexpected = [k for k in checkpoint if k not in model]
    resized = [k for k in checkpoint if k in model and checkpoint[k] != model[k]]
    proposal = propose_renames(missing, unexpected, model, checkpoint, resized)
    integer = set(record["integer"])
    proposed = {o: n for o, n in (proposal.renames if proposal else {}).items() if o not in integer}
    unsure = {k for g in (proposal.ambiguous if proposal else ()) for k in g.checkpoint}
    truth = record["renames"]
    return {
        "wrong": {o: n for o, n in proposed.items() if truth.get(o) != n},
        "missed": {o: n for o, n in truth.items() if o not in proposed and o not in unsure},
        "ambiguous": sorted(unsure),
        "ambiguous_truth": {o: truth.get(o) for o in unsure},
        "model": model,
    }


def _params() -> list[Any]:
    marks = {name: pytest.mark.xfail(strict=True, reason=why) for name, why in NOT_EQUAL_YET.items()}
    return [pytest.param(p, id=p.stem, marks=marks.get(p.stem, ())) for p in RECORDS]


@pytest.mark.parametrize("path", _params())
def test_the_proposed_map_equals_the_librarys_conversion(path: Path) -> None:
    record = json.loads(path.read_text())
    result = compare(record)
    assert result["wrong"] == {}, f"{path.stem}: proposed where the library does otherwise"
    assert result["missed"] == {} and result["ambiguous"] == [], (result["missed"], result["ambiguous"])


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in RECORDS])
def test_never_a_confidently_wrong_pair(path: Path) -> None:
    """Whatever is not equal yet is missed or ambiguous, never a tensor proposed onto the wrong key."""
    result = compare(json.loads(path.read_text()))
    assert result["wrong"] == {}
    for old, new in result["ambiguous_truth"].items():  # an ambiguous key's true target is among its rivals
        assert new is None or new in result["model"], old
