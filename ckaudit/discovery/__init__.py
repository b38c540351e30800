"""What `ckaudit init` finds: the model classes of a repository and the checkpoints that fit them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.discovery.models import find_classes
    from ckaudit.discovery.proposals import merged, propose

__all__ = ["find_classes", "merged", "propose"]

__getattr__ = lazy_exports(__name__, __file__)
