"""Rule-specific details turned into short, human-readable pieces shared by the text and Markdown reporters.

JSON keeps every detail verbatim; people get key lists collapsed (`layers.{0..31}.w`), shapes side by side
and rename maps as `old -> new`, and only the remaining details that fit on a line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ckaudit.findings import Finding, Location, Rule
from ckaudit.keyranges import collapse_keys, collapse_moves, collapse_rows
from ckaudit.report.paths import shape_text

MAX_KEYS = 8
MAX_SHAPE_ROWS = 6
_DTYPE_FIELDS = ("checkpoint_dtype", "model_dtype")
_RENAME_FIELDS = ("renames", "rename_map")
_LIST_FIELDS = ("keys", "missing", "unexpected", "globals", "unsafe", "blocked", "candidates")
_SHORT_LIMIT = 60
# Details that only repeat the message or serve programs (JSON keeps them): not shown to people.
_HIDDEN = {
    "also_at",
    "mode",
    "keys_matched",
    "collapsed",
    "ignore",
    "modules",
    "keys_renamed",
    "used",
    "found",
    "kind",
    "transition",
}
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
    ambiguous: tuple[tuple[str, str], ...] = ()  # (checkpoint keys, model keys) that could pair either way


def detail_key(details: Mapping[str, Any]) -> str | None:
    """The one state-dict key a finding is about."""
    value = details.get("key")
    return None if value is None else str(value)


def _row(entry: Mapping[str, Any]) -> ShapeRow | None:
    key = detail_key(entry)
    if key is not None and "checkpoint_shape" in entry and "model_shape" in entry:
        return ShapeRow(key, shape_text(entry["checkpoint_shape"]), shape_text(entry["model_shape"]))
    if all(k in entry for k in _DTYPE_FIELDS):
        return ShapeRow(key or "dtype", str(entry["checkpoint_dtype"]), str(entry["model_dtype"]))
    return None


def _shape_rows(details: Mapping[str, Any]) -> list[ShapeRow]:
    """One row per key, or for many keys one per collapsed key pattern and shape pair (capped)."""
    mismatches = details.get("mismatches")
    entries: list[Any] = mismatches if isinstance(mismatches, list) else [details]
    rows = [row for entry in entries if isinstance(entry, Mapping) and (row := _row(entry)) is not None]
    collapsed = [
        ShapeRow(key, *shapes)
        for key, shapes, _ in collapse_rows((r.key, (r.checkpoint, r.model)) for r in rows)
    ]
    if len(collapsed) <= MAX_SHAPE_ROWS:
        return collapsed
    rest = len(collapsed) - MAX_SHAPE_ROWS + 1
    return [*collapsed[: MAX_SHAPE_ROWS - 1], ShapeRow(f"… and {rest} more", "", "")]


def _renames(finding: Finding) -> list[tuple[str, str]]:
    """The rename map as module moves collapsed over block indices, unless the message lists it all."""
    details = finding.details
    modules = details.get("modules")
    if isinstance(modules, Mapping) and modules:
        pairs = list(collapse_moves({str(o): str(n) for o, n in modules.items()}).items())
    else:
        value: Mapping[str, Any] = next(
            (details[n] for n in _RENAME_FIELDS if isinstance(details.get(n), Mapping)), {}
        )
        pairs = [(str(old), str(new)) for old, new in value.items()]
    if all(f"{old} -> {new}" in finding.message for old, new in pairs):
        return []
    if len(pairs) > MAX_KEYS:
        return [*pairs[: MAX_KEYS - 1], (f"… and {len(pairs) - MAX_KEYS + 1} more", "")]
    return pairs


def capped_keys(keys: Sequence[Any], limit: int = MAX_KEYS) -> tuple[str, ...]:
    """Keys collapsed over repeated blocks and capped at `limit` lines, the last saying how many are left."""
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
    used = {"mismatches", "ambiguous", *_RENAME_FIELDS, *_LIST_FIELDS, *_HIDDEN}
    if _row(details) is not None or "mismatches" in details:
        used |= {"key", "checkpoint_shape", "model_shape", *_DTYPE_FIELDS}
    return used


def _said(finding: Finding, entries: Sequence[str]) -> bool:
    """Every entry of a list already appears in the message (the list would only repeat it)."""
    return all(entry in finding.message for entry in entries)


def _ambiguous(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    groups = details.get("ambiguous")
    if not isinstance(groups, list):
        return []
    return [
        (", ".join(capped_keys(g.get("checkpoint", []), 3)), ", ".join(capped_keys(g.get("model", []), 3)))
        for g in groups
        if isinstance(g, Mapping)
    ]


def _list_label(finding: Finding, name: str) -> str:
    if name == "keys":
        return _KEY_LABELS.get(finding.rule, "keys")
    return name


def other_locations(finding: Finding) -> list[Location]:
    """`also_at`: the defining lines of the other layers one change resized (the location is the first's)."""
    entries = finding.details.get("also_at")
    if not isinstance(entries, list):
        return []
    return [
        Location(str(e["path"]), e.get("line"), e.get("snippet"))
        for e in entries
        if isinstance(e, Mapping) and e.get("path")
    ]


def view(finding: Finding) -> DetailView:
    """What people see of the details: what the message does not already say."""
    details = finding.details
    lists = tuple(
        (_list_label(finding, name), len(details[name]), entries)
        for name in _LIST_FIELDS
        if isinstance(details.get(name), (list, tuple))
        and details[name]
        and not _said(finding, entries := capped_keys(details[name]))
    )
    used = _consumed(details)
    extras = tuple(
        (name, text)
        for name, value in details.items()
        if name not in used and (text := _short(value)) and text not in finding.message
    )
    rows = _shape_rows(details)
    said = all(r.checkpoint in finding.message and r.model in finding.message for r in rows)
    shapes = () if said and len(rows) <= 3 else tuple(rows)
    renames = tuple(_renames(finding))
    return DetailView(shapes, renames, lists, extras, tuple(_ambiguous(details)))
