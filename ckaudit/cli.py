"""Argument parsing and dispatch only. Every command is a function args -> exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from ckaudit import __version__
from ckaudit.commands import COMMANDS
from ckaudit.errors import EXIT_INTERNAL, CkauditError

EPILOG = (
    "exit status: 0 nothing at or above --fail-on, 1 findings, 2 usage or configuration error, "
    "3 internal error (a bug in ckaudit, or the model worker died without an answer)"
)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The full parser, or, when `argv` names a command, a parser holding only that command.

    Importing a command module pulls in what it needs (the reader, git, the worker client), so a run of
    one command does not pay for the others: the hook's fast path and `inspect` start in a fraction of the
    time. `ckaudit --help` and unknown commands still see every command.
    """
    parser = argparse.ArgumentParser(
        prog="ckaudit",
        description="Will every registered checkpoint still load? If not: the code, the repository or the "
        "environment?",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"ckaudit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name in [chosen] if chosen in COMMANDS else COMMANDS:
        importlib.import_module(f"ckaudit.commands.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`ckaudit ARGS`: the exit status (0 ok, 1 findings at --fail-on, 2 usage or configuration errors,
    3 a dead worker or a bug)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        return int(args.handler(args))
    except CkauditError as exc:
        print(f"ckaudit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ckaudit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not the user's input: one line, its own status, a way to report it
        if os.environ.get("CKAUDIT_DEBUG"):
            import traceback  # here, not at the top: ~4 ms of every run's start-up

            traceback.print_exc()
        print(
            f"ckaudit: internal error: {type(exc).__name__}: {exc} "
            f"(a bug in ckaudit {__version__}: please report it; "
            "rerun with CKAUDIT_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
