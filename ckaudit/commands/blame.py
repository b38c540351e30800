"""`ckaudit blame CHECKPOINT`: the last commit whose code loads a checkpoint, and the first that does not.

Exit status: 0 when the newest buildable commit loads the checkpoint (or it is registered `expect: fails`),
1 when it does not, 2 for a usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ckaudit.commands.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    add_config_option,
    emit,
    find_root,
    resolve_config,
)
from ckaudit.errors import CkauditError
from ckaudit.findings import Finding
from ckaudit.registry import CheckpointEntry, Config

if TYPE_CHECKING:
    from ckaudit.compare import Blame
    from ckaudit.scan import Evaluator


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "blame",
        help="name the commit whose code stopped loading a checkpoint",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "checkpoint",
        nargs="*",
        help="a registered checkpoint path (--format html: any number; none = every registered checkpoint)",
    )
    parser.add_argument("--rev", default="HEAD", help="walk the first-parent history of this revision")
    parser.add_argument(
        "--last", type=positive, metavar="N", help="walk only the newest N commits that touched model code"
    )
    parser.add_argument("--format", choices=("text", "json", "html"), default="text", help="output format")
    parser.add_argument("--output", type=Path, help="write to this file instead of stdout")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    parser.add_argument("--verbose", "-v", action="store_true", help="text: list every commit walked")
    add_config_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ckaudit.cache import JsonStore
    from ckaudit.scan import Evaluator
    from ckaudit.vcs import resolve_commit

    root = find_root(args.config)
    config = resolve_config(root, args.config)
    entries = _entries(config, root, args.checkpoint, args.format)
    if resolve_commit(root, args.rev) is None:
        raise CkauditError(
            f"{args.rev!r} names no commit in {root}: blame walks the history of committed code"
        )
    with Evaluator(config, JsonStore.for_repo(root, enabled=not args.no_cache)) as evaluator:
        # a walk nearly always builds (unbuildable commits are never cached): torch's import overlaps the
        # checkpoint's reading, the log and the first commits' trees; an unused worker is killed unasked
        evaluator.start_worker()
        blames = [_blame(root, config, entry, evaluator, args) for entry in entries]
    if args.format == "html":
        from ckaudit.report import render_blame_html

        output = render_blame_html([blame_dict(b, root) for b in blames], str(root))
    elif args.format == "json":
        output = render_json(blames[0], root)
    else:
        output = render_text(blames[0], root, args.verbose)
    emit(output, args.output)
    failing = False
    for blame, entry in zip(blames, entries, strict=True):
        latest = next((s for s in reversed(blame.history) if s.status != "unbuildable"), None)
        failing |= latest is not None and latest.status == "fails" and not entry.expect_fails
    return EXIT_FINDINGS if failing else EXIT_OK


def history_of(config: Config, root: Path, last: int, *, use_cache: bool = True) -> list[dict[str, Any]]:
    """Blame's JSON for every registered checkpoint with a model and a readable file (or lock record),
    over the newest `last` commits: the history `scan --history N` draws."""
    from ckaudit.cache import JsonStore
    from ckaudit.compare import walk
    from ckaudit.scan import Evaluator, load_info
    from ckaudit.vcs import resolve_commit

    if resolve_commit(root, "HEAD") is None:
        raise CkauditError(f"--history needs committed history: {root} has no commit")
    entries = [e for e in config.checkpoints if e.model is not None and e.model in config.models]
    out = []
    with Evaluator(config, JsonStore.for_repo(root, enabled=use_cache)) as evaluator:
        for entry in entries:
            info = load_info(config, entry)
            if not isinstance(info, Finding):
                blame = walk(root, config.models[entry.model or ""], entry, info, evaluator, last=last)
                out.append(blame_dict(blame, root))
    return out


def _entries(config: Config, root: Path, paths: list[str], fmt: str) -> list[CheckpointEntry]:
    """The checkpoints to walk: text and json take exactly one; html any number, none meaning every
    registered checkpoint with a model."""
    if fmt != "html" and len(paths) != 1:
        raise CkauditError(f"blame --format {fmt} takes exactly one checkpoint (--format html takes several)")
    if paths:
        return [registered(config, root, path) for path in paths]
    entries = [e for e in config.checkpoints if e.model is not None and e.model in config.models]
    if not entries:
        raise CkauditError("no registered checkpoint has a model: nothing for blame to walk")
    return entries


def _blame(
    root: Path, config: Config, entry: CheckpointEntry, evaluator: Evaluator, args: argparse.Namespace
) -> Blame:
    """One checkpoint's walk; a checkpoint that cannot be read is a usage error naming it."""
    from ckaudit.compare import walk
    from ckaudit.progress import progress, progress_enabled
    from ckaudit.scan import load_info

    info = load_info(config, entry)
    if isinstance(info, Finding):
        raise CkauditError(info.message)
    shown = progress_enabled(args.format)
    return walk(
        root,
        config.models[entry.model or ""],
        entry,
        info,
        evaluator,
        rev=args.rev,
        last=args.last,
        each=lambda commits: progress(commits, desc="blame", unit="commit", enabled=shown),
    )


