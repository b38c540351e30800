"""`signature-changed`: a registered file that is no longer the one whose signature ckaudit.lock records (it
was replaced), and lock records of checkpoints that are no longer registered or whose file is gone.

A registered file that is missing is `file-missing` already; its lock record is what `hook`, `check` and
`blame` then judge code changes against, so it is not reported twice.
"""

from __future__ import annotations

from collections.abc import Mapping

from ckaudit.files.file_finding import file_finding
from ckaudit.findings import Finding, Rule, Severity
from ckaudit.reader import CheckpointInfo
from ckaudit.registry import LOCK_NAME, CheckpointEntry, Config, Signature, expand_path, signature_of

_SHOWN = 5


def changed_since_lock(
    lock: Mapping[str, Signature], entry: CheckpointEntry | None, rel_path: str, info: CheckpointInfo
) -> list[Finding]:
    """signature-changed: the file's tensors (names, shapes, dtypes) differ from what ckaudit.lock recorded
    for its entry."""
    locked = lock.get(entry.as_written) if entry is not None else None
    if locked is None:
        return []
    now = signature_of(info, locked.container)
    if now == locked:
        return []
    changes = locked.differences(now)
    more = f" (and {len(changes) - _SHOWN} more)" if len(changes) > _SHOWN else ""
    model = entry.model if entry is not None else None
    register = f"`ckaudit register {rel_path} --model {model}`" if model else "`ckaudit register`"
    return [
        file_finding(
            Rule.SIGNATURE_CHANGED,
            rel_path,
            f"{rel_path} is not the checkpoint recorded in {LOCK_NAME}: {'; '.join(changes[:_SHOWN])}{more}",
            f"Restore the recorded file, or if the new one is intended, re-register it ({register}) and "
            f"commit {LOCK_NAME}.",
            {"changes": changes[:100]},
            model=model,
        )
    ]


def stale_records(config: Config, lock: Mapping[str, Signature]) -> list[Finding]:
    """Lock records of checkpoints the registry no longer has (warnings: the lock is out of date)."""
    registered = {entry.as_written for entry in config.checkpoints}
    findings = []
    for path in sorted(set(lock) - registered):
        gone = "" if (config.root / expand_path(path)).exists() else " and the file is gone"
        findings.append(
            Finding(
                Rule.SIGNATURE_CHANGED,
                Severity.WARNING,
                f"{LOCK_NAME} records {path}, which is not registered in the registry{gone}",
                checkpoint=path,
                location=None,
                fix=f"Re-run `ckaudit register` for a checkpoint that is still used; else delete its record "
                f"from {LOCK_NAME} (`ckaudit register` and `ckaudit init` drop unregistered records).",
                details={"lock": LOCK_NAME, "exists": not gone},
            )
        )
    return findings
