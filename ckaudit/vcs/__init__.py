"""Git, read and never written: repository queries and read-only trees of commits, the index and the
working tree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.vcs.history import Commit, log
    from ckaudit.vcs.prefetch import prefetched_trees
    from ckaudit.vcs.queries import history_hint, ignored, lfs_tracked, tracked_files
    from ckaudit.vcs.repo import GitRepo, find_repo
    from ckaudit.vcs.trees import (
        MATERIAL_SUFFIXES,
        Tree,
        WorkTree,
        blob_oid,
        commit_tree,
        git,
        hook_index_env,
        index_tree,
        materialise,
        resolve_commit,
        staged_paths,
        tree_has,
        tree_paths,
        work_tree,
    )

__all__ = [
    "MATERIAL_SUFFIXES",
    "Commit",
    "GitRepo",
    "Tree",
    "WorkTree",
    "blob_oid",
    "commit_tree",
    "find_repo",
    "git",
    "history_hint",
    "hook_index_env",
    "ignored",
    "index_tree",
    "lfs_tracked",
    "log",
    "materialise",
    "prefetched_trees",
    "resolve_commit",
    "staged_paths",
    "tracked_files",
    "tree_has",
    "tree_paths",
    "work_tree",
]

__getattr__ = lazy_exports(__name__, __file__)
