"""Open a checkpoint through the torch-free reader; every way that can fail becomes one repository finding.

Decisions: a dangling symlink is `file-missing` (the path names nothing); a directory without a
`torch.distributed.checkpoint` `.metadata` file, a FIFO, socket or device, and a file this user cannot read
are `not-a-checkpoint` (the content is not a checkpoint we can get at). An exception the reader did not
anticipate is contained as `corrupt` — fail closed, with the error in `details` — never a traceback.
"""

from __future__ import annotations

import os
import stat as stat_mod
from pathlib import Path

from ckaudit.files.file_finding import file_finding
from ckaudit.findings import Finding, Rule
from ckaudit.reader import read_checkpoint
from ckaudit.reader.types import CheckpointInfo, CheckpointReadError

_FIXES = {
    Rule.LFS_POINTER: "Run `git lfs pull --include={path}` (in CI: `actions/checkout` with `lfs: true`)",
    Rule.NOT_A_CHECKPOINT: "Download or copy the real file to {path} again",
    Rule.TRUNCATED: "Fetch {path} again and compare its size and sha256 with the source",
    Rule.CORRUPT: "Fetch {path} again, or re-save it from a trusted copy",
}


def content_finding(
    rel_path: str,
    rule: Rule,
    message: str,
    details: dict[str, object] | None = None,
    *,
    model: str | None = None,
) -> Finding:
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
    """The reader's view of the file, or the finding that says why there is none."""
    path = root / rel_path
    try:
        reason = unreadable_reason(path)
        if reason is not None:
            return content_finding(rel_path, Rule.NOT_A_CHECKPOINT, reason, model=model)
        return read_checkpoint(path)
    except CheckpointReadError as exc:
        return content_finding(rel_path, exc.rule, exc.message, exc.details, model=model)
    except OSError as exc:
        return content_finding(
            rel_path,
            Rule.NOT_A_CHECKPOINT,
            f"cannot be read: {exc.strerror or exc}",
            {"errno": exc.errno},
            model=model,
        )
    except Exception as exc:  # contain reader bugs: a finding about this file, never a traceback
        return content_finding(
            rel_path,
            Rule.CORRUPT,
            f"could not be parsed ({type(exc).__name__}: {exc})",
            {"internal_error": repr(exc)},
            model=model,
        )
