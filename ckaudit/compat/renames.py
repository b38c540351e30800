"""Pairing the checkpoint's leftover keys with the model's: which tensor was renamed to which.

A dry run checks shapes only, so it cannot tell two same-shaped tensors apart: a map that pairs
`attention.query.bias` with a key projection loads with strict=True and silently puts the weights in the
wrong place. Pairs are therefore chosen by their names first (tokens shared, `q` ~ `query`, the conventions
`gamma` -> `weight`, `beta` -> `bias`, `weight_g` -> `parametrizations.weight.original0`), within groups of
equal shape; when another assignment of the same group scores as well, the pairs are *ambiguous* and are
reported as competing instead of proposed — unless every competing module name states its place among its
siblings (`layer_norm_1`/`layer_norm_2` against `layernorm_before`/`layernorm_after`), which settles the
pairing by place. Keys torch reports as resized may take part too (a downsample
that moved from the end of stage i to the start of stage i+1 keeps its name but not its index), but only as
whole modules whose names differ in indices alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

Shape = tuple[int, ...]
_TOKEN = re.compile(r"[a-z]+|\d+")
# Leaf conventions: old name -> what current code calls it (torch's weight norm, TF-era LayerNorm names).
_LEAF_ALIASES = {
    "gamma": "weight",
    "beta": "bias",
    "weight_g": "parametrizations.weight.original0",
    "weight_v": "parametrizations.weight.original1",
}
_TIE = 1e-9
# Words by which a module name states its place among its siblings (`layernorm_before`, `pre_norm`).
_ORDINAL_WORDS = {"before": 1, "pre": 1, "first": 1, "after": 2, "post": 2, "second": 2}
_FULL_SCORING = 48 * 48  # groups up to this many pairs are scored pair by pair
# Name parts that mean the same layer kind in different libraries' spellings.
_SYNONYMS = {"ln": "norm", "layernorm": "norm", "bn": "norm", "batchnorm": "norm", "attention": "attn"}


@dataclass(frozen=True)
class Ambiguity:
    """Keys of one shape that pair up in more than one way equally well by name."""

    checkpoint: tuple[str, ...]
    model: tuple[str, ...]


@dataclass(frozen=True)
class RenameProposal:
    renames: dict[str, str]  # checkpoint key -> model key: pairs the names decide, in the model's order
    ambiguous: tuple[Ambiguity, ...] = field(default=())


def canonical(key: str) -> str:
    """The key with its leaf written as current code names it (`ln.gamma` -> `ln.weight`)."""
    for old, new in _LEAF_ALIASES.items():
        if key == old or key.endswith("." + old):
            return key[: len(key) - len(old)] + new
    return key


def _leaf(key: str) -> str:
    key = canonical(key)
    if ".parametrizations." in f".{key}":
        return key[key.index("parametrizations") :]
    return key.rpartition(".")[2]


@lru_cache(maxsize=65536)
def _tokens(key: str) -> tuple[str, ...]:
    return tuple(_SYNONYMS.get(t, t) for t in _TOKEN.findall(canonical(key).lower()))


def similarity(old: str, new: str) -> float:
    """Soft Dice over name tokens: equal tokens count 1, one a prefix of the other (`q`/`query`) 0.5."""
    a, b = _tokens(old), _tokens(new)
    if not a or not b:
        return 0.0
    return (_soft_hits(a, b) + _soft_hits(b, a)) / (len(a) + len(b))


def _soft_hits(tokens: Sequence[str], others: Sequence[str]) -> float:
    pool = list(others)
    total = 0.0
    for token in tokens:
        if token in pool:
            pool.remove(token)
            total += 1.0
        elif not token.isdigit() and any(
            not o.isdigit() and (o.startswith(token) or token.startswith(o)) for o in pool
        ):
            total += 0.5
    return total


def _index_move(old: str, new: str) -> bool:
    """Same name but for numeric parts: `stages.0.downsample.w` -> `stages.1.downsample.w`."""
    a, b = old.split("."), new.split(".")
    if len(a) != len(b):
        return False
    return all(x == y or (x.isdigit() and y.isdigit()) for x, y in zip(a, b, strict=True))


def propose_renames(
    missing: Sequence[str],
    unexpected: Sequence[str],
    model_shapes: Mapping[str, Shape],
    checkpoint_shapes: Mapping[str, Shape],
    resized: Sequence[str] = (),
) -> RenameProposal | None:
    """Pairs of (checkpoint key, model key) of equal shape and equal leaf, chosen by name; None when none."""
    offered = [k for k in (*unexpected, *resized) if k in checkpoint_shapes]
    wanted = [k for k in (*missing, *resized) if k in model_shapes]
    resized_set = set(resized)
    groups: dict[tuple[Shape, str], tuple[list[str], list[str]]] = {}
    for key in offered:
        groups.setdefault((checkpoint_shapes[key], _leaf(key)), ([], []))[0].append(key)
    for key in wanted:
        if (model_shapes[key], _leaf(key)) in groups:
            groups[(model_shapes[key], _leaf(key))][1].append(key)
    renames: dict[str, str] = {}
    ambiguous: list[Ambiguity] = []
    for olds, news in groups.values():
        pairs, unsure = _assign(olds, news, resized_set)
        renames.update(pairs)
        for group in unsure:
            by_order = _by_ordinal(group)
            renames.update(by_order or {})
            ambiguous.extend(() if by_order else (group,))
    renames = _without_collisions(
        _whole_module_moves(renames, resized_set, checkpoint_shapes), checkpoint_shapes
    )
    renames |= _companions(renames, unexpected)
    if not renames and not ambiguous:
        return None
    order = {key: index for index, key in enumerate(model_shapes)}
    ordered = dict(sorted(renames.items(), key=lambda pair: order.get(pair[1], len(order))))
    return RenameProposal(ordered, tuple(ambiguous))


def _assign(olds: list[str], news: list[str], resized: set[str]) -> tuple[dict[str, str], list[Ambiguity]]:
    """Greedy by name similarity; pairs that an equal-scoring swap could replace are ambiguous."""
    score: dict[tuple[str, str], float] = {}
    if len(olds) * len(news) > _FULL_SCORING:  # many same-shaped layers: equal block indices first
        by_index: dict[tuple[str, ...], list[str]] = {}
        for new in news:
            by_index.setdefault(_indices(new), []).append(new)
        _score(score, ((old, new) for old in olds for new in by_index.get(_indices(old), ())), resized)
        chosen, taken = _greedy(score)
        left_old, left_new = [o for o in olds if o not in chosen], [n for n in news if n not in taken]
        if len(left_old) * len(left_new) <= _FULL_SCORING:
            _score(score, ((old, new) for old in left_old for new in left_new), resized)
    else:
        _score(score, ((old, new) for old in olds for new in news), resized)
    chosen, taken = _greedy(score)
    unsure_old: set[str] = set()
    rival_new: set[str] = set()
    owner = {new: old for old, new in chosen.items()}
    for (o1, n2), crossed in score.items():  # would swapping two chosen pairs score as well?
        o2, n1 = owner.get(n2), chosen.get(o1)
        if o2 is None or n1 is None or o2 == o1:
            continue
        if crossed + score.get((o2, n1), -1.0) >= score[(o1, n1)] + score[(o2, n2)] - _TIE:
            unsure_old |= {o1, o2}
    for old, new in chosen.items():  # a free key that would fit as well as the chosen one
        best = score[(old, new)] - _TIE
        free_olds = {o for o in olds if o not in chosen and score.get((o, new), -1.0) >= best}
        free_news = {n for n in news if n not in taken and score.get((old, n), -1.0) >= best}
        if free_olds or free_news:
            unsure_old |= {old, *free_olds}
            rival_new |= free_news
    if not unsure_old:
        return chosen, []
    rival_new |= {chosen[o] for o in unsure_old if o in chosen}
    group = Ambiguity(tuple(o for o in olds if o in unsure_old), tuple(n for n in news if n in rival_new))
    return {o: n for o, n in chosen.items() if o not in unsure_old}, [group]


def _by_ordinal(group: Ambiguity) -> dict[str, str] | None:
    """An ambiguity the names settle by order: within each block (same indices), every competing module
    name on both sides says its place — a number (`layer_norm_1`, `layer_norm_2`) or a word (`before`,
    `after`, `pre`, `post`) — and the n-th on one side is the n-th on the other. Anything else stays
    ambiguous (None). Registration order is no evidence: libraries reorder modules when they rename them."""
    blocks: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
    for old in group.checkpoint:
        blocks.setdefault(_indices(old), ([], []))[0].append(old)
    for new in group.model:
        blocks.setdefault(_indices(new), ([], []))[1].append(new)
    pairs: dict[str, str] = {}
    for olds, news in blocks.values():
        ranked = [_ranked(olds), _ranked(news)]
        if len(olds) < 2 or len(olds) != len(news) or None in ranked:
            return None
        pairs.update(zip(ranked[0] or (), ranked[1] or (), strict=True))
    return pairs


def _ranked(keys: list[str]) -> list[str] | None:
    """The keys in the order their module names state, when each states a different place."""
    places = {key: _ordinal(key) for key in keys}
    if any(p is None for p in places.values()) or len(set(places.values())) != len(keys):
        return None
    return sorted(keys, key=lambda key: places[key] or 0)


def _ordinal(key: str) -> int | None:
    """The place a key's module name states: `layer_norm_2` -> 2, `layernorm_before` -> 1; None if none
    (a block index, a dotted number, is not one)."""
    parts = key.split(".")
    module = parts[-2].lower() if len(parts) > 1 else ""
    found = re.search(r"(?<=[a-z_])(\d+)$", module)
    if found:
        return int(found.group(1))
    words = [w for w in module.split("_") if w in _ORDINAL_WORDS]
    return _ORDINAL_WORDS[words[0]] if len(words) == 1 else None


def _indices(key: str) -> tuple[str, ...]:
    return tuple(part for part in key.split(".") if part.isdigit())


def _score(score: dict[tuple[str, str], float], pairs: Iterable[tuple[str, str]], resized: set[str]) -> None:
    for old, new in pairs:
        if old != new and ((old not in resized and new not in resized) or _index_move(old, new)):
            score[(old, new)] = similarity(old, new)


def _greedy(score: Mapping[tuple[str, str], float]) -> tuple[dict[str, str], set[str]]:
    chosen: dict[str, str] = {}
    taken: set[str] = set()
    for (old, new), _ in sorted(score.items(), key=lambda item: -item[1]):
        if old not in chosen and new not in taken:
            chosen[old] = new
            taken.add(new)
    return chosen, taken


def _whole_module_moves(
    renames: dict[str, str], resized: set[str], checkpoint_shapes: Mapping[str, Shape]
) -> dict[str, str]:
    """A pair that takes a resized key keeps only if every tensor of its module moves to the same place."""
    kept = dict(renames)
    for old, new in renames.items():
        if old not in resized and new not in resized:
            continue
        module, target = old.rpartition(".")[0], new.rpartition(".")[0]
        siblings = [k for k in checkpoint_shapes if k.rpartition(".")[0] == module]
        if any(renames.get(k, "").rpartition(".")[0] != target for k in siblings):
            kept.pop(old, None)
    return kept


def _without_collisions(renames: dict[str, str], checkpoint_keys: Iterable[str]) -> dict[str, str]:
    """Drop pairs whose target a checkpoint key that keeps its name already holds (two tensors, one key)."""
    present = set(checkpoint_keys)
    kept = dict(renames)
    while clash := [old for old, new in kept.items() if new in present and new not in kept]:
        for old in clash:
            kept.pop(old)
    return kept


def _companions(renames: Mapping[str, str], unexpected: Iterable[str]) -> dict[str, str]:
    """Unexpected keys torch would fill in when missing (`num_batches_tracked`) move with their module."""
    modules: dict[str, set[str]] = {}
    for old, new in renames.items():
        modules.setdefault(old.rpartition(".")[0], set()).add(new.rpartition(".")[0])
    extra = {}
    for key in unexpected:
        module, _, leaf = key.rpartition(".")
        targets = modules.get(module, set())
        if key not in renames and len(targets) == 1:
            target = next(iter(targets))
            extra[key] = f"{target}.{leaf}" if target else leaf
    return extra
