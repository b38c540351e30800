"""Every pickle stream a read walks, wherever it sits, pooled: what the file as a whole names and calls.

One `StreamAudit` lives for one `read_checkpoint` call. Readers walk each stream through it (the legacy
format's five pickles, every `.pkl` member of an archive, a numpy object array, a shard), so the globals
of a stream that parsed are not lost when a later step fails: `attach` puts them on the error, and the
safety checks still see a payload in a file that is truncated, corrupt or no checkpoint at all.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from ckaudit.reader.errors import from_pickle
from ckaudit.reader.pickle import PersistentLoad, PickleError, PickleResult, walk_bytes, walk_pickle
from ckaudit.reader.types import CheckpointReadError


class StreamAudit:
    def __init__(self) -> None:
        self.globals: set[str] = set()
        self.calls: set[str] = set()
        self.streams: list[str] = []  # where each walked stream sits ("archive/data.pkl", "the main pickle")

    def walk_bytes(
        self, data: bytes, where: str, *, persistent_load: PersistentLoad | None = None
    ) -> PickleResult:
        """Walk an in-memory pickle; a parse error is the reader's error for `where`, names kept."""
        self.streams.append(where)
        try:
            return self._keep(walk_bytes(data, persistent_load=persistent_load))
        except PickleError as exc:
            raise self._failed(exc, where) from None

    def walk_stream(
        self, handle: BinaryIO, size: int, where: str, *, persistent_load: PersistentLoad | None = None
    ) -> PickleResult:
        """Walk one pickle from the handle's position (left just past STOP); errors as for walk_bytes."""
        self.streams.append(where)
        try:
            return self._keep(walk_pickle(handle, size, persistent_load=persistent_load))
        except PickleError as exc:
            raise self._failed(exc, where) from None

    def add(self, globals: Any, calls: Any) -> None:
        """Names found by another read (a shard's) that belong to this file too."""
        self.globals.update(globals)
        self.calls.update(calls)

    def attach(self, error: CheckpointReadError) -> CheckpointReadError:
        """The same error, carrying every name seen in this read (its own and the streams walked before)."""
        if self.globals <= set(error.globals) and self.calls <= set(error.calls):
            return error
        return CheckpointReadError(
            error.rule,
            error.message,
            error.details,
            globals=self.globals.union(error.globals),
            calls=self.calls.union(error.calls),
        )

    def sorted_globals(self) -> tuple[str, ...]:
        return tuple(sorted(self.globals))

    def sorted_calls(self) -> tuple[str, ...]:
        return tuple(sorted(self.calls))

    def _keep(self, result: PickleResult) -> PickleResult:
        self.globals.update(result.globals)
        self.calls.update(result.calls)
        return result

    def _failed(self, exc: PickleError, where: str) -> CheckpointReadError:
        """The reader's error; its names (and an unproven stream's marker) stay with the audit even when
        a caller reads on past the failure."""
        error = from_pickle(exc, where)
        self.add(error.globals, error.calls)
        return error
