"""History: blame's walk through the commits that last loaded and first failed a checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.compare.blame import Blame, Step, signature_diff, walk
    from ckaudit.compare.sourcediff import by_relevance, source_diff, trimmed

__all__ = [
    "Blame",
    "Step",
    "by_relevance",
    "signature_diff",
    "source_diff",
    "trimmed",
    "walk",
]

__getattr__ = lazy_exports(__name__, __file__)
