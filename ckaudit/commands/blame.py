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
from ckaudit.registry import CheckpointEntry, Config

if TYPE_CHECKING:
    from ckaudit.compare import Blame, Step


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "blame",
        help="name the commit whose code stopped loading a checkpoint",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("checkpoint", help="a registered checkpoint path")
    parser.add_argument("--rev", default="HEAD", help="walk the first-parent history of this revision")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("--output", type=Path, help="write to this file instead of stdout")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    add_config_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ckaudit.cache import JsonStore
    from ckaudit.compare import walk
    from ckaudit.findings import Finding
    from ckaudit.progress import progress, progress_enabled
    from ckaudit.scan import Evaluator, load_info
    from ckaudit.vcs import resolve_commit

    root = find_root(args.config)
    config = resolve_config(root, args.config)
    entry = registered(config, root, args.checkpoint)
    spec = config.models[entry.model or ""]
    info = load_info(config, entry)
    if isinstance(info, Finding):
        raise CkauditError(info.message)
    if resolve_commit(root, args.rev) is None:
        raise CkauditError(
            f"{args.rev!r} names no commit in {root}: blame walks the history of committed code"
        )
    shown = progress_enabled(args.format)
    with Evaluator(config, JsonStore.for_repo(root, enabled=not args.no_cache)) as evaluator:
        blame = walk(
            root,
            spec,
            entry,
            info,
            evaluator,
            rev=args.rev,
            each=lambda commits: progress(commits, desc="blame", unit="commit", enabled=shown),
        )
    output = render_json(blame) if args.format == "json" else render_text(blame)
    emit(output, args.output)
    latest = next((s for s in reversed(blame.history) if s.status != "unbuildable"), None)
    failing = latest is not None and latest.status == "fails" and not entry.expect_fails
    return EXIT_FINDINGS if failing else EXIT_OK


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


def blame_dict(blame: Blame) -> dict[str, Any]:
    """SPEC's JSON: history oldest first; breaks/fixes as commit ids; `changes` adds each break's evidence."""
    from ckaudit.compare import signature_diff
    from ckaudit.report import finding_dict

    changes = {}
    for sha in blame.breaks:
        last, now = blame.step(blame.last_loads[sha]), blame.step(sha)
        changes[sha] = {
            "last_loads": blame.last_loads[sha],
            "signature": signature_diff(last.signature if last else None, now.signature if now else None),
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


def render_json(blame: Blame) -> str:
    return json.dumps(blame_dict(blame), indent=2) + "\n"


def _line(step: Step) -> str:
    c = step.commit
    return f"{c.sha[:10]}  {c.date[:10]}  {c.author}  {c.subject}"


def render_text(blame: Blame) -> str:
    data = blame_dict(blame)
    lines = [
        f"{blame.checkpoint} (model {blame.model}): {len(blame.history)} commits walked, oldest first",
        "",
    ]
    for sha in blame.breaks:
        last, now = blame.step(blame.last_loads[sha]), blame.step(sha)
        assert last is not None and now is not None
        lines += [f"  last loads   {_line(last)}", f"  first fails  {_line(now)}"]
        if sha in blame.introduced_by:
            lines.append(f"  introduced by {blame.introduced_by[sha][:10]} on the merged branch")
        lines += [f"    {text}" for text in _diff_lines(data["changes"][sha]["signature"])]
        lines += [f"    {f.rule.value}: {f.message}" for f in now.findings[:5]]
        lines.append("")
    for sha in blame.fixes:
        step = blame.step(sha)
        if step is not None:
            lines += [f"  loads again  {_line(step)}", ""]
    if not blame.breaks:
        statuses = {s.status for s in blame.history} - {"unbuildable"}
        lines += [
            f"  no break found: every buildable commit {'/'.join(sorted(statuses)) or 'is unbuildable'}",
            "",
        ]
    lines.append("history:")
    lines += [f"  {s.status:<11} {_line(s)}" for s in blame.history]
    return "\n".join(lines) + "\n"


def _diff_lines(diff: dict[str, list[Any]]) -> list[str]:
    out = [
        f"changed {c['key']}: {c['before'][0]} {c['before'][1]} -> {c['after'][0]} {c['after'][1]}"
        for c in diff["changed"]
    ]
    out += [f"added {key}" for key in diff["added"][:10]]
    out += [f"removed {key}" for key in diff["removed"][:10]]
    return out
