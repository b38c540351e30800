"""Pure key arithmetic for the compatibility engine: ignore globs, prefixes, rename maps.

Key lists are collapsed by the shared `ckaudit.keyranges.collapse_keys` (re-exported here for compat).
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ckaudit.keyranges import collapse_keys

Shape = tuple[int, ...]
__all__ = ["PrefixFix", "collapse_keys", "find_prefix", "ignored", "module_renames", "pair_renames"]
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
    """Checkpoint key -> model key, when missing and unexpected pair 1:1 by shape, leaf name and order.

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
    return renames


def _by_signature(
    keys: Sequence[str], shapes: Mapping[str, Shape]
) -> dict[tuple[Shape, str], list[str]] | None:
    groups: dict[tuple[Shape, str], list[str]] = {}
    for key in keys:
        if key not in shapes:
            return None
        groups.setdefault((shapes[key], key.rsplit(".", 1)[-1]), []).append(key)
    return groups


def module_renames(renames: Mapping[str, str]) -> dict[str, str]:
    """`fc.weight->head.weight, fc.bias->head.bias` -> `{"fc": "head"}` where a whole module moved as one."""
    modules: dict[str, set[str]] = {}
    for old, new in renames.items():
        old_module, _, old_leaf = old.rpartition(".")
        new_module, _, new_leaf = new.rpartition(".")
        modules.setdefault(old_module, set()).add(new_module if old_leaf == new_leaf else "\0")
    compact = {old: next(iter(new)) for old, new in modules.items() if len(new) == 1 and "\0" not in new}
    result = {old: new for old, new in renames.items() if old.rpartition(".")[0] not in compact}
    return {**compact, **result}
