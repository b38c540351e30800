"""Versions of a repository's files — a commit's tree, the index, the working tree — read-only.

A `Tree` lists paths with their blob ids and reads contents in bulk. `materialise` writes the files a
model needs (Python sources and small config/text files, never checkpoints or blobs over a size limit)
into a temporary directory through the repository's persistent `git cat-file --batch` (`vcs.repo`): one
process for all blobs of the run. Nothing here writes the working tree, the index, refs, the stash or git
config (see `vcs.repo` for how every call is kept read-only).

In a pre-commit hook git may point GIT_INDEX_FILE at a temporary index (`git commit -a`, `git commit
FILE`). The runner pins the repository's own index, so the index is chosen deliberately here:
`hook_index_env()` passes the hook's own GIT_INDEX_FILE on to the git calls that read the index.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ckaudit.errors import GitError
from ckaudit.vcs.repo import hook_index, nul_separated, open_repo

MAX_BLOB = 1_000_000
MATERIAL_SUFFIXES = (".py", ".pyi", ".yaml", ".yml", ".json", ".toml", ".cfg", ".ini", ".txt")
_REGULAR_MODES = ("100644", "100755")
_FULL_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def git(repo: Path, *args: str, env: Mapping[str, str] | None = None, input: bytes | None = None) -> bytes:
    """Run a read-only git command in `repo` and return its stdout."""
    return open_repo(repo).run(*args, env=env, input=input)


def blob_oid(data: bytes) -> str:
    """Git's blob id of `data`, computed in Python (no `git hash-object` process)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def resolve_commit(repo: Path, rev: str) -> str | None:
    """The commit id `rev` names, or None when it names nothing (an unborn HEAD)."""
    return open_repo(repo).resolve_commit(rev)


def hook_index_env(repo: Path) -> dict[str, str]:
    """The index git gave this process (GIT_INDEX_FILE during `commit -a`), as an env for child git calls."""
    return hook_index(open_repo(repo).toplevel)


@dataclass(frozen=True)
class Entry:
    path: str
    oid: str
    mode: str
    size: int | None = None


def wanted(entry: Entry) -> bool:
    """Files a model may need: regular text/source files, small enough."""
    if entry.mode not in _REGULAR_MODES or not entry.path.endswith(MATERIAL_SUFFIXES):
        return False
    return entry.size is None or entry.size <= MAX_BLOB


@dataclass
class Tree:
    """One version of the repository's files: `entries` by path; contents read from git on demand."""

    repo: Path
    label: str
    entries: Mapping[str, Entry]
    commit: str | None = None  # None: the index or the working tree
    _cache: dict[str, bytes] = field(default_factory=dict, repr=False)

    def oid(self, path: str) -> str | None:
        """The blob id of `path` in this tree; None when absent."""
        entry = self.entries.get(path)
        return entry.oid if entry else None

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes]:
        """Contents of the given paths that exist (and are regular files), read in one batch."""
        found = {
            p: self.entries[p] for p in paths if p in self.entries and self.entries[p].mode in _REGULAR_MODES
        }
        missing = {e.oid for e in found.values() if e.oid not in self._cache}
        self._cache.update(open_repo(self.repo).read_blobs(missing))
        return {p: self._cache[e.oid] for p, e in found.items()}

    def materialise_to(self, target: Path) -> None:
        """Write the source and config files under `target`; blobs over MAX_BLOB are left out (a data file
        committed by mistake must not make every dry run copy it)."""
        selected = [e for e in self.entries.values() if wanted(e)]
        unsized = [e.oid for e in selected if e.size is None]
        if unsized:
            sizes = open_repo(self.repo).blob_sizes(unsized)
            selected = [e for e in selected if e.size is not None or sizes.get(e.oid, 0) <= MAX_BLOB]
        contents = self.read_many(e.path for e in selected)
        write_files(target, contents)


def write_files(target: Path, contents: Mapping[str, bytes]) -> None:
    """Write `contents` under `target`, making each parent folder once (thousands of files per tree)."""
    made: set[Path] = set()
    for path, data in contents.items():
        dest = target / path
        if dest.parent not in made:
            dest.parent.mkdir(parents=True, exist_ok=True)
            made.add(dest.parent)
        dest.write_bytes(data)


