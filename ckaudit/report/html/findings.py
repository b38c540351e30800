"""One finding as a card with an anchor the pictures link to: rule, message, `file:line`, fix, key lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ckaudit.keyranges import collapse_keys
from ckaudit.report.html.page import esc

_LISTS = ("keys", "unsafe", "blocked", "candidates", "changes")
_MAX_ITEMS = 12


def location_text(finding: Mapping[str, Any]) -> str:
    loc = finding.get("location") or {}
    if not loc.get("path"):
        return ""
    return f"{loc['path']}:{loc['line']}" if loc.get("line") else str(loc["path"])


def _lists(details: Mapping[str, Any]) -> list[str]:
    out = []
    for name in _LISTS:
        values = details.get(name)
        if isinstance(values, list) and values:
            items = collapse_keys(str(v) for v in values) if name == "keys" else [str(v) for v in values]
            more = f" … {len(items) - _MAX_ITEMS} more" if len(items) > _MAX_ITEMS else ""
            out.append(f"{name}: " + ", ".join(items[:_MAX_ITEMS]) + more)
    rows = details.get("mismatches") or ([details] if "checkpoint_shape" in details else [])
    for row in rows[:_MAX_ITEMS]:
        out.append(
            f"{row.get('key')}: checkpoint {row.get('checkpoint_shape')} model {row.get('model_shape')}"
        )
    for old, new in (details.get("modules") or {}).items():
        out.append(f"{old} -> {new}")
    return out


def card(finding: Mapping[str, Any], anchor: str) -> str:
    where = location_text(finding)
    loc = finding.get("location") or {}
    snippet = f'<pre class="mono mute">{esc(loc["snippet"])}</pre>' if loc.get("snippet") else ""
    extra = "".join(f'<pre class="mono">{esc(line)}</pre>' for line in _lists(finding.get("details") or {}))
    fix = f"<div>Fix: {esc(finding['fix'])}</div>" if finding.get("fix") else ""
    return (
        f'<div class="finding {esc(finding.get("cause"))}" id="{anchor}" '
        f'data-rule="{esc(finding.get("rule"))}">'
        f'<div><b>{esc(finding.get("rule"))}</b> <span class="mute">{esc(finding.get("severity"))} · '
        f"{esc(finding.get('cause'))}</span> {esc(finding.get('message'))}</div>"
        + (f'<div class="mono">{esc(where)}</div>' if where else "")
        + snippet
        + extra
        + fix
        + "</div>"
    )


def cards(findings: Sequence[Mapping[str, Any]], prefix: str) -> tuple[str, dict[int, str]]:
    """Every finding's card, and each finding's anchor by index (what the pictures link to)."""
    anchors = {i: f"{prefix}-{i}" for i in range(len(findings))}
    return "".join(card(f, anchors[i]) for i, f in enumerate(findings)), anchors
