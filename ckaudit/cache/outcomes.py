"""Content-keyed cache of compatibility results, under `<cache root>/outcomes/` (`ckaudit.cache.store`).

A key is the sha256 of everything a result depends on: the blob ids of the model's source files, the
factory/build/kwargs, the project interpreter and its torch version, the checkpoint's state-dict
signature and the entry's key/strict/ignore (the installed distributions a build used are recorded with its
outcome and checked when it is read: `ckaudit.scan.evaluator`). One JSON file per key, written atomically
(`write_atomic`), so
two worktrees or terminals sharing the cache can never leave a torn file; an unreadable entry is a miss.
Deleting the folder changes nothing but speed.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ckaudit.atomic import write_atomic
from ckaudit.cache.store import cache_root

if TYPE_CHECKING:
    from ckaudit.reader import CheckpointInfo

CACHE_VERSION = 2  # 2: findings grouped and worded anew (issue 12); older entries would show stale advice


class JsonStore:
    """One JSON file per key under `directory`; `directory=None` is a disabled cache (`--no-cache`)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    @classmethod
    def for_repo(cls, repo: Path, enabled: bool = True) -> JsonStore:
        """The outcome store for `repo`: under its git common dir (outside git, the user's cache folder), per
        cache version; one that keeps nothing when disabled (`--no-cache`)."""
        if not enabled:
            return cls(None)
        from ckaudit.vcs import find_repo

        return cls(cache_root(find_repo(repo)) / "outcomes" / f"v{CACHE_VERSION}")

    def _file(self, kind: str, key: str) -> Path | None:
        return None if self.directory is None else self.directory / kind / key[:2] / f"{key}.json"

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The record stored under `kind`/`key`; None when absent, unreadable or not a JSON object (a
        broken cache entry is a miss, never an error)."""
        file = self._file(kind, key)
        if file is None:
            return None
        try:
            value = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def put(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        """Write atomically; a cache that cannot be written is only a slower run."""
        file = self._file(kind, key)
        if file is None:
            return
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(file, json.dumps(value, sort_keys=True, separators=(",", ":"), default=str))
        except OSError:
            return


@functools.cache
def code_fingerprint() -> str:
    """ckaudit's own source, its worker included: outcomes made by another ckaudit are never reused (the
    worker's build and the findings' wording change with it). Read once per process, a few milliseconds."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def make_key(parts: Mapping[str, Any]) -> str:
    """A content key: sha256 of the parts as canonical JSON, so equal inputs hit whatever their order."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def checkpoint_signature(info: CheckpointInfo) -> str:
    """What a dry run sees of a checkpoint: every state-dict candidate's keys, shapes, dtypes and metadata,
    and the hyperparameters it records (config-drift compares them with the build)."""
    candidates = [
        {
            "key": c.key,
            "tensors": sorted((k, list(t.shape), t.dtype) for k, t in c.tensors.items()),
            "metadata": c.metadata,
        }
        for c in info.candidates
    ]
    return make_key(
        {
            "format": info.format,
            "candidates": candidates,
            "globals": list(info.globals),
            "hyperparameters": info.hyperparameters,
        }
    )
