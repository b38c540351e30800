"""Argument parsing and dispatch only. Every command is a function args -> exit code."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ckaudit import __version__
from ckaudit.commands import COMMANDS
from ckaudit.errors import EXIT_USAGE, CkauditError


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
    )
    parser.add_argument("--version", action="version", version=f"ckaudit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name in [chosen] if chosen in COMMANDS else COMMANDS:
        importlib.import_module(f"ckaudit.commands.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ckaudit: interrupted", file=sys.stderr)
        return 130
