"""SARIF 2.1.0 for GitHub code scanning: one run, every rule described, results at physical locations.

Results point at the defining source line, else the checkpoint file, else the registry. Their
`partialFingerprints` hash only the rule, the model, the checkpoint path and the key or location path:
nothing absolute, no line numbers, no timestamps, so an unchanged finding keeps its identity across runs
and machines and GitHub does not reopen alerts when code moves.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from ckaudit import __version__
from ckaudit.findings import RULES, Finding, Location, Report, Rule, RuleInfo, Severity
from ckaudit.registry import CONFIG_NAME
from ckaudit.report.details import detail_key, other_locations
from ckaudit.report.paths import primary_location, relative_path

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "ckauditFinding/v1"

# A rule's usual severity (a finding carries its own); warnings do not change a verdict.
_DEFAULT_WARNINGS = {Rule.DTYPE_CHANGE, Rule.NOT_TRACKED, Rule.DANGLING_REFERENCE}
_SECURITY = {Rule.UNSAFE_PICKLE: "9.3", Rule.WEIGHTS_ONLY_BLOCKED: "5.0"}


def _rule_name(rule: Rule) -> str:
    return "".join(part.capitalize() for part in rule.value.split("-"))


def _rule_descriptor(rule: Rule, info: RuleInfo) -> dict[str, Any]:
    level = Severity.WARNING if rule in _DEFAULT_WARNINGS else Severity.ERROR
    tags = ["ckaudit", info.cause.value, *(["security"] if rule in _SECURITY else [])]
    properties: dict[str, Any] = {"tags": tags, "cause": info.cause.value, "precision": "very-high"}
    if rule in _SECURITY:
        properties["security-severity"] = _SECURITY[rule]
    markdown = f"**{info.title}** (cause: *{info.cause.value}*)\n\n{info.help}"
    return {
        "id": rule.value,
        "name": _rule_name(rule),
        "shortDescription": {"text": info.title},
        "fullDescription": {"text": info.help},
        "help": {"text": f"{info.title} (cause: {info.cause.value}). {info.help}", "markdown": markdown},
        "defaultConfiguration": {"level": level.value},
        "properties": properties,
    }


def _identity(finding: Finding, location_path: str) -> str:
    """What makes a finding the same finding tomorrow, on another machine."""
    details = finding.details
    single = detail_key(details)
    if single is not None:
        key = single
    elif isinstance(details.get("keys"), (list, tuple)):
        key = "\n".join(sorted(str(k) for k in details["keys"]))
    else:
        key = ""
    parts = (finding.rule.value, finding.model or "", finding.checkpoint or "", key, location_path)
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:32]


def _physical_location(finding: Finding, root: str, source_root: str | None) -> dict[str, Any]:
    return _physical(primary_location(finding), root, source_root)


def _related(finding: Finding, root: str, source_root: str | None) -> list[dict[str, Any]]:
    """The other layers one change resized (`also_at`), as SARIF related locations."""
    return [
        {"id": i, "physicalLocation": _physical(loc, root, source_root), "message": {"text": "also resized"}}
        for i, loc in enumerate(other_locations(finding), start=1)
    ]


def _physical(loc: Location | None, root: str, source_root: str | None) -> dict[str, Any]:
    path = relative_path(loc.path, root, source_root) if loc else CONFIG_NAME
    artifact: dict[str, Any] = {"uri": path}
    if not path.startswith("/"):
        artifact["uriBaseId"] = SRCROOT
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if loc is not None and loc.line:
        region: dict[str, Any] = {"startLine": loc.line}
        if loc.snippet:
            region["snippet"] = {"text": loc.snippet}
        physical["region"] = region
    return physical


def _message(finding: Finding) -> str:
    subject = f"{finding.checkpoint}: " if finding.checkpoint else ""
    text = f"{subject}{finding.message}"
    return f"{text}\nFix: {finding.fix}" if finding.fix else text


def _result(
    finding: Finding, index: int, root: str, source_root: str | None, seen: Counter[str]
) -> dict[str, Any]:
    physical = _physical_location(finding, root, source_root)
    identity = _identity(finding, physical["artifactLocation"]["uri"])
    seen[identity] += 1
    properties = {"cause": finding.cause.value, "checkpoint": finding.checkpoint, "model": finding.model}
    if finding.fix:
        properties["fix"] = finding.fix
    result = {
        "ruleId": finding.rule.value,
        "ruleIndex": index,
        "level": finding.severity.value,
        "message": {"text": _message(finding)},
        "locations": [{"physicalLocation": physical}],
        "partialFingerprints": {FINGERPRINT_KEY: f"{identity}:{seen[identity]}"},
        "properties": {k: v for k, v in properties.items() if v is not None},
    }
    related = _related(finding, root, source_root)
    return {**result, "relatedLocations": related} if related else result


def sarif_dict(report: Report, source_root: str | None = None) -> dict[str, Any]:
    """SARIF 2.1.0 for code scanning: every rule in the driver (stable indices), one result per finding
    with a fingerprint that stays put across runs."""
    rules = list(RULES)
    index = {rule: i for i, rule in enumerate(rules)}
    seen: Counter[str] = Counter()
    results = [_result(f, index[f.rule], report.root, source_root, seen) for f in report.all_findings()]
    driver = {
        "name": "ckaudit",
        "version": __version__,
        "semanticVersion": __version__,
        "rules": [_rule_descriptor(rule, RULES[rule]) for rule in rules],
    }
    run = {
        "tool": {"driver": driver},
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def render(report: Report, source_root: str | None = None) -> str:
    return json.dumps(sarif_dict(report, source_root), indent=2) + "\n"
