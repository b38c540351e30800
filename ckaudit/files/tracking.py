"""`not-tracked`: a registered checkpoint that exists here but that a clone or CI would not get."""

from __future__ import annotations

from ckaudit.files.file_finding import file_finding
from ckaudit.findings import Finding, Rule, Severity
from ckaudit.vcs import queries as git


def is_tracked(rel_path: str, tracked: set[str] | frozenset[str]) -> bool:
    """A file is tracked when it is in the index; a directory (DCP) when anything below it is."""
    if rel_path in tracked:
        return True
    prefix = rel_path.rstrip("/") + "/"
    return any(p.startswith(prefix) for p in tracked)


def not_tracked_finding(repo: git.GitRepo, rel_path: str, model: str | None) -> Finding:
    ignored = rel_path in git.ignored(repo, [rel_path])
    how = "ignored by the repository's ignore rules" if ignored else "untracked"
    if ignored:
        fix = f"Fetch it in CI, or un-ignore it: `git add -f {rel_path}` (large files: `git lfs track` first)"
    else:
        fix = f"`git add {rel_path}` (large files: `git lfs track` it first), or fetch it in CI"
    return file_finding(
        Rule.NOT_TRACKED,
        rel_path,
        f"{rel_path} exists here but is {how}: a clone or CI will not have it",
        fix,
        {"status": "ignored" if ignored else "untracked"},
        model=model,
        severity=Severity.WARNING,
    )
