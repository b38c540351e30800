"""SPEC's JSON shape: one object, version 1, documented field by field in docs/json-format.md.

Stability: fields are only ever added; a rename or removal would bump "version".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ckaudit import __version__
from ckaudit.findings import CheckpointResult, Finding, Location, Report, Rule, Severity


def finding_dict(finding: Finding) -> dict[str, Any]:
    location = None
    if finding.location is not None:
        loc = finding.location
        location = {"path": loc.path, "line": loc.line, "snippet": loc.snippet}
    return {
        "rule": finding.rule.value,
        "cause": finding.cause.value,
        "severity": finding.severity.value,
        "checkpoint": finding.checkpoint,
        "model": finding.model,
        "message": finding.message,
        "location": location,
        "fix": finding.fix,
        "details": dict(finding.details),
    }


def finding_from_dict(data: Mapping[str, Any]) -> Finding:
    """`finding_dict` read back; the outcome cache stores findings in this shape (`cause` is the rule's)."""
    loc = data.get("location")
    return Finding(
        rule=Rule(data["rule"]),
        severity=Severity(data["severity"]),
        message=data["message"],
        checkpoint=data.get("checkpoint"),
        model=data.get("model"),
        location=None if not loc else Location(loc["path"], loc.get("line"), loc.get("snippet")),
        fix=data.get("fix", ""),
        details=data.get("details") or {},
    )


def checkpoint_dict(result: CheckpointResult) -> dict[str, Any]:
    return {
        "path": result.path,
        "model": result.model,
        "format": result.format,
        "verdict": result.verdict.value,
        "tensors": result.tensors,
        "bytes": result.bytes,
        "registered": result.registered,
        "findings": [finding_dict(f) for f in result.findings],
    }


def report_dict(report: Report) -> dict[str, Any]:
    return {
        "version": 1,
        "tool": {"name": "ckaudit", "version": __version__, "command": report.command},
        "root": report.root,
        "checkpoints": [checkpoint_dict(c) for c in report.checkpoints],
        "findings": [finding_dict(f) for f in report.findings],
        "summary": report.summary(),
    }


def render(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2, sort_keys=False, default=str) + "\n"
