"""Commit trees listed ahead of their use, in one background thread.

Blame's walk is a loop of "list a commit's tree, find its model files, ask the worker": while the worker
builds (a separate process), this process is idle. Listing the next commits' trees (`git ls-tree`) and
reading and parsing their model files (`warm`) in a thread meanwhile takes that work off the walk's
critical path. The trees are the ones `commit_tree` gives, handed over in order, each only once its thread
is done with it; blob reads share the repository's `git cat-file` under its lock (`vcs.repo`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

from ckaudit.vcs.trees import Tree, commit_tree

AHEAD = 8  # trees listed ahead: enough to cover a build, few enough that an early stop wastes little


def prefetched_trees(
    repo: Path, shas: Iterable[str], warm: Callable[[Tree], object] = lambda tree: None
) -> Generator[Tree, None, None]:
    """`commit_tree` of each commit id in `shas`, in order, listed up to AHEAD commits ahead and passed to
    `warm` (which fills caches; its errors are left to the caller's own reads to meet) in a background
    thread. A git error listing a tree is raised when that tree is reached."""
    pending = iter(shas)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ckaudit-trees") as pool:
        window: deque[Future[Tree]] = deque()
        try:
            for sha in pending:
                window.append(pool.submit(_prepare, repo, sha, warm))
                if len(window) > AHEAD:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for future in window:  # the caller stopped early: what is not started never runs
                future.cancel()


def _prepare(repo: Path, sha: str, warm: Callable[[Tree], object]) -> Tree:
    tree = commit_tree(repo, sha, label=sha[:8])
    with suppress(Exception):  # only a warm-up: the walk's own read of the tree meets and reports the error
        warm(tree)
    return tree
