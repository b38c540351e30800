"""A finding as a plain dict and back: the shape of SPEC's JSON `findings` entries, also the shape the
outcome cache stores (so a cached finding reads back equal to the one that was computed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ckaudit.findings import Finding, Location, Rule, Severity


def finding_dict(finding: Finding) -> dict[str, Any]:
    """A finding as the JSON report prints it and the outcome cache stores it (`finding_from_dict` reverses
    it)."""
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
