"""Short constructors for the reader's errors, and the one conversion from a pickle error."""

from __future__ import annotations

from typing import Any

from ckaudit.findings import Rule
from ckaudit.reader.pickle_walk import PickleError
from ckaudit.reader.types import CheckpointReadError


def truncated(message: str, **details: Any) -> CheckpointReadError:
    return CheckpointReadError(Rule.TRUNCATED, message, details)


def corrupt(message: str, **details: Any) -> CheckpointReadError:
    return CheckpointReadError(Rule.CORRUPT, message, details)


def not_a_checkpoint(message: str, **details: Any) -> CheckpointReadError:
    return CheckpointReadError(Rule.NOT_A_CHECKPOINT, message, details)


def from_pickle(error: PickleError, where: str) -> CheckpointReadError:
    if error.truncated:
        return truncated(f"{where} ends early: {error}")
    return corrupt(f"{where} is not a valid pickle stream: {error}")
