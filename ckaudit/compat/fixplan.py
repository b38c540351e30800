"""What `ckaudit fix` does to a checkpoint: the container to take the state dict from, and key steps.

Given explicitly (`--key`, `--strip-prefix`, `--add-prefix`, `--rename`, `--drop`), or else planned from
what ckaudit knows: the registry entry's `key:` and declarative `load:` steps (the copy is the checkpoint as
the project loads it), then the verified fixes of the diagnosis — `wrong-container-key`'s container,
`key-prefix`'s prefix, `renamed-keys`' module map. Step sets apply one after the other, in that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ckaudit.errors import CkauditError
from ckaudit.findings import Finding, Rule
from ckaudit.registry import CheckpointEntry, LoadSteps


@dataclass(frozen=True)
class FixPlan:
    key: str  # the container the state dict is taken from ("" = the top level)
    steps: tuple[LoadSteps, ...]

    def describe(self) -> str:
        """The plan in words for the fix message; `keys unchanged` when it does nothing."""
        parts = [f"state dict taken from `{self.key}`"] if self.key else []
        parts.extend(s.describe() for s in self.steps if s.describe())
        return "; ".join(parts) or "keys unchanged"

    @property
    def changes_keys(self) -> bool:
        """Whether applying the plan renames any key (taking the state dict from under a key counts)."""
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
