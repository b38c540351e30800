"""The one way ckaudit talks to git: GitPython's `Repo` for discovery, its command runner for plumbing and
a persistent `git cat-file` per repository for blobs. Read-only: nothing here writes the working tree, the
index, refs, the stash or git config.

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
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING

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
        self._cat_files: dict[str, CatFile] = {}
        self._cat_lock = threading.Lock()  # a cat-file is one conversation: blame reads trees in a thread too
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
        """Contents of blobs, from the repository's persistent `git cat-file --batch`."""
        answers = self._ask("--batch", oids, with_data=True)
        for oid, (kind, _, _) in answers.items():
            if kind != "blob":
                raise GitError(f"git cat-file: {oid} is {kind}, not a blob")
        return {oid: data for oid, (_, _, data) in answers.items()}

    def blob_sizes(self, oids: Iterable[str]) -> dict[str, int]:
        """Sizes of blobs, from the persistent `git cat-file --batch-check`; missing ones are left out."""
        answers = self._ask("--batch-check", oids, with_data=False, missing_ok=True)
        return {oid: size for oid, (kind, size, _) in answers.items() if kind != "missing"}

    def _ask(
        self, mode: str, oids: Iterable[str], *, with_data: bool, missing_ok: bool = False
    ) -> dict[str, tuple[str, int, bytes]]:
        """One exchange with the persistent `git cat-file MODE`, never interleaved with another thread's."""
        with self._cat_lock:
            return self._batch(mode).ask(sorted(set(oids)), with_data=with_data, missing_ok=missing_ok)

    def _batch(self, mode: str) -> CatFile:
        if mode not in self._cat_files or not self._cat_files[mode].alive():
            self._cat_files[mode] = CatFile(self.git, mode)
        return self._cat_files[mode]


class CatFile:
    """One persistent `git cat-file --batch[-check]`, started through GitPython's runner and fed in pipelined
    chunks: a chunk of requests is written at once and its answers read back, so 2,000 blobs cost a handful
    of round trips, not 2,000 (GitPython's own `get_object_data` asks one object per round trip; measured in
    benchmarks/bench_git.py and docs/decisions.md). A chunk's requests fit in a pipe buffer, so writing them
    can never wait on git while git waits on us."""

    CHUNK = 512  # requests of 41 bytes: ~21 KB, well under the 64 KB pipe buffer

    def __init__(self, runner: git.Git, mode: str) -> None:
        self._process = runner.execute(
            [str(runner.GIT_PYTHON_GIT_EXECUTABLE), "cat-file", mode],
            istream=subprocess.PIPE,
            as_process=True,
        )  # GitPython's AutoInterrupt: the process is ended when this object is collected

    def alive(self) -> bool:
        """Whether the long-lived `git cat-file` process still runs (the repository starts a new one when
        not)."""
        proc = self._process.proc
        return proc is not None and proc.poll() is None

    def ask(
        self, oids: list[str], *, with_data: bool, missing_ok: bool = False
    ) -> dict[str, tuple[str, int, bytes]]:
        """oid -> (type, size, data) for every oid ("missing" with size -1 when `missing_ok`)."""
        proc = self._process.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        answers: dict[str, tuple[str, int, bytes]] = {}
        try:
            for start in range(0, len(oids), self.CHUNK):
                chunk = oids[start : start + self.CHUNK]
                proc.stdin.write("".join(f"{oid}\n" for oid in chunk).encode())
                proc.stdin.flush()
                for oid in chunk:
                    answers[oid] = self._answer(proc.stdout, oid, with_data, missing_ok)
        except (OSError, ValueError) as exc:
            proc.kill()  # out of step with git now: the next call starts a fresh process
            raise GitError(f"git cat-file: {exc}") from None
        return answers

    @staticmethod
    def _answer(stdout: IO[bytes], oid: str, with_data: bool, missing_ok: bool) -> tuple[str, int, bytes]:
        header = stdout.readline().split()
        if len(header) == 2 and header[1] == b"missing" and missing_ok:
            return "missing", -1, b""
        if len(header) != 3:
            raise ValueError(f"{oid}: {b' '.join(header).decode(errors='replace') or 'no answer'}")
        size = int(header[2])
        data = b""
        if with_data:
            data = stdout.read(size)
            stdout.read(1)  # the newline after the contents
        return header[1].decode(), size, data


def nul_separated(out: bytes) -> list[str]:
    """The records of a `-z` git output, paths decoded as git wrote them (undecodable bytes kept)."""
    return [item for item in out.decode("utf-8", "surrogateescape").split("\0") if item]


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


@lru_cache(maxsize=16)  # a run opens one or two; a test session many, whose cat-files end on eviction
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
