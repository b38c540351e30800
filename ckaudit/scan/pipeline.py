"""The code side of `scan` and `diagnose`: registered checkpoints that read cleanly, dry-run into their model
as the working tree defines it — through the same Evaluator and cache as `hook`, `check` and `blame`.

A checkpoint whose file is already broken (a repository verdict) is not dry-run: there is nothing to load.
One worker serves every model and checkpoint of the run, so torch is imported once; it starts only when
some checkpoint needs it (and is not answered from the cache), so a registry without models never pays for
torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ckaudit.cache import JsonStore
from ckaudit.errors import WorkerError
from ckaudit.files import FileOutcome, device_findings
from ckaudit.findings import Cause, Finding, Rule, Severity
from ckaudit.progress import progress
from ckaudit.registry import Config, ModelSpec
from ckaudit.scan.evaluator import Evaluator
from ckaudit.scan.keylists import key_lists
from ckaudit.scan.policy import judge


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
    use_cache: bool = True,
) -> list[FileOutcome]:
    """Each outcome with its compatibility findings added; `specs` overrides the registry's models by name."""
    models = {**config.models, **(specs or {})}
    todo = [o for o in outcomes if needs_model(o)]
    if not todo:
        return list(outcomes)
    checked: dict[int, FileOutcome] = {}
    with Evaluator(config, JsonStore.for_repo(config.root, enabled=use_cache)) as evaluator:
        for outcome in progress(todo, desc="models", unit="checkpoint", enabled=show_progress):
            entry = outcome.entry
            assert entry is not None and entry.model is not None and outcome.info is not None
            result = evaluator.outcome(evaluator.here(), models[entry.model], entry, outcome.info)
            keys = key_lists(result, entry, outcome.info)
            checked[id(outcome)] = _with_findings(outcome, judge(entry, result), result.loads, keys)
        available = _available_devices(evaluator, outcomes)
    return [_judge_devices(checked.get(id(o), o), available) for o in outcomes]


def _available_devices(evaluator: Evaluator, outcomes: Sequence[FileOutcome]) -> frozenset[str] | None:
    """The device types the project's interpreter has, asked of the worker only when some file has
    storages on a device other than the CPU (so a cached run answers the same as a fresh one)."""
    if not any(f.rule is Rule.DEVICE for o in outcomes for f in o.result.findings):
        return None
    try:
        return evaluator.worker().devices
    except WorkerError:
        return None


def _judge_devices(outcome: FileOutcome, available: frozenset[str] | None) -> FileOutcome:
    """The file side could only warn about storages on other devices; the worker knows which this
    interpreter has: a device it lacks is an error, one it has no finding."""
    if available is None or outcome.info is None:
        return outcome
    findings = outcome.result.findings
    at = next((i for i, f in enumerate(findings) if f.rule is Rule.DEVICE), None)
    if at is None:
        return outcome
    judged = device_findings(outcome.result.path, outcome.info, outcome.result.model, available)
    kept = [f for f in findings if f.rule is not Rule.DEVICE]
    result = dataclasses.replace(outcome.result, findings=(*kept[:at], *judged, *kept[at:]))
    return dataclasses.replace(outcome, result=result)


def _with_findings(
    outcome: FileOutcome, extra: Sequence[Finding], loads: bool, keys: Mapping[str, Any]
) -> FileOutcome:
    findings = (*outcome.result.findings, *extra)
    result = dataclasses.replace(outcome.result, findings=findings, loads=loads, **keys)
    return dataclasses.replace(outcome, result=result)
