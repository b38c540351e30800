"""`ckaudit diagnose FILE`: one checkpoint, one verdict, with the evidence and the fix. Needs no config.

The root follows the one rule (`commands.common.find_root`), searching from FILE's folder: the folder of
--config when given, else the nearest folder above FILE holding a ckaudit.yaml (up to the git work tree's
top), else the work tree's top, else FILE's folder. When FILE is registered there, its registry entry
(model, key, sha256) applies.

With a model (`--model`, `--build`, or the registry entry's), the checkpoint is also dry-run into it: the
full verdict, code included. Without a config, the root is also the import root for `--model
module:callable` and `--build` code. An unregistered training checkpoint without `--key` is loaded from the
container the reader ranks first (`model_state_dict`, `state_dict`, …), and a note says so.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ckaudit.commands.common import add_report_options, find_root, finish, resolve_config
from ckaudit.commands.scan import add_verify_options
from ckaudit.errors import CkauditError
from ckaudit.files import FileOutcome, check_file, open_scope, report_of
from ckaudit.findings import Finding, Rule, Severity
from ckaudit.registry import CheckpointEntry, Config


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "diagnose",
        help="one checkpoint, one verdict: ok, code, repository or environment",
        description="Diagnose one checkpoint file: why it would not load, and the fix.",
    )
    parser.add_argument("file", type=Path, help="the checkpoint file (or sharded index / DCP folder)")
    parser.add_argument("--key", help=KEY_HELP)
    add_model_options(parser)
    add_verify_options(parser)
    add_report_options(parser)
    parser.set_defaults(handler=run)


KEY_HELP = (
    "where the state dict sits in the file (dotted); default: the registry's `key:`, else the container the "
    "model's keys match best, which the report names"
)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model / --build (one of them) and --kwargs: the model to dry-run against."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--model", help="model NAME from the registry or package.module:callable (imported from the root)"
    )
    which.add_argument(
        "--build",
        metavar="CODE",
        help="Python run from the root that leaves the model in `model` (as `build:` in ckaudit.yaml), or "
        "@FILE.py: e.g. 'from model import GPT, GPTConfig; model = GPT(GPTConfig(n_layer=2))'",
    )
    parser.add_argument(
        "--kwargs", help="keyword arguments for the model factory, as JSON: '{\"num_classes\": 10}'"
    )


def relative_to_root(file: Path, root: Path) -> str:
    """FILE relative to the root, without resolving FILE itself (it may be a dangling symlink)."""
    absolute = file.parent.resolve() / file.name
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        raise CkauditError(f"{file}: outside the root {root} (given by --config)") from None


def entry_for(config: Config, rel_path: str, key: str | None) -> CheckpointEntry | None:
    """The registry's entry for the file, with `--key` overriding its container key; None when
    unregistered."""
    entry = config.checkpoint(rel_path)
    if key is not None and entry is not None:
        return dataclasses.replace(entry, key=key)
    return entry


def with_model_checks(args: argparse.Namespace, config: Config, outcome: FileOutcome) -> FileOutcome:
    """Add the model-compatibility findings when a model is known (--model, or the registry entry's)."""
    build = getattr(args, "build", None)
    if args.model is None and build is None and (outcome.entry is None or outcome.entry.model is None):
        return outcome
    from ckaudit.compat import spec_from_build, spec_from_cli
    from ckaudit.scan import (
        add_code_findings,
    )  # imports the worker client only when a model is asked for

    specs = {}
    detected = None
    if args.model is not None or build is not None:
        spec = spec_from_build(build) if build is not None else spec_from_cli(args.model, args.kwargs, config)
        specs[spec.name] = spec
        key = args.key
        if outcome.entry is None and key is None:
            key = detected = _detected_key(outcome)
        base = outcome.entry or CheckpointEntry(path=outcome.result.path, key=key)
        entry = dataclasses.replace(base, model=spec.name)
        outcome = dataclasses.replace(
            outcome, entry=entry, result=dataclasses.replace(outcome.result, model=spec.name)
        )
    use_cache = not getattr(args, "no_cache", False)
    (checked,) = add_code_findings(config, [outcome], specs=specs, use_cache=use_cache)
    return checked if detected is None else _say_detected(checked, detected)


def _detected_key(outcome: FileOutcome) -> str | None:
    """Without --key or a registry entry: the reader's best state-dict candidate (as `register` records)."""
    info = outcome.info
    return info.candidates[0].key or None if info is not None and info.candidates else None


def _say_detected(outcome: FileOutcome, key: str) -> FileOutcome:
    """A note that the state dict was taken from a detected container (unless a finding already moved it)."""
    findings = outcome.result.findings
    if any(f.rule is Rule.WRONG_CONTAINER_KEY for f in findings):
        return outcome
    note = Finding(
        Rule.WRONG_CONTAINER_KEY,
        Severity.NOTE,
        f"no --key given: the state dict was taken from `{key}`, detected in the file",
        checkpoint=outcome.result.path,
        model=outcome.result.model,
        fix=f"Load `torch.load(path)[{key!r}]`; in ckaudit.yaml, `key: {key}` (ckaudit register records it).",
        details={"used": "", "found": key, "detected": True},
    )
    result = dataclasses.replace(outcome.result, findings=(note, *findings))
    return dataclasses.replace(outcome, result=result)


def located(args: argparse.Namespace) -> tuple[Config, str, CheckpointEntry | None]:
    """FILE's registry (found from its root), its path relative to the root, and its entry if registered."""
    root = find_root(args.config, near=args.file.parent)
    config = resolve_config(root, args.config)
    rel_path = relative_to_root(args.file, root)
    return config, rel_path, entry_for(config, rel_path, args.key)


def run(args: argparse.Namespace) -> int:
    config, rel_path, entry = located(args)
    scope = open_scope(config, verify=args.verify, use_cache=not args.no_cache)
    result, info = check_file(scope, entry, rel_path)
    outcome = with_model_checks(args, config, FileOutcome(entry, result, info))
    return finish(report_of(scope, "diagnose", [outcome]), args)
