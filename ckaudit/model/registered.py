"""The code side of `scan` and `diagnose`: registered checkpoints that read cleanly, dry-run into their model.

A checkpoint whose file is already broken (a repository verdict) is not dry-run: there is nothing to load.
One worker serves every model and checkpoint of the run, so torch is imported once; it starts only when
some checkpoint needs it, so a registry without models never pays for torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ckaudit.files import FileOutcome
from ckaudit.findings import Cause, Finding, Rule, Severity
from ckaudit.model.check import CompatResult, check_compat
from ckaudit.model.worker.client import ModelWorker
from ckaudit.progress import progress
from ckaudit.registry.config import CheckpointEntry, Config, ModelSpec
from ckaudit.registry.interpreter import resolve_python


def needs_model(outcome: FileOutcome) -> bool:
    """Registered with a model, readable, and not broken as a file."""
    if outcome.entry is None or outcome.entry.model is None or outcome.info is None:
        return False
    return not any(
        f.cause is Cause.REPOSITORY and f.severity is Severity.ERROR for f in outcome.result.findings
    )


def add_code_findings(
    config: Config,
    outcomes: Sequence[FileOutcome],
    *,
    specs: dict[str, ModelSpec] | None = None,
    show_progress: bool = False,
) -> list[FileOutcome]:
    """Each outcome with its compatibility findings added; `specs` overrides the registry's models by name."""
    models = {**config.models, **(specs or {})}
    todo = [o for o in outcomes if needs_model(o)]
    if not todo:
        return list(outcomes)
    checked: dict[int, FileOutcome] = {}
    with ModelWorker(resolve_python(config), timeout=config.timeout) as worker:
        for outcome in progress(todo, desc="models", unit="checkpoint", enabled=show_progress):
            entry = outcome.entry
            assert entry is not None and entry.model is not None and outcome.info is not None
            result = check_compat(entry, models[entry.model], outcome.info, config.root, worker)
            checked[id(outcome)] = _with_findings(outcome, _code_findings(entry, result), result.loads)
    return [checked.get(id(o), o) for o in outcomes]


def _code_findings(entry: CheckpointEntry, result: CompatResult) -> tuple[Finding, ...]:
    if not result.loads_again:
        return result.findings
    note = Finding(
        rule=Rule.STALE_EXPECTATION,
        severity=Severity.NOTE,
        message=f"{entry.path} is registered `expect: fails` but loads into the current code again",
        checkpoint=entry.path,
        model=entry.model,
        fix=Rule.STALE_EXPECTATION.info.help.rsplit(": ", 1)[-1],
        details={"expect": "fails", "loads": True},
    )
    return (*result.findings, note)


def _with_findings(outcome: FileOutcome, extra: Sequence[Finding], loads: bool) -> FileOutcome:
    findings = (*outcome.result.findings, *extra)
    result = dataclasses.replace(outcome.result, findings=findings, loads=loads)
    return dataclasses.replace(outcome, result=result)
