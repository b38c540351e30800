"""`ckaudit register` (not built yet)."""

from __future__ import annotations

import argparse

from ckaudit.errors import CkauditError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("register", help="(not built yet)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    raise CkauditError("`ckaudit register` is not built yet")
