"""Caches under the git directory: verification results by stat, dry-run outcomes by content."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.cache.outcomes import JsonStore, checkpoint_signature, code_fingerprint, make_key
    from ckaudit.cache.store import cache_root
    from ckaudit.cache.verify import Verification, VerifyCache, stat_key

__all__ = [
    "JsonStore",
    "Verification",
    "VerifyCache",
    "cache_root",
    "checkpoint_signature",
    "code_fingerprint",
    "make_key",
    "stat_key",
]

__getattr__ = lazy_exports(__name__, __file__)
