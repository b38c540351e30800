"""Collapse repeated indices in state-dict keys: `layers.0.attn.weight` … `layers.11.attn.weight` ->
`layers.{0..11}.attn.weight`, only among keys that share a value (e.g. the same shape and dtype).

Nested indices collapse too (`blocks.{0..3}.heads.{0..7}.w`) when every outer index has the same inner set.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

V = TypeVar("V", bound=Hashable)


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