class WorkTree(Tree):
    """The working tree as it is: files read from disk, blob ids computed in Python."""

    def __init__(self, repo: Path, paths: Iterable[str]) -> None:
        super().__init__(repo=repo, label="working tree", entries={})
        self._paths = set(paths)

    def oid(self, path: str) -> str | None:
        """The blob id git would give the file's current content (so cache keys match committed trees)."""
        data = self.read_many([path]).get(path)
        return blob_oid(data) if data is not None else None

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes]:
        """The current contents of the regular files among `paths` (symlinks and absent files left out),
        read once."""
        result = {}
        for path in paths:
            if path not in self._cache:
                file = self.repo / path
                if not file.is_file() or file.is_symlink():
                    continue
                try:
                    self._cache[path] = file.read_bytes()
                except OSError:
                    continue
            result[path] = self._cache[path]
        return result

    def has(self, path: str) -> bool:
        """Listed (tracked or not ignored) or present on disk."""
        return path in self._paths or (self.repo / path).is_file()

    def all_paths(self) -> set[str]:
        """The paths listed when the tree was made (git's tracked and untracked, not ignored)."""
        return self._paths


def tree_paths(tree: Tree) -> set[str]:
    """Every path of the tree; for the working tree, the listed ones (untracked but not ignored included)."""
    return tree.all_paths() if isinstance(tree, WorkTree) else set(tree.entries)


def tree_has(tree: Tree, path: str) -> bool:
    """Whether `path` is in the tree; the working tree also answers for files that appeared since listing."""
    return tree.has(path) if isinstance(tree, WorkTree) else path in tree.entries


def commit_tree(repo: Path, rev: str, label: str | None = None) -> Tree:
    """The tree of commit `rev` (`git ls-tree -r -l -z`). A full commit id (what `log` gives, blame's walk)
    is listed in one git call: `ls-tree` of `<id>^{commit}` fails for anything that is not a commit."""
    if _FULL_ID.fullmatch(rev):
        commit = rev
    else:
        found = resolve_commit(repo, rev)
        if found is None:
            raise GitError(f"{rev!r} does not name a commit in {repo}")
        commit = found
    out = git(repo, "ls-tree", "-r", "-l", "-z", "--end-of-options", f"{commit}^{{commit}}")
    entries = {}
    for record in nul_separated(out):
        meta, _, path = record.partition("\t")
        mode, kind, oid, size = meta.split()
        if kind == "blob":
            entries[path] = Entry(path, oid, mode, int(size) if size.isdigit() else None)
    return Tree(repo=repo, label=label or rev, entries=entries, commit=commit)


def index_tree(repo: Path, env: Mapping[str, str] | None = None) -> Tree:
    """The staged content (`git ls-files -s -z`), from the index `env` names (default: the repository's)."""
    out = git(repo, "ls-files", "-s", "-z", env=env)
    entries = {}
    for record in nul_separated(out):
        meta, _, path = record.partition("\t")
        mode, oid, stage = meta.split()
        if stage in ("0", "2") and path not in entries:  # a conflict: "ours" stands in
            entries[path] = Entry(path, oid, mode)
    return Tree(repo=repo, label="index", entries=entries)


def work_tree(repo: Path) -> WorkTree:
    """The working tree: tracked and untracked-but-not-ignored files, read from disk."""
    out = git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return WorkTree(repo, set(nul_separated(out)))


def staged_paths(repo: Path) -> list[str]:
    """Paths added or modified in the index relative to HEAD (every staged path before the first commit)."""
    env = hook_index_env(repo)
    if resolve_commit(repo, "HEAD") is None:
        return sorted(index_tree(repo, env).entries)
    out = git(
        repo,
        "diff-index",
        "--cached",
        "--relative",
        "--name-only",
        "--diff-filter=ACMR",
        "-z",
        "HEAD",
        env=env,
    )
    return nul_separated(out)


@contextmanager
def materialise(tree: Tree, base: Path | None = None) -> Iterator[Path]:
    """A directory (under `base`, default: $TMPDIR) holding the tree's source and config files; removed on
    exit. The working tree is used in place."""
    if isinstance(tree, WorkTree):
        yield tree.repo
        return
    target = Path(tempfile.mkdtemp(prefix=f"ckaudit-{tree.label.replace('/', '_')[:20]}-", dir=base))
    try:
        tree.materialise_to(target)
        yield target
    finally:
        shutil.rmtree(target, ignore_errors=True)
