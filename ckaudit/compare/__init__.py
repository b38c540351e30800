"""History: blame's walk through the commits that last loaded and first failed a checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.compare.blame import Blame, Step, signature_diff, walk

__all__ = ["Blame", "Step", "signature_diff", "walk"]

__getattr__ = lazy_exports(__name__, __file__)
