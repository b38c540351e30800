"""Cached dry runs of any tree (the evaluator), the scan pipeline, and the verdicts before and after a
change (hook, check).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.scan.causes import changed_texts, name_changed_lines, without_causes
    from ckaudit.scan.evaluator import Evaluator, Outcome
    from ckaudit.scan.loadinfo import load_info
    from ckaudit.scan.pipeline import add_code_findings
    from ckaudit.scan.policy import status_of
    from ckaudit.scan.verdicts import Labels, compare, entry_at, registry_at, relevant_models

__all__ = [
    "Evaluator",
    "Labels",
    "Outcome",
    "add_code_findings",
    "changed_texts",
    "compare",
    "entry_at",
    "load_info",
    "name_changed_lines",
    "registry_at",
    "relevant_models",
    "status_of",
    "without_causes",
]

__getattr__ = lazy_exports(__name__, __file__)
