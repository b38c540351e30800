"""`ckaudit fix CKPT`: write a converted copy beside the checkpoint, and prove it with a dry run of the copy.

The copy holds the state dict alone (taken out of its container), with keys as the model wants them:
prefix stripped or added, rename map applied, keys dropped — as given by the options, or else as planned
from the registry entry's `load:` steps and the diagnosis' verified fixes. The original is never touched
and no existing file is replaced. The conversion runs in the model worker under the project's interpreter
with `torch.load(weights_only=True)`; a file whose pickle could run code (`unsafe-pickle`) is refused.
`--repoint` then points the checkpoint's registry entry at the copy.

With `--registry`, no copy: the same steps go into the checkpoint's registry entry (`key:`, `load:`, and
`ignore:` for entries the model no longer defines), written only once a dry run of the entry with them loads.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ckaudit.commands.common import add_report_options, finish
from ckaudit.commands.diagnose import add_model_options, located, relative_to_root, with_model_checks
from ckaudit.commands.fixregistry import fix_entry
from ckaudit.compat import FixPlan, explicit_plan, planned
from ckaudit.errors import CkauditError
from ckaudit.files import FileOutcome, FileScope, check_file, open_scope, report_of
from ckaudit.findings import Cause, Rule, Severity
from ckaudit.reader import CheckpointInfo
from ckaudit.registry import CheckpointEntry, Config


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "fix",
        help="write a converted copy of a checkpoint (keys fixed, state dict extracted) and dry-run it",
        description=(__doc__ or "").split("\n\n", 1)[1].strip(),
    )
    parser.add_argument("file", type=Path, help="the checkpoint file")
    parser.add_argument("--key", help="take the state dict from this entry of the file (dotted)")
    parser.add_argument("--strip-prefix", action="append", default=[], metavar="P", help="strip P from keys")
    parser.add_argument("--add-prefix", metavar="P", help="prepend P to every key")
    parser.add_argument(
        "--rename", action="append", default=[], metavar="OLD=NEW", help="rename a key or module path"
    )
    parser.add_argument("--drop", action="append", default=[], metavar="GLOB", help="drop matching keys")
    add_model_options(parser)
    parser.add_argument(
        "--to", choices=("torch", "safetensors"), default="torch", help="format of the copy (default: torch)"
    )
    parser.add_argument("--out", type=Path, help="the copy's path (default: beside the file, NAME.fixed.EXT)")
    written = parser.add_mutually_exclusive_group()
    written.add_argument(
        "--registry",
        action="store_true",
        help="write no copy: put the fix (key:, load: steps, ignore: of unused entries) into the "
        "checkpoint's entry in ckaudit.yaml, once a dry run of the entry with it loads",
    )
    written.add_argument(
        "--repoint",
        action="store_true",
        help="write the copy and point the checkpoint's registry entry at it",
    )
    add_report_options(parser)
    parser.set_defaults(handler=run, verify=False, no_cache=True)


def run(args: argparse.Namespace) -> int:
    file: Path = args.file
    config, rel_path, entry = located(args)
    root = config.root
    scope = open_scope(config, use_cache=False)
    outcome = _convertible(scope, entry, rel_path)
    if args.registry:
        return fix_entry(args, config, scope, outcome)
    if args.repoint and entry is None:
        raise CkauditError(f"--repoint: {rel_path} is not registered (use `ckaudit register`)")
    plan = _plan(args, config, outcome)
    if not plan.changes_keys and args.to == "torch":
        raise CkauditError(f"{rel_path}: nothing to convert (it loads as it is); options give the steps")
    target = _target(file, args.out, args.to)
    rel_target = relative_to_root(target, root)
    _convert(config, root / rel_path, target, plan, args.to)
    print(f"wrote {rel_target} from {rel_path}: {plan.describe()}", file=sys.stderr)
    copy = _copy_entry(entry, rel_target)
    result, info = check_file(scope, copy, rel_target)
    proven = with_model_checks(
        argparse.Namespace(**{**vars(args), "key": None}), config, FileOutcome(copy, result, info)
    )
    if args.repoint and entry is not None:
        _point_registry_at(config, entry, copy, info)
    return finish(report_of(scope, "fix", [proven]), args)


def _convertible(scope: FileScope, entry: CheckpointEntry | None, rel_path: str) -> FileOutcome:
    """The original's file checks; refuse what cannot be converted safely."""
    result, info = check_file(scope, entry, rel_path)
    unsafe = [f for f in result.findings if f.rule is Rule.UNSAFE_PICKLE]
    if unsafe:
        raise CkauditError(f"{rel_path}: refused, {unsafe[0].message} (it is never loaded to convert it)")
    broken = [f for f in result.findings if f.cause is Cause.REPOSITORY and f.severity is Severity.ERROR]
    if info is None or broken:
        why = broken[0].message if broken else "it cannot be read"
        raise CkauditError(f"{rel_path}: cannot be converted: {why}")
    return FileOutcome(entry, result, info)


