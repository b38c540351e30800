"""Blame's walk: one checkpoint against every first-parent commit that touched Python code or the registry.

Which commits: `git log --first-parent -- '*.py' ckaudit.yaml <sources globs>`. The model's source set
can change over history (a file renamed, a module split), so the walk takes every commit that touched
any Python file, and the content-keyed cache (keyed by each commit's static closure) makes the commits
that did not touch the model free: same closure blobs, same key, no build. Each commit is judged with its
own registry entry for the checkpoint (same path) where it has one, else today's. Commits where the model
cannot be built are `unbuildable` and never blamed; a break that arrives through a merge is traced down the
merged branch to the commit that introduced it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ckaudit.findings import Finding
from ckaudit.reader import CheckpointInfo
from ckaudit.registry import CONFIG_NAME, CheckpointEntry, ModelSpec
from ckaudit.scan import Evaluator, status_of
from ckaudit.vcs import Commit, Tree, commit_tree, log, prefetched_trees


@dataclass(frozen=True)
class Step:
    commit: Commit
    status: str  # "loads" | "fails" | "unbuildable"
    findings: tuple[Finding, ...]
    signature: dict[str, Any] | None = None
    sources: Mapping[str, str | None] = field(default_factory=dict)  # the build's files -> blob ids


@dataclass(frozen=True)
class Blame:
    checkpoint: str
    model: str
    history: tuple[Step, ...]  # oldest first
    breaks: tuple[str, ...]
    fixes: tuple[str, ...]
    introduced_by: dict[str, str] = field(default_factory=dict)
    last_loads: dict[str, str] = field(default_factory=dict)  # break commit -> the last commit that loaded

    def step(self, sha: str) -> Step | None:
        """The step of commit `sha` in the walked history, if it was walked."""
        return next((s for s in self.history if s.commit.sha == sha), None)


def pathspecs(spec: ModelSpec) -> list[str]:
    """The commits blame walks: those touching Python files, the registry, or the model's `sources:` globs."""
    return ["*.py", CONFIG_NAME, *(f":(glob){pattern}" for pattern in spec.sources)]


def transitions(steps: Iterable[Step]) -> Iterator[tuple[Step, Step]]:
    """(previous, current) pairs of buildable steps whose status differs."""
    previous: Step | None = None
    for step in steps:
        if step.status == "unbuildable":
            continue
        if previous is not None and previous.status != step.status:
            yield previous, step
        previous = step


def walk(
    repo: Path,
    spec: ModelSpec,
    entry: CheckpointEntry,
    info: CheckpointInfo,
    evaluator: Evaluator,
    rev: str = "HEAD",
    each: Callable[[Iterable[Commit]], Iterable[Commit]] = lambda c: c,
    last: int | None = None,
) -> Blame:
    """Dry-run the checkpoint against the model at every commit of `rev`'s history that touches the model's
    files (the newest `last` only, when given): where it started and stopped loading, and for each break
    the changed lines that caused it."""
    commits = log(repo, [rev], pathspecs(spec))
    if last is not None:  # the newest `last` commits only (the HTML matrix's columns)
        commits = commits[-last:]
    shas = [c.sha for c in commits]
    ahead = prefetched_trees(repo, shas, lambda tree: _prepare(tree, spec, entry, info, evaluator))
    with closing(ahead) as trees:
        steps = tuple(
            evaluate(repo, c, spec, entry, info, evaluator, tree)
            for c, tree in zip(each(commits), trees, strict=True)
        )
    breaks, fixes, last_loads, introduced = [], [], {}, {}
    for previous, step in transitions(steps):
        if step.status == "fails":
            named = with_changed_lines(repo, previous, step)
            steps = tuple(named if s is step else s for s in steps)
            breaks.append(step.commit.sha)
            last_loads[step.commit.sha] = previous.commit.sha
            if len(step.commit.parents) > 1:
                origin = branch_origin(repo, step.commit, spec, entry, info, evaluator)
                if origin is not None:
                    introduced[step.commit.sha] = origin
        else:
            fixes.append(step.commit.sha)
    return Blame(entry.path, spec.name, steps, tuple(breaks), tuple(fixes), introduced, last_loads)


def evaluate(
    repo: Path,
    commit: Commit,
    spec: ModelSpec,
    entry: CheckpointEntry,
    info: CheckpointInfo,
    evaluator: Evaluator,
    tree: Tree | None = None,
) -> Step:
    """The checkpoint against the model at one commit (`tree`: its tree, when already listed), judged with
    that commit's registry entry where it has one (its `expect:`, `ignore:`), through the evaluator's
    cache."""
    tree = tree or commit_tree(repo, commit.sha, label=commit.sha[:8])
    spec, entry = _judged_with(tree, spec, entry, evaluator)
    outcome = evaluator.outcome(tree, spec, entry, info)
    return Step(commit, status_of(outcome), outcome.findings, outcome.signature, outcome.sources)


def _prepare(
    tree: Tree, spec: ModelSpec, entry: CheckpointEntry, info: CheckpointInfo, evaluator: Evaluator
) -> None:
    """What the walk needs of a commit before its build, done ahead in the prefetch thread: its registry and
    model files read and parsed, and its tree materialised when no outcome of it is known yet
    (`Evaluator.prepare`). Only caches are filled: the walk computes each outcome's key itself, in order,
    with what earlier builds reported."""
    evaluator.prepare(tree, *_judged_with(tree, spec, entry, evaluator), info)


def _judged_with(
    tree: Tree, spec: ModelSpec, entry: CheckpointEntry, evaluator: Evaluator
) -> tuple[ModelSpec, CheckpointEntry]:
    """The model and entry a commit is judged with: its own registry's where it has them, else today's."""
    from ckaudit.scan import entry_at, registry_at

    today = evaluator.config
    if spec.name not in today.models:
        return spec, entry
    return entry_at(registry_at(tree, today), today, entry)


def with_changed_lines(repo: Path, previous: Step, step: Step) -> Step:
    """A break's findings naming the lines of its diff that produce them (`ckaudit.scan.causes`)."""
    from ckaudit.scan import name_changed_lines

    before = commit_tree(repo, previous.commit.sha, label=previous.commit.sha[:8])
    after = commit_tree(repo, step.commit.sha, label=step.commit.sha[:8])
    named = name_changed_lines(step.findings, previous.sources, step.sources, before, after)
    return replace(step, findings=tuple(named))


def branch_origin(
    repo: Path,
    merge: Commit,
    spec: ModelSpec,
    entry: CheckpointEntry,
    info: CheckpointInfo,
    evaluator: Evaluator,
) -> str | None:
    """The first commit on the merged branch (its own first-parent line) whose code fails to load."""
    for parent in merge.parents[1:]:
        for commit in log(repo, [parent, f"^{merge.parents[0]}"], pathspecs(spec)):
            if evaluate(repo, commit, spec, entry, info, evaluator).status == "fails":
                return commit.sha
    return None


def signature_diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list[Any]]:
    """Keys added, removed and changed (shape or dtype) between two model signatures."""
    old, new = before or {}, after or {}
    changed = [
        {"key": k, "before": old[k][:2], "after": new[k][:2]}
        for k in sorted(old.keys() & new.keys())
        if old[k][:2] != new[k][:2]
    ]
    return {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "changed": changed,
    }
