"""Collapse repeated indices in state-dict keys: `layers.0.w` … `layers.31.w` -> `layers.{0..31}.w`.

Private stop-gap until the reader's shared `ckaudit.keyranges` lands; reporters import `collapse_keys`.
"""

from __future__ import annotations

from collections.abc import Iterable


def _ranges(numbers: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0..2,5,7..8'."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}..{prev}")
        if n is not None:
            start = prev = n
    return ",".join(parts)


def collapse_keys(keys: Iterable[str]) -> list[str]:
    """Group keys that differ only in their first numeric segment, in order of first appearance."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for key in keys:
        parts = key.split(".")
        index = next((i for i, p in enumerate(parts) if p.isdigit()), None)
        if index is None:
            groups.setdefault((key,), [])
            continue
        template = (*parts[:index], "{}", *parts[index + 1 :])
        groups.setdefault(template, []).append(int(parts[index]))
    out: list[str] = []
    for template, numbers in groups.items():
        if not numbers:
            out.append(template[0])
            continue
        unique = sorted(set(numbers))
        slot = str(unique[0]) if len(unique) == 1 else "{" + _ranges(unique) + "}"
        out.append(".".join(slot if p == "{}" else p for p in template))
    return out
