"""The code a rename fix prints: short enough to read for twelve blocks, exact for every key of the file.

Module moves that differ only in their block indices collapse to one line
(`vit.encoder.layer.{0..11}.attention.attention.query -> vit.layers.{0..11}.attention.q_proj`) and to one
regular expression in the printed code; the code is checked against the per-key map on every key of the
checkpoint before it is printed, and falls back to an explicit dict when the short form would differ.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ckaudit.compat.keyfix import rename_key
from ckaudit.keyranges import RANGE as _RANGE
from ckaudit.keyranges import collapse_moves


def rename_code(moves: Mapping[str, str], renames: Mapping[str, str], keys: Iterable[str]) -> str:
    """One line of Python that renames a state dict `sd` as `moves` do, verified on `keys`: module
    prefixes when whole modules move, one regex per collapsed move when indices repeat, else a dict."""
    keys = list(keys)
    ordered = sorted(collapse_moves(moves).items(), key=lambda move: -move[0].count("."))  # inner first
    subs = [_regex(old, new) for old, new in ordered]
    exact = all(_apply(subs, k) == rename_key(moves, k) for k in keys)
    if exact and all(old not in renames for old in moves) and not any("{" in old for old, _ in ordered):
        pairs = ", ".join(f'"{old}.": "{new}."' for old, new in ordered)
        return (
            f"`moves = {{{pairs}}}; sd = {{next((moves[p] + k[len(p):] for p in moves if k.startswith(p)), "
            "k): v for k, v in sd.items()}`"
        )
    if exact:
        listed = ", ".join(f'(r"{p}", r"{r}")' for p, r in subs)
        return (
            f"`import re; subs = [{listed}]; sd = {{next((re.sub(p, r, k) for p, r in subs "
            "if re.match(p, k)), k): v for k, v in sd.items()}`"
        )
    pairs = ", ".join(f'"{old}": "{new}"' for old, new in renames.items())
    return f"`renames = {{{pairs}}}; sd = {{renames.get(k, k): v for k, v in sd.items()}}`"


def _regex(old: str, new: str) -> tuple[str, str]:
    pattern, replacement, group = "^", "", 0
    for piece in re.split(f"({_RANGE.pattern})", old):
        pattern += r"(\d+)" if _RANGE.fullmatch(piece) else re.escape(piece)
    for piece in re.split(f"({_RANGE.pattern})", new):
        if _RANGE.fullmatch(piece):
            group += 1
            replacement += f"\\{group}"
        else:
            replacement += piece.replace("\\", "\\\\")
    return pattern + r"(?=\.|$)", replacement


def _apply(subs: list[tuple[str, str]], key: str) -> str:
    for pattern, replacement in subs:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    return key
