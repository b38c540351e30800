"""The file-side engine: one checkpoint -> its repository and environment findings; a repository -> a Report.

Torch-free. The model side plugs in after `check_checkpoints`: each `FileOutcome` carries the registry entry
and the reader's `CheckpointInfo`, which is what a compatibility check needs; `report_of` turns outcomes
(with code findings added to their results) and the loose findings into the Report.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ckaudit import globs, walk
from ckaudit.cache import VerifyCache, cache_root
from ckaudit.files import content, environment, integrity, missing, safety, signature, tracking
from ckaudit.files.shard import shard_of
from ckaudit.files.venvs import is_environment, outside_environments
from ckaudit.findings import CheckpointResult, Finding, Location, Report, Rule, Severity
from ckaudit.reader import CheckpointInfo
from ckaudit.registry import CheckpointEntry, Config, Signature, info_from_signature, lock_of, lock_path
from ckaudit.vcs import GitRepo, find_repo, tracked_files


@dataclass(frozen=True)
class FileScope:
    """Everything the file checks need to know about where they run."""

    root: Path
    repo: GitRepo | None = None  # None outside git: no history hints, no not-tracked
    tracked: frozenset[str] | None = None  # root-relative paths in the index; None outside git
    cache: VerifyCache = field(default_factory=lambda: VerifyCache(None))
    verify: bool = False
    registry: str | None = None  # the registry file as shown in locations
    show_progress: bool = False  # a byte bar on stderr while --verify reads files (text output on a TTY)
    lock: Mapping[str, Signature] = field(default_factory=dict)  # ckaudit.lock: path -> signature
    trusted_globals: tuple[str, ...] = ()  # the registry's trusted_globals: inert for the safety checks


@dataclass(frozen=True)
class FileOutcome:
    entry: CheckpointEntry | None  # None: found by the scan globs, not registered
    result: CheckpointResult
    info: CheckpointInfo | None  # None when the file could not be read


def open_scope(
    config: Config, *, verify: bool = False, use_cache: bool = True, show_progress: bool = False
) -> FileScope:
    """What every file check of one run shares: the root, its git repository and tracked files (read once),
    the verify cache, the registry."""
    root = config.root
    repo = find_repo(root)
    tracked = frozenset(tracked_files(repo)) if repo is not None else None
    cache = VerifyCache(cache_root(repo) / "verify" if use_cache else None)
    return FileScope(
        root=root,
        repo=repo,
        tracked=tracked,
        cache=cache,
        verify=verify,
        registry=_shown(root, config.path),
        show_progress=show_progress,
        lock=lock_of(config),
        trusted_globals=config.trusted_globals,
    )


def _shown(root: Path, path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def check_file(
    scope: FileScope, entry: CheckpointEntry | None, rel_path: str
) -> tuple[CheckpointResult, CheckpointInfo | None]:
    """Every file check for one checkpoint (registered when `entry` is given)."""
    model = entry.model if entry is not None else None
    registry = Location(scope.registry, entry.line) if entry is not None and scope.registry else None
    path = scope.root / rel_path
    what = _absent(path)
    if what is not None and entry is not None and not entry.required and entry.as_written in scope.lock:
        locked = info_from_signature(entry.path, scope.lock[entry.as_written])
        return _result(rel_path, entry, locked, [missing.judged_from_lock(entry)]), locked
    if what is not None:
        repo = None if Path(rel_path).is_absolute() else scope.repo  # outside the repository: no git hints
        finding = missing.file_missing(scope.root, repo, rel_path, model=model, location=registry, what=what)
        return _result(rel_path, entry, None, [finding]), None
    read = content.audit_read(
        scope.root, rel_path, model=model, repo=scope.repo, trusted=scope.trusted_globals
    )
    if isinstance(read, list) and entry is None:
        read = _foreign(rel_path, read)
    info = read if isinstance(read, CheckpointInfo) else None
    findings = read if isinstance(read, list) else _content_checks(scope, entry, rel_path, read, registry)
    return _result(rel_path, entry, info, findings, path), info


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")


def _foreign(rel_path: str, findings: list[Finding]) -> list[Finding]:
    """An unregistered file with a shared extension (`firmware.bin`, `data.tar`) that is no checkpoint at all
    is someone else's file: a note. Registered or checkpoint-named files (`.pt`, `.pth`, …) stay errors, and
    so does a file whose pickle can run code, whoever's it is."""
    if rel_path.lower().endswith(CHECKPOINT_SUFFIXES) or any(f.rule is Rule.UNSAFE_PICKLE for f in findings):
        return findings
    message = f"{rel_path} is not a checkpoint (no checkpoint format), so it was not checked"
    fix = "Nothing to do if it is not a model file; register it if it is one."
    return [
        dataclasses.replace(f, severity=Severity.NOTE, message=message, fix=fix)
        if f.rule is Rule.NOT_A_CHECKPOINT
        else f
        for f in findings
    ]


