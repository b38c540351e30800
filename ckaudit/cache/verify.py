"""Verification results cached by stat, so a second `--verify` of unchanged files reads no tensor data.

One small JSON file per checkpoint under `<cache root>/verify/` (`ckaudit.cache.store.cache_root`), named
by a hash of the absolute path. An entry holds the stat it was computed
for (size, mtime_ns, inode, ctime_ns) and is used only while the file's stat is identical. One file per entry
means concurrent runs never lose each other's results; each write is a temp file + `os.replace`, so a reader
sees the old entry or the new one, never half of one. A file changed within the filesystem's timestamp
granularity of the moment it was verified is not cached (git's "racy" rule). Deleting the folder only costs
speed; anything unreadable in it is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ckaudit import __version__
from ckaudit.atomic import write_atomic

FORMAT = 1
RACY_NS = 1_000_000_000  # entries for files changed less than this before their stat are not stored


@dataclass(frozen=True)
class Verification:
    """What verifying one file found: its sha256 (when asked for) and the integrity problems."""

    sha256: str | None
    problems: tuple[Mapping[str, Any], ...] = ()  # {"rule", "message", "details"}, as the reader reported


def stat_key(stat: os.stat_result) -> list[int]:
    """What must not change for a cached verification to stand: size, mtime, inode and ctime (a copy that
    restores the old mtime, `cp -p` or `touch -d`, cannot restore the ctime)."""
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns]


class VerifyCache:
    """`VerifyCache(None)` is the disabled cache (`--no-cache`): every lookup misses, nothing is written."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def _entry_path(self, path: Path) -> Path:
        assert self.directory is not None
        name = hashlib.sha256(f"{FORMAT}\0{__version__}\0{path.resolve()}".encode()).hexdigest()[:40]
        return self.directory / f"{name}.json"

    def get(self, path: Path, stats: Sequence[os.stat_result], *, need_sha256: bool) -> Verification | None:
        """The stored result for `path` if every stat (the file's, then its shards') is as it was."""
        if self.directory is None:
            return None
        try:
            entry = json.loads(self._entry_path(path).read_text(encoding="utf-8"))
            if entry["stat"] != [stat_key(s) for s in stats] or (need_sha256 and entry["sha256"] is None):
                return None
            return Verification(sha256=entry["sha256"], problems=tuple(entry["problems"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, path: Path, stats: Sequence[os.stat_result], result: Verification) -> None:
        """Store `result` for the files as they were at `stats`; silently skip racy or unwritable entries."""
        if self.directory is None or any(_is_racy(s) for s in stats):
            return
        entry = {
            "path": str(path.resolve()),
            "stat": [stat_key(s) for s in stats],
            "sha256": result.sha256,
            "problems": [dict(p) for p in result.problems],
        }
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomic(self._entry_path(path), json.dumps(entry, sort_keys=True, default=str))
        except OSError:
            pass  # a read-only git dir or a full disk costs speed, not correctness


def _is_racy(stat: os.stat_result) -> bool:
    return time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) < RACY_NS
