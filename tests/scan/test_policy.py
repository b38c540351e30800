"""The one policy from outcomes to findings, as a table: outcome after x outcome before x `expect` x
`strict` -> the checkpoint's verdict and each finding's (rule, severity, transition). Pure: no worker."""

from __future__ import annotations

import pytest

from ckaudit.findings import CheckpointResult, Finding, Rule, Severity
from ckaudit.registry.config import CheckpointEntry
from ckaudit.scan.evaluator import Outcome
from ckaudit.scan.policy import Labels, judge, status_of

ENTRY = CheckpointEntry(path="c.pt", model="m")
EXPECTED = CheckpointEntry(path="c.pt", model="m", expect_fails=True, reason="v2")
LABELS = Labels(before="HEAD", after="the staged code")
SHAPE = Finding(Rule.SHAPE_MISMATCH, Severity.ERROR, "fc.weight: [2, 4] vs [3, 4]", checkpoint="c.pt")
MISSING = Finding(Rule.MISSING_KEYS, Severity.ERROR, "1 key missing: fc.bias", checkpoint="c.pt")
DTYPE = Finding(Rule.DTYPE_CHANGE, Severity.WARNING, "1 tensor cast", checkpoint="c.pt")
BUILD = Finding(Rule.MODEL_ERROR, Severity.ERROR, "ValueError: bad width", checkpoint="c.pt")

OUTCOMES = {
    "loads": Outcome(True, True, (), {}),
    "loads+warning": Outcome(True, True, (DTYPE,), {}),
    "shape": Outcome(False, True, (SHAPE,), {}),
    "shape+warning": Outcome(False, True, (SHAPE, DTYPE), {}),
    "missing": Outcome(False, True, (MISSING,), {}),
    "unbuilt": Outcome(False, False, (BUILD,), {}),
    "upgraded": Outcome(False, True, (SHAPE,), {}, environment={"mylayers": ("1.0", "2.0")}),
}

N, W, E = Severity.NOTE, Severity.WARNING, Severity.ERROR
ROWS = [
    # one tree (scan, diagnose): labels None, no before
    ("loads", None, ENTRY, False, False, "ok", []),
    ("loads+warning", None, ENTRY, False, False, "ok", [("dtype-change", W, None)]),
    ("shape", None, ENTRY, False, False, "code", [("shape-mismatch", E, None)]),
    ("unbuilt", None, ENTRY, False, False, "code", [("model-error", E, None)]),
    (
        "upgraded",
        None,
        ENTRY,
        False,
        False,
        "environment",
        [("package-version", E, "environment"), ("shape-mismatch", W, None)],
    ),
    ("shape", None, EXPECTED, False, False, "code", [("shape-mismatch", N, "expected")]),
    ("loads", None, EXPECTED, False, False, "ok", [("stale-expectation", N, "fixed")]),
    # two trees (hook, check)
    ("loads", "loads", ENTRY, True, False, "ok", []),
    ("loads+warning", "loads", ENTRY, True, False, "ok", []),
    ("loads", "shape", ENTRY, True, False, "ok", [("shape-mismatch", N, "fixed")]),
    ("shape", "loads", ENTRY, True, False, "code", [("shape-mismatch", E, "broken")]),
    (
        "shape+warning",
        "loads",
        ENTRY,
        True,
        False,
        "code",
        [("shape-mismatch", E, "broken"), ("dtype-change", W, None)],
    ),
    ("shape", None, ENTRY, True, False, "code", [("shape-mismatch", E, "fails")]),
    ("shape", "shape", ENTRY, True, False, "code", [("shape-mismatch", W, "still-fails")]),
    ("missing", "shape", ENTRY, True, False, "code", [("missing-keys", W, "fails-differently")]),
    ("shape", "shape", ENTRY, True, True, "code", [("shape-mismatch", E, "still-fails")]),
    ("shape", "upgraded", ENTRY, True, False, "environment", [("package-version", W, "environment")]),
    ("shape", "upgraded", ENTRY, True, True, "code", [("shape-mismatch", E, "still-fails")]),
    ("unbuilt", "loads", ENTRY, True, False, "code", [("model-error", E, "broken")]),
    ("shape", "loads", EXPECTED, True, False, "code", [("shape-mismatch", N, "expected")]),
    ("loads", "shape", EXPECTED, True, False, "ok", [("stale-expectation", N, "fixed")]),
]


@pytest.mark.parametrize(("after", "before", "entry", "two_trees", "strict", "verdict", "expected"), ROWS)
def test_policy_table(
    after: str,
    before: str | None,
    entry: CheckpointEntry,
    two_trees: bool,
    strict: bool,
    verdict: str,
    expected: list[tuple[str, Severity, str | None]],
) -> None:
    outcome = OUTCOMES[after]
    found = judge(entry, outcome, OUTCOMES[before] if before else None, LABELS if two_trees else None, strict)
    assert [(f.rule.value, f.severity, f.details.get("transition")) for f in found] == expected
    result = CheckpointResult("c.pt", "m", "zip", 1, 1, tuple(found), loads=outcome.loads)
    assert result.verdict.value == verdict  # never ok when it does not load (issue 21's counts)
    assert all(f.checkpoint == "c.pt" for f in found)


def test_the_wording_of_each_transition() -> None:
    broken = judge(ENTRY, OUTCOMES["shape"], OUTCOMES["loads"], LABELS)[0]
    assert broken.message.startswith("loads at HEAD but not with the staged code: fc.weight")
    assert "mark it `expect: fails`" in broken.fix
    still = judge(ENTRY, OUTCOMES["shape"], OUTCOMES["shape"], LABELS)[0]
    assert still.message == "already fails at HEAD, unchanged by this change: fc.weight: [2, 4] vs [3, 4]"
    changed = judge(ENTRY, OUTCOMES["upgraded"], OUTCOMES["upgraded"], LABELS)[0]
    assert "loaded at HEAD with the same code before mylayers 1.0 -> 2.0" in changed.message
    expected = judge(EXPECTED, OUTCOMES["shape"])[0]
    assert expected.message == "expected failure (v2): fc.weight: [2, 4] vs [3, 4]"
    assert judge(EXPECTED, OUTCOMES["loads"])[0].message.endswith("but loads with the current code")


@pytest.mark.parametrize(
    ("outcome", "status"), [("loads", "loads"), ("shape", "fails"), ("unbuilt", "unbuildable")]
)
def test_blame_reads_an_outcome_through_the_same_policy(outcome: str, status: str) -> None:
    assert status_of(OUTCOMES[outcome]) == status
