"""Pure key arithmetic for the compatibility engine: ignore globs, prefixes, rename maps.

Key lists are collapsed by the shared `ckaudit.keyranges.collapse_keys` (re-exported here for compat).
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ckaudit.keyranges import collapse_keys

Shape = tuple[int, ...]
__all__ = [
    "PrefixFix",
    "collapse_keys",
    "collapsed_renames",
    "find_prefix",
    "ignored",
    "module_renames",
    "pair_renames",
    "rename_key",
]
_MAX_PREFIX_PARTS = 3  # `module._orig_mod.model.` is as deep as wrappers nest in practice


def ignored(key: str, globs: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, glob) for glob in globs)


@dataclass(frozen=True)
class PrefixFix:
    mode: str  # "strip": the checkpoint's keys carry the prefix; "add": the model's keys do
    prefix: str  # with its trailing dot: "module._orig_mod."
    count: int  # how many keys it pairs up

    def apply(self, key: str) -> str:
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


def pair_renames(
    missing: Sequence[str],
    unexpected: Sequence[str],
    model_shapes: Mapping[str, Shape],
    checkpoint_shapes: Mapping[str, Shape],
) -> dict[str, str] | None:
    """Checkpoint key -> model key, when missing and unexpected pair 1:1 by shape, leaf name and order;
    in the model's order (of `model_shapes`).

    Unexpected keys left over may only be ones that move with a renamed module (a BatchNorm's
    `num_batches_tracked` that torch itself fills in for states saved without it).
    """
    wanted = _by_signature(missing, model_shapes)
    offered = _by_signature(unexpected, checkpoint_shapes)
    if not missing or wanted is None or offered is None:
        return None
    if any(len(offered.get(signature, ())) != len(keys) for signature, keys in wanted.items()):
        return None
    renames = {old: new for sig, news in wanted.items() for old, new in zip(offered[sig], news, strict=True)}
    modules = {old.rpartition(".")[0]: new.rpartition(".")[0] for old, new in renames.items()}
    for key in unexpected:
        module, _, leaf = key.rpartition(".")
        if key in renames:
            continue
        if module not in modules:
            return None
        renames[key] = f"{modules[module]}.{leaf}" if modules[module] else leaf
    order = {key: index for index, key in enumerate(model_shapes)}
    return dict(sorted(renames.items(), key=lambda pair: order.get(pair[1], len(order))))


def _by_signature(
    keys: Sequence[str], shapes: Mapping[str, Shape]
) -> dict[tuple[Shape, str], list[str]] | None:
    groups: dict[tuple[Shape, str], list[str]] = {}
    for key in keys:
        if key not in shapes:
            return None
        groups.setdefault((shapes[key], key.rsplit(".", 1)[-1]), []).append(key)
    return groups


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
    tails: dict[tuple[str, str], list[str]] = {}
    for old, new in renames.items():
        old_head, new_head = next(_candidate_moves(old, new), (old, new))
        tails.setdefault((old_head, new_head), []).append(old[len(old_head) :])
    return {old + tail: new + tail for (old, new), rests in tails.items() for tail in collapse_keys(rests)}


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