def _absent(path: Path) -> str | None:
    """How `path` fails to name anything ("does not exist", a dangling link), or None when it does."""
    try:
        if not os.path.lexists(path):
            return "does not exist"
        if not path.exists():
            return f"is a symbolic link to {os.readlink(path)}, which does not exist"
    except OSError:  # a folder on the way we may not enter: let the content check say so
        return None
    return None


def _content_checks(
    scope: FileScope,
    entry: CheckpointEntry | None,
    rel_path: str,
    info: CheckpointInfo,
    registry: Location | None,
) -> list[Finding]:
    model = entry.model if entry is not None else None
    return [
        *integrity.integrity_findings(
            scope.root, rel_path, entry, info, verify=scope.verify, cache=scope.cache, registry=registry
        ),
        *safety.safety_findings(rel_path, info, model, trusted=scope.trusted_globals),
        *signature.changed_since_lock(scope.lock, entry, rel_path, info),
        *environment.device_findings(rel_path, info, model),
        *environment.version_findings(rel_path, info, model),
    ]


def _result(
    rel_path: str,
    entry: CheckpointEntry | None,
    info: CheckpointInfo | None,
    findings: list[Finding],
    path: Path | None = None,
) -> CheckpointResult:
    size = (info.size if info is not None else None) or _size(path)  # a lock record has no size
    return CheckpointResult(
        path=rel_path,
        model=entry.model if entry is not None else None,
        format=info.format if info is not None else None,
        tensors=len(info.tensors) if info is not None else None,
        bytes=size,
        findings=tuple(findings),
        registered=entry is not None,
    )


def _size(path: Path | None) -> int | None:
    try:
        return path.stat().st_size if path is not None and path.is_file() else None
    except OSError:
        return None


def repository_files(scope: FileScope, exclude: Iterable[str]) -> list[str]:
    """Root-relative files to look at: the tracked ones in git, else a walk of the folder; minus `exclude`
    and minus whatever sits in a Python environment (`venvs`)."""
    exclude = tuple(exclude)
    files = sorted(scope.tracked) if scope.tracked is not None else walk_files(scope.root, exclude)
    return outside_environments(scope.root, (f for f in files if not globs.matches(f, exclude)))


def walk_files(root: Path, exclude: tuple[str, ...]) -> list[str]:
    """Root-relative files under `root` (never inside .git or a Python environment), minus `exclude`."""

    def enter(folder: str) -> bool:
        return (
            walk.name_of(folder) != ".git"
            and not globs.matches(folder, exclude)
            and not is_environment(root / folder)
        )

    return walk.walk_files(root, enter)


def check_checkpoints(
    config: Config,
    scope: FileScope,
    *,
    paths: Sequence[str] | None = None,
    shard: tuple[int, int] | None = None,
    files: Sequence[str] | None = None,
) -> list[FileOutcome]:
    """Registered checkpoints first (registry order), then every other file the scan globs select.

    `paths` limits the work to those root-relative paths (the hook's staged files), `shard` (K, N) to the
    paths of shard K of N; `files` is the repository's file list when the caller already has it.
    """
    todo: list[tuple[CheckpointEntry | None, str]] = [(e, e.path) for e in config.checkpoints]
    todo += [(None, f) for f in discovered(config, scope, files)]
    wanted = set(paths) if paths is not None else None
    todo = [(e, p) for e, p in todo if (wanted is None or p in wanted) and in_shard(p, shard)]
    if not (scope.verify and scope.show_progress):
        return [FileOutcome(entry, *check_file(scope, entry, rel)) for entry, rel in todo]
    return _with_byte_bar(scope, todo)


