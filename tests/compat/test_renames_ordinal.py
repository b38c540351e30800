"""Ambiguities the names settle by the place they state (`layer_norm_1` ~ `layernorm_before`), and those
they do not (pure key arithmetic; the real SegFormer case is in test_upgrade_maps.py)."""

from __future__ import annotations

from ckaudit.compat.renames import propose_renames

NORM = (8,)


def _propose(old: list[str], new: list[str]) -> tuple[dict[str, str], list[str]]:
    proposal = propose_renames(new, old, dict.fromkeys(new, NORM), dict.fromkeys(old, NORM))
    assert proposal is not None
    return proposal.renames, [k for g in proposal.ambiguous for k in g.checkpoint]


def test_numbered_modules_pair_with_words_that_state_the_same_place() -> None:
    # the model registers `after` first: registration order is not what decides
    old = [f"block.{i}.layer_norm_{n}.weight" for i in (0, 1) for n in (1, 2)]
    new = [f"blocks.{i}.layernorm_{w}.weight" for i in (0, 1) for w in ("after", "before")]
    renames, unsure = _propose(old, new)
    assert unsure == []
    assert renames["block.0.layer_norm_1.weight"] == "blocks.0.layernorm_before.weight"
    assert renames["block.1.layer_norm_2.weight"] == "blocks.1.layernorm_after.weight"


def test_names_that_state_no_place_stay_ambiguous() -> None:
    old = ["block.0.norm_a.weight", "block.0.norm_b.weight"]
    new = ["block.0.ln_x.weight", "block.0.ln_y.weight"]
    renames, unsure = _propose(old, new)
    assert renames == {} and sorted(unsure) == sorted(old)


def test_a_word_inside_a_longer_name_is_no_place() -> None:
    old = ["head.norm_1.weight", "head.norm_2.weight"]
    new = ["head.predictions_norm.weight", "head.postfix_norm.weight"]
    assert _propose(old, new)[1] == old
