"""The one policy from dry-run outcomes to findings: `scan`, `diagnose`, `hook`, `check` and `blame` alike.

Pure: no I/O, no worker, no cache. Its inputs are the registry entry (`expect: fails`, `reason:`), the
outcome after (the code judged) and, for the two-tree commands, the outcome before and the two labels. Its
rules, in order:

- `expect: fails` is applied here and only here: a failure becomes notes worded "expected failure (reason)";
  a checkpoint that loads again is a `stale-expectation` note.
- One tree (`scan`, `diagnose`): the outcome's findings; a failure that comes with packages installed in other
  versions than ckaudit.lock recorded is `package-version` (environment), the code-side errors kept as
  warnings.
- Two trees (`hook`, `check`): loads before, fails after -> errors ("loads at X but not with Y"); fails on
  both sides -> a warning (errors with `strict`), restating only what changed; fails before with a package
  change -> `package-version` warning; fails before, loads after -> a "fixed" note; no before -> errors.

Every finding it makes says its transition in `details["transition"]` (data, not a message prefix).
`status_of` is blame's reading of one outcome.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from ckaudit.compat import package_version_finding, with_removal
from ckaudit.findings import Finding, Rule, Severity
from ckaudit.registry import CheckpointEntry
from ckaudit.scan.evaluator import Outcome

WAYS_FORWARD = (
    "Ways forward: re-save or convert {path} for the new code; or mark it `expect: fails` with a `reason:` "
    "in ckaudit.yaml if the break is deliberate; or remove it from the registry."
)


class Transition(str, enum.Enum):
    """What happened to a checkpoint between the two trees (or in the one tree)."""

    FAILS = "fails"  # one tree, or no "before": it does not load
    BROKEN = "broken"  # loads before, not after
    STILL_FAILS = "still-fails"  # fails on both sides, as before
    FAILS_DIFFERENTLY = "fails-differently"  # fails on both sides, with new problems
    FIXED = "fixed"  # fails before, loads after
    ENVIRONMENT = "environment"  # fails, and packages changed version since it was registered loading
    EXPECTED = "expected"  # `expect: fails`, and it fails


@dataclass(frozen=True)
class Labels:
    before: str  # "HEAD", "base (abc1234)"
    after: str  # "the staged code", "head (def5678)"


def judge(
    entry: CheckpointEntry,
    after: Outcome,
    before: Outcome | None = None,
    labels: Labels | None = None,
    strict: bool = False,
) -> list[Finding]:
    """Findings for one checkpoint: of one tree when `labels` is None, else of a change from `before`."""
    if entry.expect_fails:
        return _expectation(entry, after, labels)
    if labels is None:
        return _one_tree(entry, after)
    if after.loads:
        return _fixed(entry, before, labels)
    errors = [f for f in after.findings if f.severity is Severity.ERROR]
    others = _new_non_errors(before, after)
    if before is None:
        prefix = f"fails with {labels.after}: "
        return [_restate(f, Severity.ERROR, prefix, Transition.FAILS, _ways(entry)) for f in errors] + others
    if before.environment and not strict:  # it stopped loading at "before" when a package changed
        where = f" at {labels.before}"
        changed = package_version_finding(
            entry.path, entry.model, before.environment, errors, Severity.WARNING, where
        )
        return [_mark(changed, Transition.ENVIRONMENT), *others]
    if before.loads:
        prefix = f"loads at {labels.before} but not with {labels.after}: "
        return [_restate(f, Severity.ERROR, prefix, Transition.BROKEN, _ways(entry)) for f in errors] + others
    if strict:
        prefix = f"already fails at {labels.before}: "
        return [_restate(f, Severity.ERROR, prefix, Transition.STILL_FAILS) for f in errors] + others
    return _already_failing(entry, before, errors, labels) + others


def status_of(outcome: Outcome) -> str:
    """Blame's step status: "unbuildable" (never blamed), "loads" or "fails"."""
    if not outcome.built:
        return "unbuildable"
    return "loads" if outcome.loads else "fails"


