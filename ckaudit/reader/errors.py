"""Short constructors for the reader's errors, and the one conversion from a pickle error."""

from __future__ import annotations

from typing import Any

from ckaudit.findings import Rule
from ckaudit.reader.pickle import PickleError, unproven_call
from ckaudit.reader.types import CheckpointReadError


def truncated(message: str, **details: Any) -> CheckpointReadError:
    """A read error under the truncated rule (the file ends early)."""
    return CheckpointReadError(Rule.TRUNCATED, message, details)


def corrupt(message: str, **details: Any) -> CheckpointReadError:
    """A read error under the corrupt rule (the bytes contradict the format)."""
    return CheckpointReadError(Rule.CORRUPT, message, details)


def not_a_checkpoint(message: str, **details: Any) -> CheckpointReadError:
    """A read error for a file that is no checkpoint at all."""
    return CheckpointReadError(Rule.NOT_A_CHECKPOINT, message, details)


def from_pickle(error: PickleError, where: str) -> CheckpointReadError:
    """The reader's error for a failed pickle, keeping the globals named and called before the failure.

    A stream the walker cannot follow (`unproven`) is `unsafe-pickle`: what torch would go on to unpickle
    cannot be proven inert, so it counts as a call nothing allowlists."""
    if error.unproven:
        reason = f"{where}: {error}"
        return CheckpointReadError(
            Rule.UNSAFE_PICKLE,
            f"cannot prove inert: {reason}",
            globals=error.globals,
            calls=error.calls | {unproven_call(reason)},
        )
    if error.truncated:
        rule, message = Rule.TRUNCATED, f"{where} ends early: {error}"
    else:
        rule, message = Rule.CORRUPT, f"{where} is not a valid pickle stream: {error}"
    return CheckpointReadError(rule, message, globals=error.globals, calls=error.calls)


def describe(head: bytes) -> str:
    """A few words on what the content looks like instead: an HTML page, text, binary data."""
    text = head.lstrip()[:200].lower()
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text:
        return "an HTML page: a failed download or a login page?"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data"
    return "text"
