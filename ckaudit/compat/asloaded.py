"""A state-dict candidate re-keyed: by a proposed fix (prefix, rename map) or by the registry's `load:` steps,
so that findings judge the checkpoint as the project really loads it. Torch-free, except that a `loader:`
function of the project runs in the model worker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ckaudit.compat.keyfix import PrefixFix, ignored, rename_key
from ckaudit.findings import Finding
from ckaudit.reader import CheckpointInfo, StateDictCandidate
from ckaudit.registry import LoadSteps
from ckaudit.worker import ModelError, ModelWorker


def rekey(
    candidate: StateDictCandidate, key_fn: Callable[[str], str], meta_fn: Callable[[str], str]
) -> StateDictCandidate:
    """A candidate with every tensor key mapped by `key_fn` and its `_metadata` module names by `meta_fn`
    (metadata is keyed by module, not by tensor, so a prefix or rename maps it differently)."""
    tensors = {key_fn(k): dataclasses.replace(t, key=key_fn(k)) for k, t in candidate.tensors.items()}
    metadata = None
    if candidate.metadata is not None:
        metadata = {meta_fn(k): v for k, v in candidate.metadata.items()}
    return StateDictCandidate(key=candidate.key, tensors=tensors, metadata=metadata)


def prefix_metadata(fix: PrefixFix) -> Callable[[str], str]:
    """Module paths in `_metadata` move with their keys (as consume_prefix_in_state_dict_if_present does)."""
    bare = fix.prefix[:-1] if fix.prefix.endswith(".") else fix.prefix

    def move(path: str) -> str:
        if fix.mode == "add":
            return f"{fix.prefix}{path}" if path else bare
        if path == bare:
            return ""
        return path[len(fix.prefix) :] if path.startswith(fix.prefix) else path

    return move


def rename_metadata(renames: Mapping[str, str], moves: Mapping[str, str]) -> Callable[[str], str]:
    """Module paths in `_metadata` follow the module moves (key -> key entries move no module)."""
    moves = {old: new for old, new in moves.items() if old not in renames}

    def move(path: str) -> str:
        for old, new in moves.items():
            if path == old or path.startswith(old + "."):
                return new + path[len(old) :]
        return path

    return move


def apply_steps(candidate: StateDictCandidate, steps: LoadSteps) -> StateDictCandidate:
    """strip_prefix (each, where present), add_prefix, rename, drop: the declarative steps, in that order."""
    for prefix in steps.strip_prefix:
        strip = PrefixFix("strip", prefix, 0)
        candidate = rekey(candidate, strip.apply, prefix_metadata(strip))
    if steps.add_prefix:
        add = PrefixFix("add", steps.add_prefix, 0)
        candidate = rekey(candidate, add.apply, prefix_metadata(add))
    if steps.rename:
        moves = dict(steps.rename)
        candidate = rekey(candidate, lambda k: rename_key(moves, k), rename_metadata({}, moves))
    if steps.drop:
        kept = {k: t for k, t in candidate.tensors.items() if not ignored(k, steps.drop)}
        candidate = dataclasses.replace(candidate, tensors=kept)
    return candidate


@dataclass(frozen=True)
class AsLoaded:
    info: CheckpointInfo  # with the used candidate as the project's loader leaves it
    error: ModelError | None = None  # the project's loader function failed
    sources: tuple[str, ...] = ()  # repository files the loader function imported


def as_loaded(info: CheckpointInfo, steps: LoadSteps, used: str, root: Path, worker: ModelWorker) -> AsLoaded:
    """The checkpoint as `load:` describes the project loading it. Declarative steps apply to every
    candidate; a loader function runs on the used one (the first candidate when `key:` names none)."""
    if not steps.loader:
        candidates = tuple(apply_steps(c, steps) for c in info.candidates)
        return AsLoaded(dataclasses.replace(info, candidates=candidates))
    first = info.candidates[0] if info.candidates else None
    target = next((c for c in info.candidates if c.key == used), first)
    if target is None:
        return AsLoaded(info)
    result = worker.apply_loader(root, steps.loader, target)
    if result.candidate is None:
        return AsLoaded(info, result.error, result.sources)
    candidates = tuple(result.candidate if c is target else c for c in info.candidates)
    return AsLoaded(dataclasses.replace(info, candidates=candidates), None, result.sources)


def noting_load_steps(finding: Finding, steps: LoadSteps) -> Finding:
    """A code finding about the checkpoint as loaded says which steps were applied first."""
    return dataclasses.replace(
        finding,
        message=f"{finding.message} (as loaded with {steps.describe()})",
        details={**finding.details, "load": steps.as_dict()},
    )
