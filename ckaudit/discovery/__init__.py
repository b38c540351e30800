"""What `ckaudit init` finds: the model classes of a repository and the checkpoints that fit them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.discovery.hub import library_model
    from ckaudit.discovery.models import ConfigClass, ModelClass, find_classes
    from ckaudit.discovery.proposals import merged, propose
    from ckaudit.discovery.skip import SkippedFolders

__all__ = [
    "ConfigClass",
    "ModelClass",
    "SkippedFolders",
    "find_classes",
    "library_model",
    "merged",
    "propose",
]

__getattr__ = lazy_exports(__name__, __file__)
