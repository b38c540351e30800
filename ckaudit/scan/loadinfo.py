"""A checkpoint's metadata for a dry run: read from the working tree, else from its ckaudit.lock signature."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ckaudit.findings import Finding, Location, Rule, Severity
from ckaudit.registry import CheckpointEntry, Config

if TYPE_CHECKING:
    from ckaudit.reader import CheckpointInfo


def load_info(config: Config, entry: CheckpointEntry) -> CheckpointInfo | Finding:
    """The checkpoint's metadata from the working tree, else from its signature in ckaudit.lock, or why it
    cannot be read (a warning here: the file is not what the code change is judged on; `ckaudit scan` and
    the `ckaudit-files` hook own it)."""
    from ckaudit.files import read
    from ckaudit.registry import info_from_signature, lock_of

    root = config.root
    if not (root / entry.path).exists():
        lock = lock_of(config)  # read only when some file is absent
        if entry.as_written in lock and not entry.required:
            return info_from_signature(entry.path, lock[entry.as_written])
        if entry.required:
            why, severity = "but its registry entry says `required: true`", Severity.ERROR
        else:
            why = "and ckaudit.lock has no signature of it (`ckaudit register` records one where the file is)"
            severity = Severity.WARNING
        return entry.finding(
            Rule.FILE_MISSING,
            severity,
            f"{entry.path} does not exist here, {why}",
            location=Location(entry.path),
        )
    found = read(root, entry.path, model=entry.model)
    return dataclasses.replace(found, severity=Severity.WARNING) if isinstance(found, Finding) else found
