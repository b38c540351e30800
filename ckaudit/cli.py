"""Argument parsing and dispatch only. Every command is a function args -> exit code."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ckaudit import __version__
from ckaudit.commands import COMMANDS
from ckaudit.commands.common import EXIT_USAGE
from ckaudit.errors import CkauditError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ckaudit",
        description="Will every registered checkpoint still load? If not: the code, the repository or the "
        "environment?",
    )
    parser.add_argument("--version", action="version", version=f"ckaudit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"ckaudit.commands.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
