"""Collapse repeated indices in state-dict keys: `layers.0.attn.weight` … `layers.11.attn.weight` ->
`layers.{0..11}.attn.weight`, only among keys that share a value (e.g. the same shape and dtype).

Nested indices collapse too (`blocks.{0..3}.heads.{0..7}.w`) when every outer index has the same inner set.
Rename maps collapse here as well: `collapse_moves` over the indices both names carry, and `collapse_within`
for maps grouped by another rule (compat's per-key renames, by the module they move).
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

V = TypeVar("V", bound=Hashable)
RANGE = re.compile(r"\{\d[\d.,]*\}")  # an index range as collapsed here: `{0..11}`, `{3,5}`
_INDEX = re.compile(r"(?<![^.])\d+(?![^.])")  # a whole dotted segment of digits


def format_ranges(numbers: Iterable[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0..2,5,7..8'."""
    ordered = sorted(set(numbers))
    parts: list[str] = []
    start = prev = ordered[0]
    for n in [*ordered[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}..{prev}")
        if n is not None:
            start = prev = n
    return ",".join(parts)


def _numeric_positions(key: str) -> list[int]:
    return [i for i, part in enumerate(key.split(".")) if part.isdigit()]


def _index_positions(key: str) -> list[int]:
    """Plain indices and ranges already made: `a.{0..1}.b.0` -> [1, 3]."""
    return [i for i, part in enumerate(key.split(".")) if part.isdigit() or part.startswith("{")]


def _collapse_once(rows: list[tuple[str, V, int]], depth: int) -> list[tuple[str, V, int]]:
    """Group rows on their `depth`-th index from the end (inner ones were grouped before); others pass.

    An inner index that took one value stays a plain number (`block.{0..1}.0.q`), yet is not grouped again.
    """
    groups: dict[tuple[tuple[str, ...], V], list[tuple[int, int]]] = {}
    for key, value, count in rows:
        parts = key.split(".")
        positions = _index_positions(key)
        index = positions[-1 - depth] if len(positions) > depth else None
        if index is None or not parts[index].isdigit():
            groups.setdefault(((key,), value), []).append((-1, count))
            continue
        template = (*parts[:index], "\0", *parts[index + 1 :])
        groups.setdefault((template, value), []).append((int(parts[index]), count))
    out: list[tuple[str, V, int]] = []
    for (template, value), members in groups.items():
        if members[0][0] == -1:
            out.extend((template[0], value, c) for _, c in members)
            continue
        numbers = [n for n, _ in members]
        slot = str(numbers[0]) if len(set(numbers)) == 1 else "{" + format_ranges(numbers) + "}"
        key = ".".join(slot if part == "\0" else part for part in template)
        out.append((key, value, sum(c for _, c in members)))
    return out


def collapse_rows(rows: Iterable[tuple[str, V]]) -> list[tuple[str, V, int]]:
    """(key, value) rows -> (collapsed key, value, keys it stands for), in order of first appearance."""
    current = [(key, value, 1) for key, value in rows]
    deepest = max((len(_numeric_positions(key)) for key, _value, _count in current), default=0)
    for depth in range(deepest):  # innermost index first, so outer ranges merge identical inner ranges
        current = _collapse_once(current, depth)
    return current


def collapse_keys(keys: Iterable[str]) -> list[str]:
    """Keys alone (no value to agree on): `layers.{0..31}.attn.qkv.weight`."""
    return [key for key, _value, _count in collapse_rows((key, None) for key in keys)]


def collapse_within(rows: Iterable[tuple[str, V]]) -> list[tuple[str, V]]:
    """(key, group) rows -> (collapsed key, group): keys collapse only with keys of their own group, and each
    group comes out whole, groups in order of first appearance (the pairs of a rename map, grouped by how
    they rename, read group by group)."""
    groups: dict[V, list[str]] = {}
    for key, group in rows:
        groups.setdefault(group, []).append(key)
    return [(pattern, group) for group, keys in groups.items() for pattern in collapse_keys(keys)]


def collapse_moves(moves: Mapping[str, str]) -> dict[str, str]:
    """old -> new names that carry the same indices in the same order collapse over them
    (`layers.{0..11}.attn -> blocks.{0..11}.attention`); the others follow, one per name."""
    carried: list[tuple[str, tuple[str, str]]] = []
    single: dict[str, str] = {}
    for old, new in moves.items():
        indices = _INDEX.findall(old)
        if indices and indices == _INDEX.findall(new):
            carried.append((old, (_INDEX.sub("\0", old), _INDEX.sub("\0", new))))
        else:
            single[old] = new
    out = {pattern: _carry(pattern, new) for pattern, (_old, new) in collapse_within(carried)}
    return {**out, **single}


def _carry(pattern: str, template: str) -> str:
    """The new name's template (indices as NUL) with the collapsed old name's indices and ranges, in order."""
    slots = [m.group() for m in re.finditer(rf"{RANGE.pattern}|{_INDEX.pattern}", pattern)]
    pieces = template.split("\0")
    return pieces[0] + "".join(slot + piece for slot, piece in zip(slots, pieces[1:], strict=True))
