"""Deterministic sharding of checkpoint paths across CI matrix jobs (`--shard K/N`).

A path's shard comes from a hash of the path itself, not its position in a list, so adding or removing
other checkpoints never moves a path to another shard (a SARIF category per shard stays meaningful).
"""

from __future__ import annotations

import hashlib
import re

from ckaudit.errors import CkauditError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N), 1 <= K <= N; anything else is a usage error."""
    match = _SHARD.match(text)
    if match is None:
        raise CkauditError(f"--shard {text!r}: expected K/N, e.g. 1/4")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise CkauditError(f"--shard {text!r}: K must be between 1 and N (N >= 1)")
    return index, count


def shard_of(path: str, count: int) -> int:
    """The 1-based shard a path belongs to among `count` shards."""
    normalized = path.replace("\\", "/")
    while normalized.startswith("./"):
        normalized = normalized[2:]
    digest = hashlib.sha256(normalized.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1
