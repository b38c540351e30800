"""docs/json-format.md's `details` table as data, and the check every test that makes findings can run.

The rows of cause `code` are the complete contract: a detail the doc does not name is a failure (this is
how `key_name` against the documented `key` is caught). Other rows list known keys only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ckaudit.findings import Cause, Rule

DOC = Path(__file__).resolve().parents[1] / "docs" / "json-format.md"
_ANY_RULE = {
    "matched",
    "transition",
}  # explain's `matched`; the policy's `transition` (documented below the table)


def documented_details() -> dict[str, set[str]]:
    """rule id -> the detail names its rows of the table mention (backticked; a rule may have two rows)."""
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("### `details` by rule") :]
    rows: dict[str, set[str]] = {}
    for line in table.splitlines():
        cells = line.split("|")
        if len(cells) < 4 or not cells[1].strip().startswith("`"):
            continue
        names = set(re.findall(r"`([a-z_]+)`", cells[2]))
        for rule in re.findall(r"`([a-z-]+)`", cells[1]):
            rows.setdefault(rule, set()).update(names)
    return rows


def undocumented(findings: Iterable[Any]) -> list[str]:
    """`rule: detail` for each detail of a code-cause finding that its row does not name."""
    rows = documented_details()
    problems = []
    for finding in findings:
        rule, details = _rule_and_details(finding)
        if Rule(rule).cause is not Cause.CODE:
            continue
        extra = set(details) - rows.get(rule, set()) - _ANY_RULE
        problems.extend(f"{rule}: {name}" for name in sorted(extra))
    return sorted(set(problems))


def _rule_and_details(finding: Any) -> tuple[str, Mapping[str, Any]]:
    if isinstance(finding, Mapping):  # a finding of the JSON output
        return str(finding["rule"]), finding["details"]
    return finding.rule.value, finding.details
