"""`not-tracked`: registered checkpoints that exist here but that a clone or CI would not get — said once
per scan (teams often keep checkpoints out of git on purpose), not once per file."""

from __future__ import annotations

from collections.abc import Sequence

from ckaudit.findings import Finding, Rule, Severity
from ckaudit.vcs import GitRepo, ignored

_SHOWN = 5


def is_tracked(rel_path: str, tracked: set[str] | frozenset[str]) -> bool:
    """A file is tracked when it is in the index; a directory (DCP) when anything below it is."""
    if rel_path in tracked:
        return True
    prefix = rel_path.rstrip("/") + "/"
    return any(p.startswith(prefix) for p in tracked)


def not_tracked_summary(
    repo: GitRepo, paths: Sequence[str], *, lock_committed: bool = False
) -> Finding | None:
    """One finding naming every registered checkpoint that is here but untracked or ignored: a warning, or a
    note when ckaudit.lock is committed with their signatures (the set-up of teams that keep checkpoints out
    of git on purpose: hooks and CI already judge code changes against the lock)."""
    if not paths:
        return None
    gitignored = set(ignored(repo, list(paths)))
    groups = {
        "ignored": sorted(p for p in paths if p in gitignored),
        "untracked": sorted(p for p in paths if p not in gitignored),
    }
    listed = "; ".join(f"{how}: {_few(found)}" for how, found in groups.items() if found)
    count = (
        "1 registered checkpoint exists" if len(paths) == 1 else f"{len(paths)} registered checkpoints exist"
    )
    if lock_committed:
        severity = Severity.NOTE
        fix = (
            "Nothing to do if they live elsewhere on purpose: ckaudit.lock is committed with their "
            "signatures, so hooks and CI judge code changes against it. To have the files too: fetch them "
            "in CI, or `git add` them."
        )
    else:
        severity = Severity.WARNING
        fix = (
            "Commit ckaudit.lock (written by `ckaudit register`/`init`): hooks and CI then judge code "
            "changes against it where a file is absent. To have the files too: fetch them in CI, or "
            "`git add` them (`git lfs track` large ones first; `git add -f` ignored ones)."
        )
    return Finding(
        Rule.NOT_TRACKED,
        severity,
        f"{count} here but not in git, so a clone or CI will not have them ({listed})",
        fix=fix,
        details={
            **groups,
            "status": "ignored" if not groups["untracked"] else "untracked",
            "lock_committed": lock_committed,
        },
    )


def _few(paths: list[str]) -> str:
    more = f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
    return ", ".join(paths[:_SHOWN]) + more
