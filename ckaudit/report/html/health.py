"""File health at a glance: one badge per checkpoint file, with the one-line reason, from its findings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ckaudit.report.html.page import esc

# rule -> (badge, badge colour class); the first rule a checkpoint has, in this order, names its file state
_STATES: tuple[tuple[str, str, str], ...] = (
    ("file-missing", "missing", "b-repository"),
    ("lfs-pointer", "LFS pointer", "b-repository"),
    ("truncated", "truncated", "b-repository"),
    ("corrupt", "corrupt", "b-repository"),
    ("not-a-checkpoint", "not a checkpoint", "b-repository"),
    ("hash-mismatch", "hash mismatch", "b-repository"),
    ("unsafe-pickle", "unsafe pickle", "b-environment"),
)


def file_state(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    """(state, colour class, reason) of one JSON checkpoint entry's file."""
    findings: Sequence[Mapping[str, Any]] = entry.get("findings") or []
    for rule, state, colour in _STATES:
        found = next((f for f in findings if f.get("rule") == rule), None)
        if found is None:
            continue
        if rule == "file-missing" and found.get("severity") != "error":
            return "absent but locked", "b-environment", str(found.get("message", ""))
        return state, colour, str(found.get("message", ""))
    size = entry.get("bytes")
    what = [str(entry.get("format") or "unknown format")]
    if entry.get("tensors") is not None:
        what.append(f"{entry['tensors']} tensors")
    if size:
        what.append(f"{size:,} bytes")
    return "ok", "b-ok", ", ".join(what)


def section(checkpoints: Sequence[Mapping[str, Any]]) -> str:
    if not checkpoints:
        return ""
    rows = []
    for entry in checkpoints:
        state, colour, reason = file_state(entry)
        rows.append(
            f'<div class="mono" data-checkpoint="{esc(entry.get("path"))}">{esc(entry.get("path"))}</div>'
            f'<div><span class="badge {colour}" data-file-state="{esc(state)}">{esc(state)}</span></div>'
            f'<div class="reason mute">{esc(reason)}</div>'
        )
    return f'<section id="health"><h2>File health</h2><div class="health">{"".join(rows)}</div></section>'
