"""`ckaudit check --base REF [--head REF]`: the hook's comparison between two versions, for pull requests.

Base is a commit; head is a commit or, by default, the working tree (read in place). The checkpoints are
today's registry's (the working tree's, or --config); each side is judged with its own registry entry for
the checkpoint where it has one, else today's. Checkpoint files are read from the working tree, else from
their signature in ckaudit.lock. A checkpoint that loads at base and fails at head is an error; one failing
on both sides is a warning (an error with --strict); one the change fixes is a note.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ckaudit.commands.common import add_report_options, find_root, finish, resolve_config
from ckaudit.vcs import Tree, commit_tree, work_tree


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "check",
        help="compare two versions of the code: does a change break a checkpoint?",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--base", required=True, metavar="REF", help="the version before (e.g. origin/main)")
    parser.add_argument("--head", metavar="REF", help="the version after (default: the working tree)")
    parser.add_argument("--strict", action="store_true", help="checkpoints already failing at base fail too")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    add_report_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ckaudit.cache import JsonStore
    from ckaudit.scan import Evaluator, Labels, compare, relevant_models

    root = find_root(args.config)
    config = resolve_config(root, args.config)
    base = commit_tree(root, args.base, label=f"base {args.base}")
    head = head_tree(root, args.head)
    labels = Labels(before=f"base ({args.base} {(base.commit or '')[:8]})", after=_after_label(args, head))
    with Evaluator(config, JsonStore.for_repo(root, enabled=not args.no_cache)) as evaluator:
        models = relevant_models(config, base, head, evaluator)
        report = compare(config, base, head, models, evaluator, labels, "check", strict=args.strict)
    return finish(report, args)


def head_tree(root: Path, ref: str | None) -> Tree:
    """The side `check` judges: the commit `--head` names, else the working tree as it is."""
    return work_tree(root) if ref is None else commit_tree(root, ref, label=f"head {ref}")


def _after_label(args: argparse.Namespace, head: Tree) -> str:
    if args.head is None:
        return "the working tree"
    return f"head ({args.head} {head.commit[:8] if head.commit else ''})"
