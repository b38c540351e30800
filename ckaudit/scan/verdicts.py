"""Before/after verdicts shared by `hook` and `check`: every registered checkpoint against two versions of
the code (before: HEAD or a base commit; after: the index, a head commit or the working tree).

Each side's outcome comes from `ckaudit.scan.evaluator.Evaluator`. `judge` turns a before/after pair into
findings: a checkpoint that loaded before and fails after blocks; one failing on both sides is a warning (an
error with `strict`); one the change fixes is a note; `expect: fails` turns failures into notes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ckaudit.compat.environment import package_version_finding
from ckaudit.errors import ConfigError
from ckaudit.findings import CheckpointResult, Finding, Report, Rule, Severity
from ckaudit.registry.config import CONFIG_NAME, CheckpointEntry, Config, ModelSpec, parse_config
from ckaudit.scan.causes import name_changed_lines
from ckaudit.scan.evaluator import Evaluator, Outcome, load_info
from ckaudit.vcs.trees import Tree

if TYPE_CHECKING:
    from ckaudit.reader.types import CheckpointInfo

WAYS_FORWARD = (
    "Ways forward: re-save or convert {path} for the new code; or mark it `expect: fails` with a `reason:` "
    "in ckaudit.yaml if the break is deliberate; or remove it from the registry."
)


@dataclass(frozen=True)
class Labels:
    before: str  # "HEAD", "base (abc1234)"
    after: str  # "the staged code", "head (def5678)"


def judge(
    entry: CheckpointEntry, before: Outcome | None, after: Outcome, labels: Labels, strict: bool = False
) -> list[Finding]:
    """Findings for one checkpoint from its outcome before and after a change."""
    if after.loads:
        return _loads_after(entry, before, labels)
    errors = [f for f in after.findings if f.severity is Severity.ERROR]
    others = _new_non_errors(before, after)
    if entry.expect_fails:  # modelcheck words these ("expected failure (reason): ..."); they stay notes
        return [dataclasses.replace(f, severity=Severity.NOTE) for f in after.findings]
    if before is None:
        return [
            _restate(f, Severity.ERROR, f"fails with {labels.after}: ", _ways(entry)) for f in errors
        ] + others
    if before.environment and not strict:  # HEAD stopped loading when a package changed, not this change
        where = f" at {labels.before}"
        changed = package_version_finding(
            entry.path, entry.model, before.environment, errors, Severity.WARNING, where
        )
        return [changed, *others]
    if before.loads:
        prefix = f"loads at {labels.before} but not with {labels.after}: "
        return [_restate(f, Severity.ERROR, prefix, _ways(entry)) for f in errors] + others
    if strict:
        return [_restate(f, Severity.ERROR, f"already fails at {labels.before}: ") for f in errors] + others
    return _already_failing(entry, before, errors, labels) + others


def _already_failing(
    entry: CheckpointEntry, before: Outcome, errors: list[Finding], labels: Labels
) -> list[Finding]:
    """A failure this change did not cause: its new problems as warnings, else one line saying so."""
    known = {(f.rule, f.message) for f in before.findings}
    changed = [f for f in errors if (f.rule, f.message) not in known]
    if changed:
        return [
            _restate(f, Severity.WARNING, f"already fails at {labels.before}, and differently now: ")
            for f in changed
        ]
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
            details={},
        )
    ]


def _loads_after(entry: CheckpointEntry, before: Outcome | None, labels: Labels) -> list[Finding]:
    if entry.expect_fails:
        return [stale_expectation(entry, labels.after)]
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
            details={"transition": "fixed"},
        )
    ]


def stale_expectation(entry: CheckpointEntry, code: str) -> Finding:
    """The one wording of "registered `expect: fails`, yet it loads" (scan, hook, check)."""
    return Finding(
        Rule.STALE_EXPECTATION,
        Severity.NOTE,
        f"{entry.path} is registered `expect: fails` but loads with {code}",
        checkpoint=entry.path,
        model=entry.model,
        fix="Remove `expect: fails` (and its `reason:`) from its registry entry.",
        details={"expect": "fails", "loads": True, "transition": "fixed"},
    )


def _new_non_errors(before: Outcome | None, after: Outcome) -> list[Finding]:
    seen = {(f.rule, f.message) for f in before.findings} if before else set()
    return [f for f in after.findings if f.severity is not Severity.ERROR and (f.rule, f.message) not in seen]


def _ways(entry: CheckpointEntry) -> str:
    return WAYS_FORWARD.format(path=entry.path)


def _restate(finding: Finding, severity: Severity, prefix: str, extra_fix: str = "") -> Finding:
    if extra_fix and "expect: fails" in finding.fix:  # the model side already named the other ways
        extra_fix = "If the checkpoint is obsolete, remove it from the registry."
    fix = " ".join(part for part in (finding.fix, extra_fix) if part)
    return dataclasses.replace(finding, severity=severity, message=prefix + finding.message, fix=fix)


def relevant_models(
    config: Config, before: Tree | None, after: Tree, evaluator: Evaluator
) -> list[ModelSpec]:
    """Models whose definition differs between the trees (all of them when the registry itself changed, or
    when there is no "before"). A path counts when its blob id differs, including appearing or vanishing."""
    if before is None or before.oid(CONFIG_NAME) != after.oid(CONFIG_NAME):
        return list(config.models.values())
    return [spec for spec in config.models.values() if _changed(spec, before, after, evaluator)]


def _changed(spec: ModelSpec, before: Tree, after: Tree, evaluator: Evaluator) -> bool:
    """If every path the "before" closure read or looked for is the same after, the "after" closure is the
    same walk over the same bytes: no need to compute it (only `sources:` globs can see new files)."""
    paths = set(evaluator.sources(before, spec).candidates)
    if spec.sources:
        paths |= evaluator.sources(after, spec).candidates
    return any(before.oid(p) != after.oid(p) for p in sorted(paths))


def compare(
    config: Config,
    before: Tree | None,
    after: Tree,
    models: Sequence[ModelSpec],
    evaluator: Evaluator,
    labels: Labels,
    command: str,
    strict: bool = False,
) -> Report:
    """Every registered checkpoint of `models`, judged before/after, each side with its own registry entry
    (checkpoint files: the working tree, else their signature in ckaudit.lock)."""
    sides = (registry_at(before, config), registry_at(after, config))
    results = []
    for spec in models:
        for entry in (e for e in config.checkpoints if e.model == spec.name):
            info = load_info(config, entry)
            if isinstance(info, Finding):
                result = CheckpointResult(entry.path, spec.name, None, None, None, (info,), loads=False)
                results.append(result)
                continue
            old = evaluator.outcome(before, *entry_at(sides[0], config, entry), info) if before else None
            new = evaluator.outcome(after, *entry_at(sides[1], config, entry), info)
            judged = judge(entry, old, new, labels, strict)
            if old is not None and before is not None and not new.loads:
                judged = name_changed_lines(judged, old.sources, new.sources, before, after)
            findings = [*judged, *_from_lock(entry, info)]
            results.append(
                CheckpointResult(
                    entry.path,
                    spec.name,
                    info.format,
                    len(info.tensors),
                    info.size or None,
                    tuple(findings),
                    loads=new.loads,
                )
            )
    return Report(root=str(config.root), command=command, checkpoints=tuple(results))


def registry_at(tree: Tree | None, today: Config) -> Config:
    """The registry as committed in `tree`; today's where the tree has none or one that fails to parse."""
    if tree is None:
        return today
    data = tree.read_many([CONFIG_NAME]).get(CONFIG_NAME)
    if data is None:
        return today
    try:
        return parse_config(data.decode("utf-8", "replace"), f"{CONFIG_NAME} ({tree.label})", today.root)
    except ConfigError:
        return today


def entry_at(registry: Config, today: Config, entry: CheckpointEntry) -> tuple[ModelSpec, CheckpointEntry]:
    """This version's model and entry for the checkpoint (same path), else today's."""
    then = registry.checkpoint(entry.path)
    if then is not None and then.model is not None and then.model in registry.models:
        return registry.models[then.model], then
    return today.models[entry.model or ""], entry


def _from_lock(entry: CheckpointEntry, info: CheckpointInfo) -> list[Finding]:
    if not info.details.get("from_lock"):
        return []
    message = f"{entry.path} is not here: judged against its signature in ckaudit.lock"
    return [Finding(Rule.FILE_MISSING, Severity.NOTE, message, checkpoint=entry.path, model=entry.model)]
