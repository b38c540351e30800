"""Checkpoints that fail for the same reason against the same model, as one group (one block of text).

Three checkpoints of one model broken by one change would otherwise repeat the same findings three times.
Two results fall in one group when they concern the same model, have the same verdict and registration,
and their findings are equal once the checkpoint's own name is left out (rule, severity, message, location,
fix and every detail). Anything that differs — a shape, a key, a path inside a message — keeps them apart,
so a group never hides a difference. Results without findings stay alone: an `[ok]` line is already short.

JSON keeps every checkpoint's findings; it adds the grouping as `groups` (paths in report order) for
readers that present the report (docs/json-format.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ckaudit.finding_codec import finding_dict
from ckaudit.findings import CheckpointResult, Finding


@dataclass(frozen=True)
class Group:
    results: tuple[CheckpointResult, ...]  # report order; the first stands for all

    @property
    def first(self) -> CheckpointResult:
        return self.results[0]

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(r.path for r in self.results)


def _finding_key(finding: Finding) -> str:
    data = finding_dict(finding)
    data.pop("checkpoint")
    prefix = f"{finding.checkpoint}: "
    if finding.checkpoint and data["message"].startswith(prefix):
        data["message"] = data["message"][len(prefix) :]
    return json.dumps(data, sort_keys=True, default=str)


def _result_key(result: CheckpointResult) -> tuple[Any, ...] | None:
    if not result.findings:
        return None
    findings = tuple(_finding_key(f) for f in result.findings)
    return (result.model, result.verdict, result.fails, result.registered, findings)


def group_results(results: Sequence[CheckpointResult]) -> list[Group]:
    """Every result in exactly one group, groups in the order of their first member."""
    members: dict[Any, list[CheckpointResult]] = {}
    order: list[Any] = []
    for index, result in enumerate(results):
        key = _result_key(result)
        if key is None:
            key = ("alone", index)
        if key not in members:
            members[key] = []
            order.append(key)
        members[key].append(result)
    return [Group(tuple(members[key])) for key in order]


def groups_json(results: Sequence[CheckpointResult]) -> list[dict[str, Any]]:
    """`groups` in the JSON report: which checkpoints share one block of findings."""
    return [
        {"checkpoints": list(g.paths), "model": g.first.model, "verdict": g.first.verdict.value}
        for g in group_results(results)
    ]
