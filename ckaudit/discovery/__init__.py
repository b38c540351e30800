"""What `ckaudit init` finds: the model classes of a repository and the checkpoints that fit them.

The face: the names below are what other packages use (imported on first use, see ckaudit.faces);
the modules themselves are private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.discovery.models import find_classes
    from ckaudit.discovery.proposals import merged, propose

__all__ = ["find_classes", "merged", "propose"]

__getattr__ = lazy_exports(__name__, __file__)
