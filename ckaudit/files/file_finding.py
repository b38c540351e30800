"""The one way the file checks build a finding about a checkpoint file: located at the file itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ckaudit.findings import Finding, Location, Rule, Severity


def file_finding(
    rule: Rule,
    rel_path: str,
    message: str,
    fix: str,
    details: Mapping[str, Any] | None = None,
    *,
    model: str | None,
    severity: Severity = Severity.ERROR,
) -> Finding:
    """`message` is the whole line (callers start it with the path); the location is the file."""
    return Finding(
        rule,
        severity,
        message,
        checkpoint=rel_path,
        model=model,
        location=Location(rel_path),
        fix=fix,
        details=dict(details or {}),
    )
