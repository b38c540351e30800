"""Expected failures: anything derived from CkauditError ends the command with its message and exit 2 (exit 3
for `WorkerDied`: no verdict could be reached). Anything else escaping a command is a bug: exit 3
(`cli.main`)."""

from __future__ import annotations

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2  # nothing at --fail-on; findings; usage or configuration error
EXIT_INTERNAL = 3  # an unexpected exception: a bug in ckaudit, never the same status as findings


class CkauditError(Exception):
    """A usage, configuration or environment problem the user can fix; never a traceback."""

    exit_code = EXIT_USAGE


class ConfigError(CkauditError):
    """ckaudit.yaml is malformed; the message names the file and line."""

    def __init__(self, path: str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class GitError(CkauditError):
    """A git command failed or the repository is not in the expected state."""


class WorkerError(CkauditError):
    """The model worker could not be started or spoke nonsense."""


class WorkerDied(WorkerError):
    """The model worker died without answering (killed by a signal, out of memory, exited): a failure of the
    machine or of a library, not a verdict about the code. Exit 3, and nothing of that run is cached."""

    exit_code = EXIT_INTERNAL
