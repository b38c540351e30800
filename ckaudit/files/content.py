"""Open a checkpoint through the torch-free reader; every way that can fail becomes a repository finding.

A file that cannot be read may still hold a dangerous pickle (a plain pickle, a payload ahead of a parse
error, a cut archive): the globals the reader saw before failing go through the same safety checks, so
`unsafe-pickle` is reported beside `not-a-checkpoint`, `truncated` or `corrupt`, never hidden by them.

Decisions: a dangling symlink is `file-missing` (the path names nothing); a directory without a
`torch.distributed.checkpoint` `.metadata` file, a FIFO, socket or device, and a file this user cannot read
are `not-a-checkpoint` (the content is not a checkpoint we can get at). An exception the reader did not
anticipate is contained as `corrupt` — fail closed, with the error in `details` — never a traceback.
"""

from __future__ import annotations

import os
import posixpath
import stat as stat_mod
from collections.abc import Iterable
from pathlib import Path

from ckaudit.files import missing, safety
from ckaudit.files.file_finding import file_finding
from ckaudit.findings import Finding, Rule
from ckaudit.reader import NUMPY_FORMAT, PICKLE_FORMAT, CheckpointInfo, CheckpointReadError, read_checkpoint
from ckaudit.vcs import GitRepo

_FIXES = {
    Rule.LFS_POINTER: "Run `git lfs pull --include={path}` (in CI: `actions/checkout` with `lfs: true`)",
    Rule.NOT_A_CHECKPOINT: "Download or copy the real file to {path} again",
    Rule.TRUNCATED: "Fetch {path} again and compare its size and sha256 with the source",
    Rule.CORRUPT: "Fetch {path} again, or re-save it from a trusted copy",
}
# A file that is another format than torch's is not fixed by downloading it again.
_FORMAT_FIXES = {
    PICKLE_FORMAT: "torch.load cannot read a plain pickle: have the tensors saved from a trusted copy with "
    "`torch.save(state_dict, path)` or as safetensors",
    NUMPY_FORMAT: "torch.load cannot read numpy files: convert trusted arrays with `torch.from_numpy` and "
    "save them with `torch.save` or as safetensors",
}


def content_finding(
    rel_path: str,
    rule: Rule,
    message: str,
    details: dict[str, object] | None = None,
    *,
    model: str | None = None,
) -> Finding:
    """A finding about a checkpoint file's content (truncated, corrupt, not a checkpoint, …) with that
    rule's fix."""
    fix = _FIXES.get(rule, _FIXES[Rule.CORRUPT]).format(path=rel_path)
    return file_finding(rule, rel_path, f"{rel_path}: {message}", fix, details, model=model)


def unreadable_reason(path: Path) -> str | None:
    """Why `path` (which exists) cannot be a checkpoint file before reading a byte, or None."""
    st = path.stat()
    if stat_mod.S_ISDIR(st.st_mode):
        return None if (path / ".metadata").is_file() else "is a directory, not a checkpoint file"
    if not stat_mod.S_ISREG(st.st_mode):
        return "is not a regular file (a FIFO, socket or device)"
    if not os.access(path, os.R_OK):
        return "cannot be read: permission denied"
    return None


def read(root: Path, rel_path: str, *, model: str | None = None) -> CheckpointInfo | Finding:
    """The reader's view of the file, or the finding that says why there is none (unsafe-pickle first)."""
    found = audit_read(root, rel_path, model=model)
    return found if isinstance(found, CheckpointInfo) else found[0]


def audit_read(
    root: Path,
    rel_path: str,
    *,
    model: str | None = None,
    repo: GitRepo | None = None,
    trusted: Iterable[str] = (),
) -> CheckpointInfo | list[Finding]:
    """The reader's view of the file, or every finding about why there is none: unsafe-pickle for names
    seen before the failure (`trusted`: the registry's trusted_globals), then the failure itself. `repo`
    helps say where a missing shard went."""
    path = root / rel_path
    try:
        reason = unreadable_reason(path)
        if reason is not None:
            return [content_finding(rel_path, Rule.NOT_A_CHECKPOINT, reason, model=model)]
        return read_checkpoint(path)
    except CheckpointReadError as exc:
        unsafe = _unsafe_names(rel_path, exc, model, trusted)
        if exc.rule is Rule.UNSAFE_PICKLE and unsafe:  # a stream it cannot prove inert: said there once
            return unsafe
        return [*unsafe, _read_error(root, repo, rel_path, exc, model)]
    except OSError as exc:
        return [
            content_finding(
                rel_path,
                Rule.NOT_A_CHECKPOINT,
                f"cannot be read: {exc.strerror or exc}",
                {"errno": exc.errno},
                model=model,
            )
        ]
    except Exception as exc:  # contain reader bugs: a finding about this file, never a traceback
        return [
            content_finding(
                rel_path,
                Rule.CORRUPT,
                f"could not be parsed ({type(exc).__name__}: {exc})",
                {"internal_error": repr(exc)},
                model=model,
            )
        ]


def _unsafe_names(
    rel_path: str, exc: CheckpointReadError, model: str | None, trusted: Iterable[str]
) -> list[Finding]:
    """The safety checks over what the reader saw before it failed; only `unsafe-pickle` is kept (what
    weights_only would refuse matters little for a file that does not load anyway)."""
    if not exc.globals and not exc.calls:
        return []
    seen = CheckpointInfo(
        path=rel_path,
        format=str(exc.details.get("format", "unreadable")),
        size=0,
        globals=exc.globals,
        calls=exc.calls,
    )
    findings = safety.safety_findings(rel_path, seen, model, trusted=trusted)
    return [f for f in findings if f.rule is Rule.UNSAFE_PICKLE]


def _read_error(
    root: Path, repo: GitRepo | None, rel_path: str, exc: CheckpointReadError, model: str | None
) -> Finding:
    if exc.rule is Rule.FILE_MISSING and "shard" in exc.details:
        return _missing_shard(root, repo, rel_path, str(exc.details["shard"]), model)
    finding = content_finding(rel_path, exc.rule, exc.message, exc.details, model=model)
    fix = _FORMAT_FIXES.get(str(exc.details.get("format")))
    if fix is not None:
        return file_finding(exc.rule, rel_path, finding.message, fix, exc.details, model=model)
    return finding


def _missing_shard(root: Path, repo: GitRepo | None, rel_path: str, shard: str, model: str | None) -> Finding:
    """A shard the index names is absent: name it, and say how to fetch it (LFS, DVC, history, the hub)."""
    folder = posixpath.dirname(rel_path)
    shard_path = posixpath.join(folder, shard)
    found = missing.where_it_went(root, repo, shard_path)
    hints = f" ({'; '.join(found.hints)})" if found.hints else ""
    fixes = found.fixes or [
        f"fetch {shard} into {folder or '.'}/ from where the index came from (for a Hugging Face model: "
        f"`huggingface-cli download REPO_ID {shard} --local-dir {folder or '.'}`)"
    ]
    fix = " or ".join(fixes)
    return file_finding(
        Rule.FILE_MISSING,
        rel_path,
        f"{rel_path}: shard {shard_path} named by the index does not exist{hints}",
        fix[0].upper() + fix[1:],
        {**found.details, "shard": shard_path},
        model=model,
    )