def positive(text: str) -> int:
    """argparse type for `--last N`: a usage error (exit 2) rather than a traceback for 0, negatives or
    words."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of commits")
    return int(text)


def registered(config: Config, root: Path, path: str) -> CheckpointEntry:
    """The registry entry for `path` (as given, or relative to the current directory), with a model."""
    candidates = [path, Path(path).as_posix()]
    absolute = Path(path).resolve()
    if absolute.is_relative_to(root.resolve()):
        candidates.append(absolute.relative_to(root.resolve()).as_posix())
    entry = next((e for e in (config.checkpoint(c) for c in candidates) if e is not None), None)
    if entry is None:
        raise CkauditError(f"{path} is not a registered checkpoint (register it with `ckaudit register`)")
    if entry.model is None or entry.model not in config.models:
        raise CkauditError(f"{entry.path} has no model in the registry: blame needs one")
    return entry


def blame_dict(blame: Blame, root: Path) -> dict[str, Any]:
    """SPEC's JSON: history oldest first; breaks/fixes as commit ids; `changes` adds each break's evidence
    (the model signature's diff, and the changed lines of the model's code with the command for all)."""
    from ckaudit.compare import signature_diff, source_diff
    from ckaudit.report import finding_dict

    changes = {}
    for sha in blame.breaks:
        last, now = blame.step(blame.last_loads[sha]), blame.step(sha)
        assert last is not None and now is not None
        code = source_diff(root, last.commit.sha, now.commit.sha, {*last.sources, *now.sources})
        changes[sha] = {
            "last_loads": blame.last_loads[sha],
            "signature": signature_diff(last.signature, now.signature),
            "source_diff": {"command": code.command, "lines": list(code.lines)},
        }
    return {
        "version": 1,
        "checkpoint": blame.checkpoint,
        "model": blame.model,
        "history": [
            {
                "commit": s.commit.sha,
                "date": s.commit.date,
                "author": s.commit.author,
                "subject": s.commit.subject,
                "status": s.status,
                "findings": [finding_dict(f) for f in s.findings],
            }
            for s in blame.history
        ],
        "breaks": list(blame.breaks),
        "fixes": list(blame.fixes),
        "introduced_by": dict(blame.introduced_by),
        "changes": changes,
    }


def render_json(blame: Blame, root: Path) -> str:
    """The blame as JSON: every walked commit, the breaks and fixes, the changed lines behind each break."""
    return json.dumps(blame_dict(blame, root), indent=2) + "\n"


def render_text(blame: Blame, root: Path, verbose: bool = False) -> str:
    """The blame as text; `verbose` lists every walked commit, not only the transitions."""
    from ckaudit.report import render_blame_text

    return render_blame_text(blame, blame_dict(blame, root)["changes"], verbose)