def stale_expectation(entry: CheckpointEntry, code: str) -> Finding:
    """The one wording of "registered `expect: fails`, yet it loads" (scan, hook, check)."""
    return Finding(
        Rule.STALE_EXPECTATION,
        Severity.NOTE,
        f"{entry.path} is registered `expect: fails` but loads with {code}",
        checkpoint=entry.path,
        model=entry.model,
        fix="Remove `expect: fails` (and its `reason:`) from its registry entry.",
        details={"expect": "fails", "loads": True, "transition": Transition.FIXED.value},
    )


def _expectation(entry: CheckpointEntry, after: Outcome, labels: Labels | None) -> list[Finding]:
    if after.loads:
        stale = stale_expectation(entry, labels.after if labels else "the current code")
        return [stale] if labels else [*after.findings, stale]
    reason = f" ({entry.reason})" if entry.reason else ""
    return [
        _mark(
            dataclasses.replace(f, severity=Severity.NOTE, message=f"expected failure{reason}: {f.message}"),
            Transition.EXPECTED,
        )
        for f in after.findings
    ]


def _one_tree(entry: CheckpointEntry, outcome: Outcome) -> list[Finding]:
    if not (outcome.environment and not outcome.loads):
        return list(outcome.findings)
    errors = [f for f in outcome.findings if f.severity is Severity.ERROR]
    changed = package_version_finding(entry.path, entry.model, outcome.environment, errors, Severity.ERROR)
    kept = [dataclasses.replace(f, severity=Severity.WARNING) if f in errors else f for f in outcome.findings]
    return [_mark(changed, Transition.ENVIRONMENT), *kept]


def _already_failing(
    entry: CheckpointEntry, before: Outcome, errors: list[Finding], labels: Labels
) -> list[Finding]:
    """A failure this change did not cause: its new problems as warnings, else one line saying so."""
    known = {(f.rule, f.message) for f in before.findings}
    changed = [f for f in errors if (f.rule, f.message) not in known]
    if changed:
        prefix = f"already fails at {labels.before}, and differently now: "
        return [_restate(f, Severity.WARNING, prefix, Transition.FAILS_DIFFERENTLY) for f in changed]
    first = errors[0] if errors else None
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return [
        Finding(
            first.rule if first else Rule.MISSING_KEYS,
            Severity.WARNING,
            f"already fails at {labels.before}, unchanged by this change: "
            f"{first.message if first else 'does not load'}{more}",
            checkpoint=entry.path,
            model=entry.model,
            location=first.location if first else None,
            fix=f"`ckaudit diagnose {entry.path}` shows every problem and its fix.",
            details={"transition": Transition.STILL_FAILS.value},
        )
    ]


def _fixed(entry: CheckpointEntry, before: Outcome | None, labels: Labels) -> list[Finding]:
    if before is None or before.loads:
        return []
    message = f"{entry.path} fails at {labels.before} and loads with {labels.after}: fixed by this change"
    # the note speaks of the problem that went away, under that problem's rule
    rule = next((f.rule for f in before.findings if f.severity is Severity.ERROR), Rule.MISSING_KEYS)
    return [
        Finding(
            rule,
            Severity.NOTE,
            message,
            checkpoint=entry.path,
            model=entry.model,
            details={"transition": Transition.FIXED.value},
        )
    ]


def _new_non_errors(before: Outcome | None, after: Outcome) -> list[Finding]:
    seen = {(f.rule, f.message) for f in before.findings} if before else set()
    return [f for f in after.findings if f.severity is not Severity.ERROR and (f.rule, f.message) not in seen]


def _ways(entry: CheckpointEntry) -> str:
    return WAYS_FORWARD.format(path=entry.path)


def _mark(finding: Finding, transition: Transition) -> Finding:
    return dataclasses.replace(finding, details={**finding.details, "transition": transition.value})


def _restate(
    finding: Finding, severity: Severity, prefix: str, transition: Transition, extra_fix: str = ""
) -> Finding:
    fix = finding.fix
    if extra_fix and "expect: fails" in fix:  # the model side already named the other ways
        merged = with_removal(fix)  # one sentence with the last way, else a second one
        fix, extra_fix = (
            (merged, "") if merged else (fix, "If the checkpoint is obsolete, remove it from the registry.")
        )
    fix = " ".join(part for part in (fix, extra_fix) if part)
    restated = dataclasses.replace(finding, severity=severity, message=prefix + finding.message, fix=fix)
    return _mark(restated, transition)
