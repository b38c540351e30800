"""Pure key arithmetic for the compatibility engine: ignore globs, prefixes, rename maps.

Key lists are collapsed by the shared `ckaudit.keyranges.collapse_keys` (re-exported here for compat).
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ckaudit.keyranges import RANGE as _RANGE
from ckaudit.keyranges import collapse_keys, collapse_within

Shape = tuple[int, ...]
__all__ = [
    "PrefixFix",
    "collapse_keys",
    "collapsed_renames",
    "exact_globs",
    "explains_most",
    "find_prefix",
    "ignored",
    "module_renames",
    "rename_key",
]
_MAX_PREFIX_PARTS = 3  # `module._orig_mod.model.` is as deep as wrappers nest in practice
_PREFIX_SHARE = 0.8  # a prefix must pair up this share of the differing keys to be the explanation


def ignored(key: str, globs: Sequence[str]) -> bool:
    """Whether an `ignore:` glob of the registry matches `key` (case-sensitive, as keys are)."""
    return any(fnmatch.fnmatchcase(key, glob) for glob in globs)


@dataclass(frozen=True)
class PrefixFix:
    mode: str  # "strip": the checkpoint's keys carry the prefix; "add": the model's keys do
    prefix: str  # with its trailing dot: "module._orig_mod."
    count: int  # how many keys it pairs up

    def apply(self, key: str) -> str:
        """The key with the prefix stripped (where it has it) or added."""
        if self.mode == "strip":
            return key[len(self.prefix) :] if key.startswith(self.prefix) else key
        return self.prefix + key


def find_prefix(missing: Sequence[str], unexpected: Sequence[str]) -> PrefixFix | None:
    """The dotted prefix that turns the most unexpected keys into missing ones (or the inverse)."""
    best: PrefixFix | None = None
    for mode, have, want in (("strip", unexpected, missing), ("add", missing, unexpected)):
        wanted = set(want)
        counts: Counter[str] = Counter()
        for key in have:
            parts = key.split(".")
            for cut in range(1, min(len(parts), _MAX_PREFIX_PARTS + 1)):
                prefix = ".".join(parts[:cut]) + "."
                if key[len(prefix) :] in wanted:
                    counts[prefix] += 1
        if counts:
            prefix, count = counts.most_common(1)[0]
            if best is None or count > best.count:
                best = PrefixFix(mode, prefix, count)
    return best


def explains_most(fix: PrefixFix, missing: Sequence[str], unexpected: Sequence[str]) -> bool:
    """A prefix is the explanation only when it pairs (nearly) every differing key, not 2 of 132 — or when
    it is a whole-file wrapper (`_orig_mod.`, `module.`): (nearly) every key on one side carries it and it
    pairs (nearly) every key the other side lacks, whatever else changed (a compiled model's checkpoint
    whose model has since lost layers has both causes: the prefix and the removed keys)."""
    differing = len(missing) + len(unexpected)
    if differing > 0 and 2 * fix.count >= _PREFIX_SHARE * differing:
        return True
    have, want = (unexpected, missing) if fix.mode == "strip" else (missing, unexpected)
    carried = sum(1 for key in have if key.startswith(fix.prefix)) if fix.mode == "strip" else len(have)
    return bool(want) and fix.count >= _PREFIX_SHARE * len(want) and carried >= _PREFIX_SHARE * len(have)


def exact_globs(keys: Sequence[str], universe: Iterable[str]) -> list[str]:
    """`ignore:` globs that match exactly `keys` among `universe` (every key of the model and the file).

    Collapsed ranges become `*` (`blocks.*.attn.mask`) where that matches no other key; otherwise the keys
    are listed one by one. fnmatch's `[`, `]`, `?`, `*` in a key are escaped, so a top-level key matches
    itself only.
    """
    wanted = list(dict.fromkeys(keys))
    others = [k for k in dict.fromkeys(universe) if k not in set(wanted)]
    globs: list[str] = []
    covered: set[str] = set()
    for pattern in collapse_keys(wanted):
        glob = _escape(_RANGE.sub("\0", pattern)).replace("\0", "*")
        shape = re.compile(re.escape(_RANGE.sub("\0", pattern)).replace("\x00", r"\d+"))
        members = [k for k in wanted if k not in covered and shape.fullmatch(k)]
        if any(fnmatch.fnmatchcase(k, glob) for k in others):
            narrow = _digit_classes(pattern)
            if narrow is not None and not any(fnmatch.fnmatchcase(k, narrow) for k in others):
                globs.append(narrow)
            else:
                globs.extend(_escape(k) for k in members)
        else:
            globs.append(glob)
        covered.update(members)
    globs.extend(_escape(k) for k in wanted if k not in covered)
    return globs


def _digit_classes(pattern: str) -> str | None:
    """`blocks.{0..5}.mask` -> `blocks.[0-5].mask` when every range is of single digits; else None."""
    pieces = _RANGE.split(pattern)
    ranges = _RANGE.findall(pattern)
    classes = []
    for spec in ranges:
        digits = "".join(
            "".join(str(n) for n in range(int(lo), int(hi or lo) + 1))
            for lo, _, hi in (part.partition("..") for part in spec[1:-1].split(","))
        )
        if len(digits) != len(set(digits)) or any(not d.isdigit() for d in digits) or int(max(digits)) > 9:
            return None
        classes.append(f"[{digits}]")
    out = _escape(pieces[0])
    for cls, piece in zip(classes, pieces[1:], strict=True):
        out += cls + _escape(piece)
    return out


def _escape(key: str) -> str:
    return re.sub(r"([*?\[\]])", r"[\1]", key)


def module_renames(renames: Mapping[str, str], keys: Iterable[str] = ()) -> dict[str, str]:
    """The highest module moves that reproduce `renames` exactly, in the order of `renames`.

    `backbone -> encoder` stands for every `backbone.<rest> -> encoder.<rest>` when each key under `backbone`
    is renamed that way and no other key of the checkpoint (`keys`) sits under it; what no module move
    covers stays a key -> key entry (`fc.w -> fc.weight`). `rename_key` applies the result.
    """
    under = _keys_under([*renames, *keys])
    checked: dict[tuple[str, str], bool] = {}
    moves: dict[str, str] = {}
    for old, new in renames.items():
        if _covering(moves, old) is not None:
            continue
        for old_module, new_module in _candidate_moves(old, new):
            pair = (old_module, new_module)
            if pair not in checked:
                checked[pair] = all(
                    renames.get(key) == new_module + key[len(old_module) :] for key in under[old_module]
                )
            if checked[pair]:
                moves[old_module] = new_module
                break
        else:
            moves[old] = new
    return moves


def rename_key(moves: Mapping[str, str], key: str) -> str:
    """A checkpoint key after `module_renames`' moves (the fix's `moves` code does the same)."""
    covering = _covering(moves, key)
    return key if covering is None else moves[covering] + key[len(covering) :]


def collapsed_renames(renames: Mapping[str, str]) -> dict[str, str]:
    """Per-key renames, short: `backbone.{0..2}.norm.weight -> encoder.{0..2}.norm.weight` (keys whose
    renamed heads agree collapse over the part they share)."""
    tails = []
    for old, new in renames.items():
        old_head, new_head = next(_candidate_moves(old, new), (old, new))
        tails.append((old[len(old_head) :], (old_head, new_head)))
    return {old + tail: new + tail for tail, (old, new) in collapse_within(tails)}


def _covering(moves: Mapping[str, str], key: str) -> str | None:
    """The move that applies to `key`: the key itself, else its closest enclosing module."""
    parts = key.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in moves:
            return prefix
    return None


def _candidate_moves(old: str, new: str) -> Iterator[tuple[str, str]]:
    """Module pairs that could carry `old` to `new`, highest first: the parts after them are the same."""
    old_parts, new_parts = old.split("."), new.split(".")
    common = 0
    while (
        common < min(len(old_parts), len(new_parts)) - 1 and old_parts[-1 - common] == new_parts[-1 - common]
    ):
        common += 1
    for tail in range(common, 0, -1):
        yield ".".join(old_parts[:-tail]), ".".join(new_parts[:-tail])


def _keys_under(keys: Iterable[str]) -> dict[str, list[str]]:
    """Every dotted path -> the keys at or below it."""
    under: dict[str, list[str]] = {}
    for key in dict.fromkeys(keys):
        parts = key.split(".")
        for cut in range(1, len(parts) + 1):
            under.setdefault(".".join(parts[:cut]), []).append(key)
    return under
