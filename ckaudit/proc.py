"""Subprocesses other than git (git goes through `vcs.repo`): a timeout, no GIT_* variables leaking, errors
that show what failed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from ckaudit.errors import CkauditError

# Variables git sets for hooks (GIT_INDEX_FILE, GIT_DIR, GIT_WORK_TREE, ...) would redirect our own git calls.
_LEAKY_PREFIXES = ("GIT_",)
_KEEP = {
    "GIT_CONFIG_NOSYSTEM",
    "GIT_TERMINAL_PROMPT",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
}


class CommandError(CkauditError):
    def __init__(self, command: Sequence[str], status: int | None, stderr: str) -> None:
        shown = " ".join(command)
        reason = "timed out" if status is None else f"exited with status {status}"
        super().__init__(f"`{shown}` {reason}: {stderr.strip()[-2000:]}")
        self.command = list(command)
        self.status = status
        self.stderr = stderr


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process without the GIT_ variables a hook runs under (they would point a
    child git at the user's index), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES) or k in _KEEP}
    env.update(extra or {})
    return env


def run(
    command: Sequence[str],
    *,
    cwd: Path | str | None = None,
    input: bytes | None = None,
    timeout: float | None = 60.0,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run a command, capture bytes; raise CommandError on failure (when `check`) or timeout."""
    try:
        result = subprocess.run(
            list(command), cwd=cwd, input=input, capture_output=True, timeout=timeout, env=clean_env(env)
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(command, None, (exc.stderr or b"").decode(errors="replace")) from None
    except OSError as exc:
        raise CommandError(command, 127, str(exc)) from None
    if check and result.returncode != 0:
        raise CommandError(command, result.returncode, result.stderr.decode(errors="replace"))
    return result
