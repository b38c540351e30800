"""The ways forward a blocked change names (SPEC: re-save or convert, `expect: fails` with a reason, or
remove it from the registry), in one sentence when the fix already ends with the `expect: fails` way."""

from __future__ import annotations

from ckaudit.compat.ways import EXPECT_FAILS, with_removal
from ckaudit.findings import Finding, Rule, Severity
from ckaudit.scan.policy import WAYS_FORWARD, Transition, _restate


def test_the_last_way_joins_the_fixs_own_sentence() -> None:
    fix = f"Restore the old sizes, re-save or convert the checkpoint, or {EXPECT_FAILS}."
    assert with_removal(fix) == (
        "Restore the old sizes, re-save or convert the checkpoint, mark it `expect: fails` with a `reason:`, "
        "or remove it from the registry."
    )
    assert with_removal("Strip the prefix.") is None


def test_a_blocked_finding_names_every_way_forward_once() -> None:
    ways = WAYS_FORWARD.format(path="c.pt")
    joined = Finding(Rule.SHAPE_MISMATCH, Severity.ERROR, "m", fix=f"Restore it, or {EXPECT_FAILS}.")
    other = Finding(Rule.KEY_PREFIX, Severity.ERROR, "m", fix="Strip `module.` (`expect: fails` is no help).")
    plain = Finding(Rule.MISSING_KEYS, Severity.ERROR, "m", fix="Re-save it.")
    fixes = [_restate(f, Severity.ERROR, "", Transition.BROKEN, ways).fix for f in (joined, other, plain)]
    assert fixes[0] == "Restore it, mark it `expect: fails` with a `reason:`, or remove it from the registry."
    assert fixes[1].endswith("If the checkpoint is obsolete, remove it from the registry.")
    assert fixes[2] == f"Re-save it. {ways}"
    assert all(fix.count("remove it from the registry") == 1 for fix in fixes)
