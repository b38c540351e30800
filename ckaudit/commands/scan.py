"""`ckaudit scan [PATH]`: file checks on registered and discovered checkpoints, and dangling references.

PATH is the root (default: the one root rule, `commands.common.find_root`): the registry is
PATH/ckaudit.yaml (or --config), and every path in the output is relative to it. PATH may be a subfolder
of a git work tree (a monorepo's project folder): git answers for that subtree — its tracked files are the
ones scanned.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from ckaudit.commands.blame import history_of, positive
from ckaudit.commands.common import add_report_options, find_root, finish, resolve_config
from ckaudit.errors import CkauditError
from ckaudit.files import parse_shard, scan_files
from ckaudit.progress import progress_enabled
from ckaudit.report import OutputFormat


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "scan",
        help="check every registered checkpoint and every checkpoint-like file in the repository",
        description="File checks (missing, LFS pointer, truncated, corrupt, hash, tracking, pickle safety, "
        "device, format version) for every registered checkpoint and every file the scan globs select, "
        "and code that names a checkpoint that does not exist.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="the repository root; ckaudit.yaml is read from here (default: the folder of --config, else "
        "the nearest folder holding a ckaudit.yaml, else the git work tree's top)",
    )
    add_verify_options(parser)
    parser.add_argument(
        "--files-only", action="store_true", help="file checks only: do not build models (needs no torch)"
    )
    parser.add_argument("--shard", metavar="K/N", help="check only shard K of N (CI matrix jobs)")
    parser.add_argument(
        "--history",
        type=positive,
        metavar="N",
        help="the HTML page (--format html, --html-output) also draws checkpoints × commits over the newest "
        "N commits that touched model code (blame for every registered checkpoint)",
    )
    add_report_options(parser)
    parser.set_defaults(handler=run)


def add_verify_options(parser: argparse.ArgumentParser) -> None:
    """--verify and --no-cache, as scan and diagnose take them."""
    parser.add_argument(
        "--verify",
        action="store_true",
        help="read tensor data: every zip member's CRC32, safetensors and shard sizes",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="ignore and do not update the verification and result caches"
    )


def run(args: argparse.Namespace) -> int:
    if args.path is not None and not args.path.is_dir():
        raise CkauditError(f"{args.path}: not a directory (scan takes the repository root)")
    root = find_root(args.config, args.path)
    config = resolve_config(root, args.config)
    shard = parse_shard(args.shard) if args.shard else None
    show = progress_enabled(args.format)
    model_checks = None
    if not args.files_only:
        from ckaudit.scan import add_code_findings  # the model side: only where it is wanted

        model_checks = partial(add_code_findings, config, show_progress=show, use_cache=not args.no_cache)
    report = scan_files(
        config,
        verify=args.verify,
        use_cache=not args.no_cache,
        shard=shard,
        model_checks=model_checks,
        show_progress=show,
    )
    if args.history and (args.format is OutputFormat.HTML or args.html_output):
        args.html_history = history_of(config, root, args.history, use_cache=not args.no_cache)
    return finish(report, args)
