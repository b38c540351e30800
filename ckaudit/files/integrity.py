"""`--verify` (each member's CRC32, safetensors and shard sizes) and `hash-mismatch`, in one pass.

The pass runs under `--verify`, and also whenever the registry holds a sha256 for the file — the hash needs
the bytes anyway and CRC32 in the same pass is nearly free, so any integrity problem it finds is reported
too. Results are cached by stat (`verify_cache`); multi-file checkpoints are keyed by every file's stat.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ckaudit.cache import Verification, VerifyCache, stat_key
from ckaudit.files.content import content_finding
from ckaudit.files.file_finding import file_finding
from ckaudit.findings import Finding, Location, Rule
from ckaudit.reader import CheckpointInfo, verify_checkpoint
from ckaudit.registry import CheckpointEntry


def needs_pass(entry: CheckpointEntry | None, verify: bool) -> bool:
    """Whether the file's data must be read: `--verify`, or a registered sha256 to compare."""
    return verify or (entry is not None and entry.sha256 is not None)


def verification(path: Path, info: CheckpointInfo, *, sha256: bool, cache: VerifyCache) -> Verification:
    """The file's integrity (CRCs, sizes, sha256 when asked), from the verify cache while the file's stat
    is unchanged."""
    stats = _stats(path, info)
    if stats is not None:
        cached = cache.get(path, stats, need_sha256=sha256)
        if cached is not None:
            return cached
    integrity = verify_checkpoint(path, info, sha256=sha256)
    result = Verification(
        sha256=integrity.sha256,
        problems=tuple(
            {"rule": p.rule.value, "message": p.message, "details": p.details} for p in integrity.problems
        ),
    )
    after = _stats(path, info)
    if stats is not None and after is not None and list(map(stat_key, after)) == list(map(stat_key, stats)):
        cache.put(path, stats, result)  # only when nothing changed while we read it
    return result


def _stats(path: Path, info: CheckpointInfo) -> list[os.stat_result] | None:
    """The stat of the file and of every shard it names, or None when one cannot be taken."""
    shards = sorted({t.file for t in info.tensors if t.file})
    base = path if path.is_dir() else path.parent
    try:
        return [path.stat(), *((base / s).stat() for s in shards)]
    except OSError:
        return None


def integrity_findings(
    root: Path,
    rel_path: str,
    entry: CheckpointEntry | None,
    info: CheckpointInfo,
    *,
    verify: bool,
    cache: VerifyCache,
    registry: Location | None,
) -> list[Finding]:
    """hash-mismatch and corruption findings from reading the data, only when `needs_pass`; an unreadable
    file is a finding too."""
    if not needs_pass(entry, verify):
        return []
    expected = entry.sha256 if entry is not None else None
    model = entry.model if entry is not None else None
    try:
        result = verification(root / rel_path, info, sha256=expected is not None, cache=cache)
    except OSError as exc:
        return [
            content_finding(
                rel_path, Rule.NOT_A_CHECKPOINT, f"cannot be read: {exc.strerror or exc}", model=model
            )
        ]
    findings = [_problem(rel_path, p, model) for p in result.problems]
    if expected is not None and result.sha256 is not None and result.sha256 != expected:
        findings.append(_mismatch(rel_path, expected, result.sha256, model, registry))
    return findings


def _problem(rel_path: str, problem: Any, model: str | None) -> Finding:
    return content_finding(
        rel_path, Rule(problem["rule"]), problem["message"], dict(problem["details"]), model=model
    )


def _mismatch(
    rel_path: str, expected: str, actual: str, model: str | None, registry: Location | None
) -> Finding:
    where = f" at {registry.path}:{registry.line}" if registry is not None and registry.line else ""
    return file_finding(
        Rule.HASH_MISMATCH,
        rel_path,
        f"{rel_path}: sha256 is {actual[:12]}…, the registry expects {expected[:12]}…",
        f"Restore the registered file, or if the new content is intended, set its sha256{where} to {actual}",
        {
            "expected": expected,
            "actual": actual,
            "registry": registry.path if registry else None,
            "registry_line": registry.line if registry else None,
        },
        model=model,
    )
