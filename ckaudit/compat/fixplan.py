"""What `ckaudit fix` does to a checkpoint: the container to take the state dict from, and key steps.

Given explicitly (`--key`, `--strip-prefix`, `--add-prefix`, `--rename`, `--drop`), or else planned from
what ckaudit knows: the registry entry's `key:` and declarative `load:` steps (the copy is the checkpoint as
the project loads it), then the verified fixes of the diagnosis — `wrong-container-key`'s container,
`key-prefix`'s prefix, `renamed-keys`' module map. Step sets apply one after the other, in that order.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass

from ckaudit.compat.loadadvice import combined, snippet
from ckaudit.errors import CkauditError
from ckaudit.findings import Finding, Rule, Severity
from ckaudit.registry import CheckpointEntry, LoadSteps


@dataclass(frozen=True)
class FixPlan:
    key: str  # the container the state dict is taken from ("" = the top level)
    steps: tuple[LoadSteps, ...]

    def describe(self) -> str:
        parts = [f"state dict taken from `{self.key}`"] if self.key else []
        parts.extend(s.describe() for s in self.steps if s.describe())
        return "; ".join(parts) or "keys unchanged"

    @property
    def changes_keys(self) -> bool:
        return bool(self.key) or any(s.as_dict() for s in self.steps)


def explicit_plan(
    key: str | None, strip: Sequence[str], add: str | None, renames: Sequence[str], drop: Sequence[str]
) -> FixPlan | None:
    """The plan the command-line options give; None when they give no key step."""
    if not (strip or add or renames or drop):
        return None if key is None else FixPlan(key, ())
    rename = {}
    for item in renames:
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise CkauditError(f"--rename {item!r}: expected OLD=NEW (a key or module path)")
        rename[old] = new
    return FixPlan(key or "", (LoadSteps(tuple(strip), add or None, rename, tuple(drop)),))


def planned(entry: CheckpointEntry | None, findings: Sequence[Finding]) -> FixPlan:
    """The registry's own steps, then the diagnosis' verified fixes."""
    key = entry.key or "" if entry is not None else ""
    steps: list[LoadSteps] = []
    if entry is not None and entry.load is not None and not entry.load.loader:
        steps.append(entry.load)
    for finding in findings:
        details = finding.details
        if finding.rule is Rule.WRONG_CONTAINER_KEY and isinstance(details.get("found"), str):
            key = details["found"]
        elif finding.rule is Rule.KEY_PREFIX and details.get("mode") == "strip":
            steps.append(LoadSteps(strip_prefix=(str(details["prefix"]),)))
        elif finding.rule is Rule.KEY_PREFIX and details.get("mode") == "add":
            steps.append(LoadSteps(add_prefix=str(details["prefix"])))
        elif finding.rule is Rule.RENAMED_KEYS and isinstance(details.get("modules"), dict):
            steps.append(LoadSteps(rename=dict(details["modules"])))
    return FixPlan(key, tuple(steps))


@dataclass(frozen=True)
class EntryFix:
    """What `ckaudit fix --registry` writes into a checkpoint's entry: the container key, the entry's whole
    `load:` (its own steps and the new ones), and `ignore:` globs for entries the model no longer defines."""

    key: str | None = None  # None: the entry's key stays
    load: LoadSteps | None = None  # None: the entry's load: stays
    ignore: tuple[str, ...] = ()  # added to the entry's ignore:

    def describe(self) -> str:
        parts = [f"key: {self.key}"] if self.key is not None else []
        parts += [snippet(self.load)] if self.load is not None else []
        parts += [f"ignore: {json.dumps(list(self.ignore))}"] if self.ignore else []
        return "; ".join(parts)

    def applied(self, entry: CheckpointEntry) -> CheckpointEntry:
        ignore = tuple(sorted({*entry.ignore, *self.ignore}))
        key = entry.key if self.key is None else self.key or None
        return dataclasses.replace(entry, key=key, load=self.load or entry.load, ignore=ignore)


def entry_fix(entry: CheckpointEntry, findings: Sequence[Finding]) -> EntryFix:
    """From a diagnosis: the container `wrong-container-key` found, the verified `load:` steps that
    `key-prefix`/`renamed-keys` carry (already joined with the entry's own), and the `ignore:` globs of
    the checkpoint's unused entries. Missing keys are never ignored here: the model would start them
    fresh, which only the user can decide (the `ignore:` the advice names is theirs to paste)."""
    key: str | None = None
    load: LoadSteps | None = None
    ignore: list[str] = []
    for finding in findings:
        details = finding.details
        if finding.rule is Rule.WRONG_CONTAINER_KEY and isinstance(details.get("found"), str):
            key = details["found"]
        elif finding.rule in (Rule.KEY_PREFIX, Rule.RENAMED_KEYS) and isinstance(
            details.get("load_steps"), dict
        ):
            load = LoadSteps.from_dict(details["load_steps"])
        elif finding.rule is Rule.UNEXPECTED_KEYS and finding.severity is Severity.ERROR:
            ignore += [str(g) for g in details.get("ignore", [])]
    return EntryFix(key, load, tuple(ignore))


def explicit_entry_fix(entry: CheckpointEntry, plan: FixPlan) -> EntryFix:
    """The command-line steps (`--strip-prefix`, `--rename`, …, `--key`) added to the entry's `load:`."""
    load = entry.load
    for steps in plan.steps:
        load = steps if load is None else combined(load, steps)
        if load is None:
            raise CkauditError(
                f"{entry.path}: the given steps cannot join the entry's `load:` as one set of steps "
                "(a loader function, a second add_prefix or rename): edit ckaudit.yaml by hand"
            )
    return EntryFix(plan.key or None, load if load != entry.load else None)
