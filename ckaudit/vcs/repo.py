"""The one way ckaudit talks to git: GitPython's `Repo` for discovery, its command runner for plumbing and
its persistent `cat-file` processes for blobs. Read-only: nothing here writes the working tree, the index,
refs, the stash or git config.

Every command runs with `GIT_OPTIONAL_LOCKS=0` (not even a stat refresh of the index is written) and with
`GIT_DIR`, `GIT_WORK_TREE` and `GIT_INDEX_FILE` pinned to the repository found here, so the variables git sets
for hooks cannot redirect ckaudit's own calls. The index a pre-commit hook was given (`GIT_INDEX_FILE` during
`git commit -a`) is chosen deliberately: `hook_index()` names it for the calls that read the index.

Refs are resolved by `git rev-parse` through the runner, not by GitPython's Python re-implementation, which
lacks some of git's revision syntax.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ckaudit.errors import GitError

if TYPE_CHECKING:
    import git

TIMEOUT = 60.0


class GitRepo:
    """One repository seen from `root` (a folder inside its work tree). Paths are root-relative."""

    def __init__(self, root: Path, repo: git.Repo, runner: git.Git) -> None:
        self.root = root
        self.repo = repo
        self.git = runner  # GitPython's command runner, working in the root
        self.toplevel = Path(repo.working_tree_dir or root)
        self.git_dir = Path(repo.git_dir)  # this worktree's git dir
        self.common_dir = Path(repo.common_dir).resolve()  # shared by every worktree: where caches live
        rel = Path(os.path.realpath(root)).relative_to(os.path.realpath(self.toplevel)).as_posix()
        self.prefix = "" if rel == "." else rel + "/"  # root relative to toplevel, posix, trailing slash
        runner.update_environment(
            GIT_DIR=str(self.git_dir),
            GIT_WORK_TREE=str(self.toplevel),
            GIT_INDEX_FILE=str(self.git_dir / "index"),
            GIT_OPTIONAL_LOCKS="0",
        )

    def from_toplevel(self, path: str) -> str | None:
        """A toplevel-relative path as root-relative, or None when it lies outside the root."""
        return path[len(self.prefix) :] if path.startswith(self.prefix) else None

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        ok: tuple[int, ...] | None = (0,),
    ) -> bytes:
        """Run `git ARGS` in the root through GitPython's runner; stdout as bytes. An exit status outside
        `ok` (None: any status is an answer) raises GitError with git's message."""
        from git import exc as git_exc

        command = [str(self.git.GIT_PYTHON_GIT_EXECUTABLE), "-c", "core.quotepath=off", *args]
        status: int | None
        out: str | bytes | None
        err: str | bytes | None
        try:
            if input is None:
                status, out, err = self.git.execute(
                    command,
                    with_extended_output=True,
                    with_exceptions=False,
                    stdout_as_string=False,
                    strip_newline_in_stdout=False,
                    kill_after_timeout=TIMEOUT,
                    env=env,
                )
            else:
                status, out, err = self._run_with_input(command, input, env)
        except (OSError, git_exc.GitCommandNotFound) as exc:
            raise GitError(f"`git {' '.join(args)}` could not run: {exc}") from None
        if ok is not None and status not in ok:
            message = err.decode(errors="replace") if isinstance(err, bytes) else str(err)
            raise GitError(f"`git {' '.join(args)}` exited with status {status}: {message.strip()[-2000:]}")
        return out if isinstance(out, bytes) else (out or "").encode()

    def _run_with_input(
        self, command: list[str], input: bytes, env: Mapping[str, str] | None
    ) -> tuple[int, bytes, bytes]:
        wrapper = self.git.execute(command, istream=subprocess.PIPE, as_process=True, env=env)
        process = wrapper.proc  # the wrapper kills the process when collected: it stays referenced until here
        assert process is not None
        try:
            out, err = process.communicate(input, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return -1, b"", b"timed out"
        status = process.returncode
        del wrapper
        return status, out, err

    def resolve_commit(self, rev: str) -> str | None:
        """The commit id `rev` names, or None when it names nothing (an unborn HEAD, a typo)."""
        out = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", ok=(0, 1))
        return out.decode().strip() or None

    def read_blobs(self, oids: Iterable[str]) -> dict[str, bytes]:
        """Contents of blobs through GitPython's persistent `git cat-file --batch` (one process per run)."""
        blobs = {}
        for oid in sorted(set(oids)):
            try:
                _, kind, _, data = self.git.get_object_data(oid)
            except ValueError as exc:  # GitPython's answer for a missing object
                raise GitError(f"git cat-file: {oid}: {exc}") from None
            if kind not in ("blob", b"blob"):  # GitPython answers bytes
                raise GitError(f"git cat-file: {oid} is a {kind!s}, not a blob")
            blobs[oid] = data
        return blobs

    def blob_sizes(self, oids: Iterable[str]) -> dict[str, int]:
        """Sizes of blobs through the persistent `git cat-file --batch-check`; missing ones are left out."""
        sizes = {}
        for oid in sorted(set(oids)):
            try:
                _, _, size = self.git.get_object_header(oid)
            except ValueError:
                continue
            sizes[oid] = size
        return sizes


def hook_index(toplevel: Path) -> dict[str, str]:
    """The index git gave this process (GIT_INDEX_FILE during `commit -a`), as an env for the calls that read
    the index; empty outside a hook."""
    index = os.environ.get("GIT_INDEX_FILE")
    if not index:
        return {}
    path = Path(index)
    return {"GIT_INDEX_FILE": str(path if path.is_absolute() else toplevel / path)}


def find_repo(root: Path) -> GitRepo | None:
    """The repository whose work tree holds `root`, or None (no repository, a bare one, no git installed).
    Opened once per folder and kept for the run, so its `cat-file` processes serve every later call."""
    return _open(str(Path(root).absolute()))


def open_repo(root: Path) -> GitRepo:
    """Like `find_repo`, but outside a repository is an error."""
    found = find_repo(root)
    if found is None:
        raise GitError(f"{root} is not inside a git work tree")
    return found


@cache
def _open(root: str) -> GitRepo | None:
    try:
        import git  # GitPython: imported on first use, so commands that never touch git do not pay for it
    except ImportError:  # GitPython refuses to load when no git executable is installed
        return None
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, NotADirectoryError, OSError):
        return None
    if repo.bare or repo.working_tree_dir is None:
        return None
    try:
        return GitRepo(Path(root), repo, git.Git(root))
    except ValueError:  # root resolves outside the work tree GitPython found (a symlinked folder)
        return None
