"""Key fixes in the registry's own words: the `load:` steps (SPEC, `ckaudit.registry.loadsteps`) that do what
a verified prefix strip or rename map does, as a snippet to paste under the checkpoint's entry.

The snippet is checked like every fix: its steps are applied to the checkpoint's state dict exactly as the
registry would apply them (`apply_steps`), and one more dry run must leave the same problems as the
verified fix left (no more, no fewer). A snippet that cannot be written (the entry already has a `loader:`,
or a rename on top of an existing rename) or that fails the check is not offered.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping

from ckaudit.compat.asloaded import apply_steps
from ckaudit.compat.diagnosis import Problems
from ckaudit.compat.keyfix import PrefixFix
from ckaudit.findings import Finding, Rule
from ckaudit.reader import StateDictCandidate
from ckaudit.registry import LoadSteps

DryRun = Callable[[StateDictCandidate], Problems]
_SHOWN_RENAMES = 6


def steps_for(prefix: PrefixFix | None, moves: Mapping[str, str]) -> LoadSteps | None:
    """The `load:` steps of a verified prefix fix and module moves (None: nothing to say)."""
    if prefix is None and not moves:
        return None
    strip = (prefix.prefix,) if prefix is not None and prefix.mode == "strip" else ()
    add = prefix.prefix if prefix is not None and prefix.mode == "add" else None
    return LoadSteps(strip_prefix=strip, add_prefix=add, rename=dict(moves))


def combined(existing: LoadSteps | None, new: LoadSteps) -> LoadSteps | None:
    """The entry's whole `load:` after adding `new` to what it already has; None when that is not writable
    as one set of steps (a loader function, a second add_prefix or rename)."""
    if existing is None:
        return new
    if existing.loader or (existing.add_prefix and new.add_prefix) or (existing.rename and new.rename):
        return None
    return dataclasses.replace(
        existing,
        strip_prefix=(*existing.strip_prefix, *new.strip_prefix),
        add_prefix=existing.add_prefix or new.add_prefix,
        rename={**existing.rename, **new.rename},
    )


def verified(new: LoadSteps, candidate: StateDictCandidate, expected: Problems, dry_run: DryRun) -> bool:
    """Applied as the registry applies them, the steps leave exactly the problems the fix left."""
    after = dry_run(apply_steps(candidate, new))

    def keys(p: Problems) -> tuple[set[str], set[str], set[str]]:
        return set(p.missing), set(p.unexpected), {k for k, _, _ in p.size_mismatch}

    return keys(after) == keys(expected) and len(after.other_errors) == len(expected.other_errors)


def snippet(steps: LoadSteps) -> str:
    """`load: {strip_prefix: "_orig_mod.", rename: {"a": "b"}}` — YAML flow style, pasteable as one line."""
    data = steps.as_dict()
    parts = []
    for name, value in data.items():
        if isinstance(value, dict):
            items = list(value.items())
            shown = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in items[:_SHOWN_RENAMES])
            more = (
                f", … {len(items) - _SHOWN_RENAMES} more: all in --format json, details.load_steps"
                if len(items) > _SHOWN_RENAMES
                else ""
            )
            parts.append(f"{name}: {{{shown}{more}}}")
        else:
            parts.append(f"{name}: {json.dumps(value)}")
    return "load: {" + ", ".join(parts) + "}"


def with_snippet(findings: list[Finding], steps: LoadSteps) -> list[Finding]:
    """The key-prefix and renamed-keys findings offer the registry's `load:` (in the fix and in details);
    findings about keys left over say that their names are the names after those steps."""
    text = snippet(steps)
    out = []
    for finding in findings:
        if finding.rule in (Rule.KEY_PREFIX, Rule.RENAMED_KEYS):
            writes = (
                f"; `ckaudit fix {finding.checkpoint} --registry` writes it" if finding.checkpoint else ""
            )
            where = f"In ckaudit.yaml, under this checkpoint: `{text}`"
            fix = f"{finding.fix} {where} (checked by a dry run{writes})."
            details = {**finding.details, "load_steps": steps.as_dict()}
            out.append(dataclasses.replace(finding, fix=fix, details=details))
        elif finding.rule in (Rule.MISSING_KEYS, Rule.UNEXPECTED_KEYS):
            fix = f"{finding.fix} (Key names here are after the `load:` steps above.)"
            out.append(dataclasses.replace(finding, fix=fix))
        else:
            out.append(finding)
    return out
