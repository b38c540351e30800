"""The two key lists the HTML report draws a failing checkpoint's trees from, kept on its result.

Only for checkpoints that were dry-run and do not load (so a passing scan carries no extra data): the
model's state-dict keys (persistent entries, sorted as the worker's signature is) and the checkpoint's,
relative to the container the dry run used (the registered `key:` when the file has it, else the reader's
best state-dict candidate).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the hook's fast path imports verdicts (and so this) but never the reader
    from ckaudit.reader import CheckpointInfo
    from ckaudit.registry import CheckpointEntry
    from ckaudit.scan.evaluator import Outcome


def failing_model_keys(outcome: Outcome) -> tuple[str, ...] | None:
    """The model's persistent state-dict keys, only when the dry run built the model and it does not load;
    None otherwise (a passing scan carries no key lists)."""
    if outcome.loads or not outcome.built or not isinstance(outcome.signature, dict):
        return None
    return tuple(k for k, v in outcome.signature.items() if not (isinstance(v, list) and v[2:3] == [False]))


def failing_checkpoint_keys(
    outcome: Outcome, entry: CheckpointEntry, info: CheckpointInfo
) -> tuple[tuple[str, ...], str] | None:
    """(keys, container) of the state dict the dry run compared; None when it loads or was not built."""
    if outcome.loads or not outcome.built or not info.candidates:
        return None
    wanted = entry.key or ""
    chosen = next((c for c in info.candidates if c.key == wanted), info.candidates[0])
    return tuple(chosen.tensors), chosen.key


def key_lists(outcome: Outcome, entry: CheckpointEntry, info: CheckpointInfo) -> dict[str, Any]:
    """The result fields: `model_keys`, `checkpoint_keys`, `checkpoint_container` (empty when it loads)."""
    model = failing_model_keys(outcome)
    found = failing_checkpoint_keys(outcome, entry, info)
    if model is None or found is None:
        return {}
    return {"model_keys": model, "checkpoint_keys": found[0], "checkpoint_container": found[1]}
