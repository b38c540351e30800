"""Pure key arithmetic for the compatibility engine: collapsed key lists, prefixes, rename maps.

`collapse_keys` is ours because no shared key-range helper existed when this was written.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Shape = tuple[int, ...]
_MAX_PREFIX_PARTS = 3  # `module._orig_mod.model.` is as deep as wrappers nest in practice


def collapse_keys(keys: Iterable[str]) -> list[str]:
    """`layers.0.w`, `layers.1.w`, … -> `layers.{0..31}.w`, at every numeric position, in first-seen order."""
    entries = [key.split(".") for key in keys]
    width = max((len(parts) for parts in entries), default=0)
    for position in range(width):
        entries = _collapse_position(entries, position)
    return [".".join(parts) for parts in entries]


def _collapse_position(entries: list[list[str]], position: int) -> list[list[str]]:
    groups: dict[tuple[str, ...], list[int]] = {}
    order: list[tuple[str, ...] | list[str]] = []
    for parts in entries:
        if position < len(parts) and parts[position].isdigit():
            template = (*parts[:position], "\0", *parts[position + 1 :])
            if template not in groups:
                groups[template] = []
                order.append(template)
            groups[template].append(int(parts[position]))
        else:
            order.append(parts)
    result = []
    for item in order:
        if isinstance(item, list):
            result.append(item)
            continue
        numbers = groups[item]
        label = str(numbers[0]) if len(numbers) == 1 else _ranges(numbers)
        result.append([label if part == "\0" else part for part in item])
    return result


def _ranges(numbers: Sequence[int]) -> str:
    values = sorted(set(numbers))
    runs: list[str] = []
    start = previous = values[0]
    for value in [*values[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        runs.append(str(start) if start == previous else f"{start}..{previous}")
        if value is not None:
            start = previous = value
    return "{" + ",".join(runs) + "}"


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
