"""`file-missing`: where a path that does not exist went — renamed or deleted in history, DVC, Git LFS."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ckaudit.findings import Finding, Location, Rule, Severity
from ckaudit.registry import CheckpointEntry
from ckaudit.vcs import GitRepo, history_hint, lfs_tracked


@dataclass(frozen=True)
class Whereabouts:
    """Hints about a missing path: sentences for the message and the fix, and the same facts as data."""

    hints: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def where_it_went(root: Path, repo: GitRepo | None, rel_path: str) -> Whereabouts:
    """Where a missing file may be: tracked by DVC, deleted or moved in git history, an LFS object not
    fetched."""
    found = Whereabouts()
    _dvc(root, rel_path, found)
    if repo is not None:
        _history(repo, rel_path, found)
        _lfs(repo, rel_path, found)
    return found


def _dvc(root: Path, rel_path: str, found: Whereabouts) -> None:
    """`dvc add x.pt` leaves `x.pt.dvc`; `dvc add dir` leaves `dir.dvc` covering everything below."""
    parts = Path(rel_path).parts
    for depth in range(len(parts), 0, -1):
        tracked = Path(*parts[:depth])
        dvc_file = root / f"{tracked}.dvc"
        if dvc_file.is_file():
            name = dvc_file.relative_to(root).as_posix()
            found.hints.append(f"DVC tracks it ({name})")
            found.fixes.append(f"`dvc pull {tracked.as_posix()}`")
            found.details["dvc_file"] = name
            return


def _history(repo: GitRepo, rel_path: str, found: Whereabouts) -> None:
    hint = history_hint(repo, rel_path)
    if hint is None:
        return
    commit = f"{hint.commit[:10]} ({hint.date}, {hint.subject!r})"
    if hint.renamed_to is not None:
        found.hints.append(f"renamed to {hint.renamed_to} in commit {commit}")
        found.fixes.append(f"use the new path {hint.renamed_to}")
        found.details["renamed_to"] = hint.renamed_to
    else:
        found.hints.append(f"deleted in commit {commit}")
        found.fixes.append(f"restore it with `git checkout {hint.commit[:10]}^ -- {rel_path}`")
    found.details["commit"] = hint.commit


def _lfs(repo: GitRepo, rel_path: str, found: Whereabouts) -> None:
    if lfs_tracked(repo, rel_path):
        found.hints.append(".gitattributes stores it with Git LFS")
        found.fixes.append(f"`git lfs pull --include={rel_path}`")
        found.details["lfs"] = True


def file_missing(
    root: Path,
    repo: GitRepo | None,
    rel_path: str,
    *,
    model: str | None,
    location: Location | None,
    what: str = "does not exist",
) -> Finding:
    """The file-missing error, with where it went (`where_it_went`) in the message and fix."""
    found = where_it_went(root, repo, rel_path)
    message = f"{rel_path} {what}" + (f": {'; '.join(found.hints)}" if found.hints else "")
    fixes = found.fixes or [f"restore {rel_path}"]
    fix = " or ".join(fixes) + ", or update its path in the registry"
    return Finding(
        Rule.FILE_MISSING,
        Severity.ERROR,
        message,
        checkpoint=rel_path,
        model=model,
        location=location,
        fix=fix[0].upper() + fix[1:],
        details=found.details,
    )


def judged_from_lock(entry: CheckpointEntry) -> Finding:
    """The note for a registered file that is absent here while ckaudit.lock holds its signature: the code is
    judged against that (teams that keep checkpoints out of git commit the lock for exactly this)."""
    return entry.finding(
        Rule.FILE_MISSING,
        Severity.NOTE,
        f"{entry.path} is not here: judged against its signature in ckaudit.lock",
        fix="Nothing to do if the file lives elsewhere on purpose; mark the entry `required: true` if it "
        "must be present.",
        details={"from_lock": True},
    )
