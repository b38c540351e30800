"""`ckaudit diagnose FILE`: one checkpoint, one verdict, with the evidence and the fix. Needs no config.

The root follows the one rule (`commands.common.find_root`), searching from FILE's folder: the folder of
--config when given, else the nearest folder above FILE holding a ckaudit.yaml (up to the git work tree's
top), else the work tree's top, else FILE's folder. When FILE is registered there, its registry entry
(model, key, sha256) applies.

With a model (`--model`, or the registry entry's), the checkpoint is also dry-run into it: the full
verdict, code included. Without a config, the root is also the import root for `--model module:callable`.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ckaudit.commands.common import add_report_options, find_root, finish, resolve_config
from ckaudit.commands.scan import add_verify_options
from ckaudit.errors import CkauditError
from ckaudit.files import FileOutcome, check_file, open_scope, report_of
from ckaudit.registry.config import CheckpointEntry, Config


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "diagnose",
        help="one checkpoint, one verdict: ok, code, repository or environment",
        description="Diagnose one checkpoint file: why it would not load, and the fix.",
    )
    parser.add_argument("file", type=Path, help="the checkpoint file (or sharded index / DCP folder)")
    parser.add_argument("--key", help="where the state dict sits in the file (dotted); default: detected")
    parser.add_argument(
        "--model", help="model NAME from the registry or package.module:callable (imported from the root)"
    )
    parser.add_argument(
        "--kwargs", help="keyword arguments for the model factory, as JSON: '{\"num_classes\": 10}'"
    )
    add_verify_options(parser)
    add_report_options(parser)
    parser.set_defaults(handler=run)


def relative_to_root(file: Path, root: Path) -> str:
    """FILE relative to the root, without resolving FILE itself (it may be a dangling symlink)."""
    absolute = file.parent.resolve() / file.name
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        raise CkauditError(f"{file}: outside the root {root} (given by --config)") from None


def entry_for(config: Config, rel_path: str, key: str | None) -> CheckpointEntry | None:
    entry = config.checkpoint(rel_path)
    if key is not None and entry is not None:
        return dataclasses.replace(entry, key=key)
    return entry


def with_code_side(args: argparse.Namespace, config: Config, outcome: FileOutcome) -> FileOutcome:
    """Add the model-compatibility findings when a model is known (--model, or the registry entry's)."""
    if args.model is None and (outcome.entry is None or outcome.entry.model is None):
        return outcome
    from ckaudit.model.check import spec_from_cli
    from ckaudit.model.registered import (
        add_code_findings,
    )  # imports the worker client only when a model is asked for

    specs = {}
    if args.model is not None:
        spec = spec_from_cli(args.model, args.kwargs, config)
        specs[spec.name] = spec
        base = outcome.entry or CheckpointEntry(path=outcome.result.path, key=args.key)
        entry = dataclasses.replace(base, model=spec.name)
        outcome = dataclasses.replace(
            outcome, entry=entry, result=dataclasses.replace(outcome.result, model=spec.name)
        )
    (checked,) = add_code_findings(config, [outcome], specs=specs)
    return checked


def run(args: argparse.Namespace) -> int:
    file: Path = args.file
    root = find_root(args.config, near=file.parent)
    config = resolve_config(root, args.config)
    rel_path = relative_to_root(file, root)
    entry = entry_for(config, rel_path, args.key)
    scope = open_scope(config, verify=args.verify, use_cache=not args.no_cache)
    result, info = check_file(scope, entry, rel_path)
    outcome = with_code_side(args, config, FileOutcome(entry, result, info))
    return finish(report_of(scope, "diagnose", [outcome]), args)
