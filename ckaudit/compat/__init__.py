"""Dry-run outcomes to findings and advice: key fixes, renames, devices, config drift, fix plans, and
the installed distributions a checkpoint was saved with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.compat.check import check_compat, spec_from_build, spec_from_cli
    from ckaudit.compat.environment import Changes, changes, installed_versions, package_version_finding
    from ckaudit.compat.fixcode import collapsed_moves
    from ckaudit.compat.fixplan import (
        EntryFix,
        FixPlan,
        entry_fix,
        explicit_entry_fix,
        explicit_plan,
        planned,
    )
    from ckaudit.compat.keyfix import PrefixFix, collapse_keys, find_prefix
    from ckaudit.compat.ways import with_removal

__all__ = [
    "Changes",
    "EntryFix",
    "FixPlan",
    "PrefixFix",
    "changes",
    "check_compat",
    "collapse_keys",
    "collapsed_moves",
    "entry_fix",
    "explicit_entry_fix",
    "explicit_plan",
    "find_prefix",
    "installed_versions",
    "package_version_finding",
    "planned",
    "spec_from_build",
    "spec_from_cli",
    "with_removal",
]

__getattr__ = lazy_exports(__name__, __file__)