def _plan(args: argparse.Namespace, config: Config, outcome: FileOutcome) -> FixPlan:
    entry = outcome.entry
    given = explicit_plan(args.key, args.strip_prefix, args.add_prefix, args.rename, args.drop)
    if given is not None:  # without --key, the registry's key: still says where the state dict is
        registered = entry.key if entry is not None and args.key is None else None
        return dataclasses.replace(given, key=registered or given.key)
    if entry is not None and entry.load is not None and entry.load.loader:
        raise CkauditError(
            f"{entry.path} is loaded by the project's function {entry.load.loader}, which fix does not run: "
            "give the steps as options (--strip-prefix, --rename, …)"
        )
    if args.model is None and args.build is None and (entry is None or entry.model is None):
        return planned(entry, ())
    diagnosed = with_model_checks(args, config, outcome)
    return planned(entry, diagnosed.result.findings)


def _target(file: Path, out: Path | None, fmt: str) -> Path:
    suffix = ".safetensors" if fmt == "safetensors" else file.suffix or ".pt"
    target = out if out is not None else file.with_name(f"{file.stem}.fixed{suffix}")
    if target.exists() or target.is_symlink():
        hint = "" if out is not None else " (--out names another path)"
        raise CkauditError(f"{target} already exists: fix never replaces a file{hint}")
    return target


def _convert(config: Config, src: Path, dst: Path, plan: FixPlan, fmt: str) -> None:
    from ckaudit.worker import ModelWorker, resolve_python

    steps = [s.as_dict() for s in plan.steps]
    with ModelWorker(resolve_python(config), timeout=config.timeout, origin=config.root) as worker:
        error = worker.convert(src.resolve(), dst.resolve(), plan.key, steps, fmt)
    if error is not None:
        raise CkauditError(f"{src.name} could not be converted: {error}")


def _copy_entry(entry: CheckpointEntry | None, rel_target: str) -> CheckpointEntry:
    """The copy's entry: the state dict at the top level, its keys already as the model wants them."""
    base = entry or CheckpointEntry(path=rel_target)
    return dataclasses.replace(
        base, path=rel_target, written=None, key=None, sha256=None, load=None, line=None
    )


def _point_registry_at(
    config: Config, entry: CheckpointEntry, copy: CheckpointEntry, info: CheckpointInfo | None
) -> None:
    """The original's entry now names the copy (its sha256 refreshed if it had one); ckaudit.lock follows."""
    from ckaudit.commands.register import file_sha256, write_entry

    if info is None:
        raise CkauditError(f"--repoint: {copy.path} cannot be read back; the registry is unchanged")
    sha256 = file_sha256(config.root / copy.path) if entry.sha256 else None
    updated = dataclasses.replace(copy, sha256=sha256)
    target, _ = write_entry(config, config.root, updated, info, replaces=entry.as_written)
    print(f"{target}: {entry.path} -> {copy.path}", file=sys.stderr)
