"""`ckaudit fix CKPT --registry`: the fix written into the checkpoint's registry entry, not into a copy.

The steps are the command line's (`--strip-prefix`, `--add-prefix`, `--rename`, `--drop`, `--key`), or else
the diagnosis' verified fixes in the registry's own words: the container `wrong-container-key` found (`key:`),
the `load:` steps `key-prefix`/`renamed-keys` carry (checked by a dry run when the advice was made), and
`ignore:` for entries of the checkpoint the model no longer defines. Missing keys are never ignored here
(the model would start them fresh). The entry with the steps is dry-run again; ckaudit.yaml and ckaudit.lock
are written (as `register` writes them) only when that run loads. The checkpoint file is only read.
"""

from __future__ import annotations

import argparse
import sys

from ckaudit.commands.common import finish
from ckaudit.commands.diagnose import with_model_checks
from ckaudit.commands.register import write_entry
from ckaudit.compat import EntryFix, entry_fix, explicit_entry_fix, explicit_plan
from ckaudit.errors import EXIT_FINDINGS, CkauditError
from ckaudit.files import FileOutcome, FileScope, check_file, report_of
from ckaudit.registry import CheckpointEntry, Config


def fix_entry(args: argparse.Namespace, config: Config, scope: FileScope, outcome: FileOutcome) -> int:
    """Exit 0 when the entry was written and the checkpoint loads with it, 1 when the entry with the steps
    still does not load (nothing written), 2 when there is nothing to write or the options do not fit."""
    entry = _registered(args, config, outcome)
    change = _change(args, config, outcome, entry)
    updated = change.applied(entry)
    if updated == entry:
        raise CkauditError(f"{entry.path}: its entry already has {change.describe()}; nothing to write")
    result, info = check_file(scope, updated, outcome.result.path)
    checks = argparse.Namespace(**{**vars(args), "key": None})
    proven = with_model_checks(checks, config, FileOutcome(updated, result, info))
    report = report_of(scope, "fix", [proven])
    if proven.result.loads is not True or proven.info is None:
        print(
            f"not written: {entry.path} with {change.describe()} still does not load (see the report)",
            file=sys.stderr,
        )
        return max(finish(report, args), EXIT_FINDINGS)
    target, lock = write_entry(config, config.root, updated, proven.info, replaces=entry.as_written)
    print(
        f"{target}: {entry.path} now has {change.describe()} (it loads: checked by a dry run); "
        f"its signature in {lock.name}",
        file=sys.stderr,
    )
    return finish(report, args)


def _registered(args: argparse.Namespace, config: Config, outcome: FileOutcome) -> CheckpointEntry:
    """The entry as the registry has it (`--key` is a step to write, not a reading of the entry)."""
    path = outcome.result.path
    entry = config.checkpoint(path)
    if args.to != "torch" or args.out is not None or args.repoint:
        raise CkauditError("--registry writes the entry, not a copy: --to, --out and --repoint do not apply")
    if args.model is not None or args.build is not None:
        raise CkauditError("--registry dry-runs the entry's own model: --model and --build do not apply")
    if entry is None or entry.model is None:
        raise CkauditError(
            f"--registry: {path} is not registered with a model (`ckaudit register {path} --model NAME`)"
        )
    if entry.load is not None and entry.load.loader:
        raise CkauditError(
            f"{path} is loaded by the project's function {entry.load.loader}: its steps are that "
            "function's to change, not the registry's"
        )
    return entry


def _change(
    args: argparse.Namespace, config: Config, outcome: FileOutcome, entry: CheckpointEntry
) -> EntryFix:
    given = explicit_plan(args.key, args.strip_prefix, args.add_prefix, args.rename, args.drop)
    if given is not None:
        return explicit_entry_fix(entry, given)
    diagnosed = with_model_checks(args, config, FileOutcome(entry, outcome.result, outcome.info))
    change = entry_fix(entry, diagnosed.result.findings)
    if diagnosed.result.loads is True or not change.describe():
        why = (
            "it loads as it is"
            if diagnosed.result.loads
            else "no fix of its failure is a registry step (`key:`, `load:`, `ignore:` of unused entries)"
        )
        raise CkauditError(
            f"{entry.path}: nothing to write: {why}; `ckaudit diagnose {entry.path}` says more"
        )
    return change