def _with_byte_bar(scope: FileScope, todo: list[tuple[CheckpointEntry | None, str]]) -> list[FileOutcome]:
    """--verify reads every byte: a bar counting them, advanced as each file is done."""
    from ckaudit.progress import byte_progress

    sizes = [_size(scope.root / rel) or 0 for _, rel in todo]
    outcomes = []
    with byte_progress(sum(sizes), desc="verify", enabled=True) as bar:
        for (entry, rel), size in zip(todo, sizes, strict=True):
            outcomes.append(FileOutcome(entry, *check_file(scope, entry, rel)))
            bar.update(size)
    return outcomes


def discovered(config: Config, scope: FileScope, files: Sequence[str] | None = None) -> list[str]:
    """Unregistered files the scan globs select (tracked ones in git, else the folder's), present here."""
    registered = {e.path for e in config.checkpoints}
    if files is None:
        files = repository_files(scope, config.scan.exclude)
    return [
        f
        for f in files
        if f not in registered and globs.matches(f, config.scan.include) and os.path.lexists(scope.root / f)
    ]


def in_shard(path: str, shard: tuple[int, int] | None) -> bool:
    """Whether `path` falls in shard K of N (`--shard K/N`: by the path alone, so CI jobs split files
    without overlap); every path without a shard."""
    return shard is None or shard_of(path, shard[1]) == shard[0]


def report_of(
    scope: FileScope, command: str, outcomes: Sequence[FileOutcome], findings: Sequence[Finding] = ()
) -> Report:
    """The report of a file-checks run (scan --files-only, the files hook)."""
    return Report(
        root=str(scope.root.resolve()),
        command=command,
        checkpoints=tuple(o.result for o in outcomes),
        findings=tuple(findings),
    )


def dangling_references(
    config: Config, scope: FileScope, files: Sequence[str], paths: Sequence[str] | None = None
) -> list[Finding]:
    """Checkpoint paths named in the repository's Python files (all of them, or those in `paths`) that do
    not exist."""
    from ckaudit.files.references import find_dangling  # here, not at the top: references uses checks.missing

    wanted = set(paths) if paths is not None else None
    python = [f for f in files if f.endswith(".py") and (wanted is None or f in wanted)]
    return find_dangling(scope.root, python, config.scan, scope.repo)


def scan_files(
    config: Config,
    *,
    verify: bool = False,
    use_cache: bool = True,
    paths: Sequence[str] | None = None,
    shard: tuple[int, int] | None = None,
    model_checks: Callable[[list[FileOutcome]], list[FileOutcome]] | None = None,
    show_progress: bool = False,
) -> Report:
    """`ckaudit scan`: registered and discovered checkpoints, plus dangling references in code.

    `model_checks` adds the model-compatibility findings to the file outcomes (None: file checks only).
    Under `shard`, references are reported by shard 1 only, so the union of all shards is the whole scan.
    """
    scope = open_scope(config, verify=verify, use_cache=use_cache, show_progress=show_progress)
    files = repository_files(scope, config.scan.exclude)
    outcomes = check_checkpoints(config, scope, paths=paths, shard=shard, files=files)
    if model_checks is not None:
        outcomes = model_checks(outcomes)
    first = shard is None or shard[0] == 1
    untracked = _not_tracked(scope, config, paths) if first else []
    loose = (
        [*dangling_references(config, scope, files, paths), *signature.stale_records(config, scope.lock)]
        if first
        else []
    )
    return report_of(scope, "scan", outcomes, [*untracked, *loose])


def _not_tracked(scope: FileScope, config: Config, paths: Sequence[str] | None) -> list[Finding]:
    """Registered checkpoints that are here but not in git: one summary finding for the whole scan (every
    shard's union included: shard 1 reports it)."""
    if scope.repo is None or scope.tracked is None:
        return []
    tracked = scope.tracked
    found = [
        e.path
        for e in config.checkpoints
        if (paths is None or e.path in paths)
        and not Path(e.path).is_absolute()  # kept outside the repository on purpose
        and os.path.lexists(scope.root / e.path)
        and not tracking.is_tracked(e.path, tracked)
    ]
    lock = _shown(scope.root, lock_path(config))
    locked = lock in tracked and all(
        e.as_written in scope.lock for e in config.checkpoints if e.path in found
    )
    summary = tracking.not_tracked_summary(scope.repo, found, lock_committed=locked)
    return [summary] if summary is not None else []
