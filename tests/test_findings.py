"""The shared vocabulary: a verdict is ok or a cause, and causes decide it in their declared order."""

from __future__ import annotations

import pytest

from ckaudit.findings import Cause, CheckpointResult, Finding, Report, Rule, Severity, Verdict, verdict_of


def test_every_cause_is_a_verdict_of_the_same_value() -> None:
    assert [Verdict.of(cause).value for cause in Cause] == [cause.value for cause in Cause]
    assert {v.value for v in Verdict} == {"ok", *(c.value for c in Cause)}


def test_summary_counts_keep_their_order() -> None:
    """The JSON summary's keys (and the text summary's) follow Verdict's member order."""
    assert list(Report(root=".", command="scan").summary()) == [
        "checkpoints",
        "ok",
        "code",
        "repository",
        "environment",
    ]


def _error(rule: Rule, severity: Severity = Severity.ERROR) -> Finding:
    return Finding(rule, severity, rule.value)


@pytest.mark.parametrize(
    ("rules", "verdict"),
    [
        ((), Verdict.OK),
        ((Rule.PACKAGE_VERSION,), Verdict.ENVIRONMENT),
        ((Rule.PACKAGE_VERSION, Rule.MISSING_KEYS), Verdict.CODE),
        ((Rule.MISSING_KEYS, Rule.TRUNCATED, Rule.PACKAGE_VERSION), Verdict.REPOSITORY),
    ],
)
def test_repository_beats_code_beats_environment(rules: tuple[Rule, ...], verdict: Verdict) -> None:
    assert verdict_of([_error(rule) for rule in rules]) is verdict


def test_a_failing_checkpoint_without_errors_takes_its_worst_findings_cause() -> None:
    kept = (_error(Rule.MISSING_KEYS, Severity.NOTE), _error(Rule.TORCH_VERSION, Severity.WARNING))
    result = CheckpointResult("a.pt", None, None, None, None, findings=kept, loads=False)
    assert verdict_of(kept) is Verdict.OK and result.verdict is Verdict.ENVIRONMENT
    bare = CheckpointResult("a.pt", None, None, None, None, loads=False)
    assert bare.verdict is Verdict.CODE
