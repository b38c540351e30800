"""Rule-specific details turned into short, human-readable pieces shared by the text and Markdown reporters.

JSON keeps every detail verbatim; people get key lists collapsed (`layers.{0..31}.w`), shapes side by side
and rename maps as `old -> new`, and only the remaining details that fit on a line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ckaudit.findings import Finding, Rule
from ckaudit.keyranges import collapse_keys
from ckaudit.report.paths import shape_text

MAX_KEYS = 8
_DTYPE_FIELDS = ("checkpoint_dtype", "model_dtype")
_RENAME_FIELDS = ("renames", "rename_map")
_LIST_FIELDS = ("keys", "missing", "unexpected", "globals", "unsafe", "blocked", "candidates")
_SHORT_LIMIT = 60
_KEY_LABELS = {Rule.MISSING_KEYS: "missing keys", Rule.UNEXPECTED_KEYS: "unexpected keys"}


@dataclass(frozen=True)
class ShapeRow:
    key: str
    checkpoint: str
    model: str


@dataclass(frozen=True)
class DetailView:
    shapes: tuple[ShapeRow, ...] = ()
    renames: tuple[tuple[str, str], ...] = ()
    lists: tuple[tuple[str, int, tuple[str, ...]], ...] = ()  # (label, count, collapsed and capped entries)
    extras: tuple[tuple[str, str], ...] = field(default=())  # other short scalar details


def detail_key(details: Mapping[str, Any]) -> str | None:
    """The one state-dict key a finding is about, whichever name the producer gave it."""
    value = details.get("key", details.get("key_name"))
    return None if value is None else str(value)


def _row(entry: Mapping[str, Any]) -> ShapeRow | None:
    key = detail_key(entry)
    if key is not None and "checkpoint_shape" in entry and "model_shape" in entry:
        return ShapeRow(key, shape_text(entry["checkpoint_shape"]), shape_text(entry["model_shape"]))
    if all(k in entry for k in _DTYPE_FIELDS):
        return ShapeRow(key or "dtype", str(entry["checkpoint_dtype"]), str(entry["model_dtype"]))
    return None


def _shape_rows(details: Mapping[str, Any]) -> list[ShapeRow]:
    mismatches = details.get("mismatches")
    entries: list[Any] = mismatches if isinstance(mismatches, list) else [details]
    return [row for entry in entries if isinstance(entry, Mapping) and (row := _row(entry)) is not None]


def _renames(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    for name in _RENAME_FIELDS:
        value = details.get(name)
        if isinstance(value, Mapping):
            return [(str(old), str(new)) for old, new in value.items()]
    return []


def capped_keys(keys: Sequence[Any], limit: int = MAX_KEYS) -> tuple[str, ...]:
    collapsed = collapse_keys(str(k) for k in keys)
    if len(collapsed) <= limit:
        return tuple(collapsed)
    return (*collapsed[: limit - 1], f"… and {len(collapsed) - limit + 1} more")


def _short(value: Any) -> str | None:
    if isinstance(value, (str, int, float, bool)):
        text = str(value)
    elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        text = ", ".join(str(v) for v in value)
    else:
        return None
    return text if text and len(text) <= _SHORT_LIMIT else None


def _consumed(details: Mapping[str, Any]) -> set[str]:
    used = {"mismatches", *_RENAME_FIELDS, *_LIST_FIELDS}
    if _row(details) is not None:
        used |= {"key", "key_name", "checkpoint_shape", "model_shape", *_DTYPE_FIELDS}
    return used


def _list_label(finding: Finding, name: str) -> str:
    if name == "keys":
        return _KEY_LABELS.get(finding.rule, "keys")
    return name


def view(finding: Finding) -> DetailView:
    details = finding.details
    lists = tuple(
        (_list_label(finding, name), len(details[name]), capped_keys(details[name]))
        for name in _LIST_FIELDS
        if isinstance(details.get(name), (list, tuple)) and details[name]
    )
    used = _consumed(details)
    extras = tuple(
        (name, text) for name, value in details.items() if name not in used and (text := _short(value))
    )
    return DetailView(tuple(_shape_rows(details)), tuple(_renames(details)), lists, extras)
