"""Error text (a traceback, a CI log, a bug report) -> the cause, the rule and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.explain.messages import Explanation, explain_text

__all__ = ["Explanation", "explain_text"]

__getattr__ = lazy_exports(__name__, __file__)
