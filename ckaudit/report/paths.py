"""Where a finding points, as a relative posix path every reporter agrees on."""

from __future__ import annotations

import os
from pathlib import PurePosixPath

from ckaudit.findings import Finding, Location


def relative_path(path: str, root: str, source_root: str | None = None) -> str:
    """`path` (relative to the report root, or absolute) relative to `source_root` when it lies inside it
    (annotations and SARIF need repository-relative paths when the scan root is a subfolder), else to
    `root`; a path outside both is returned as given."""
    absolute = os.path.normpath(os.path.join(os.path.abspath(root), path))
    for base in (source_root, root):
        if not base:
            continue
        base_abs = os.path.abspath(base)
        if absolute == base_abs or absolute.startswith(base_abs.rstrip(os.sep) + os.sep):
            return PurePosixPath(*os.path.relpath(absolute, base_abs).split(os.sep)).as_posix()
    return path.replace(os.sep, "/")


def primary_location(finding: Finding) -> Location | None:
    """The code line to change when there is one, else the checkpoint file itself."""
    if finding.location is not None:
        return finding.location
    if finding.checkpoint:
        return Location(finding.checkpoint)
    return None


def shape_text(shape: object) -> str:
    """[16, 3, 3, 3] whatever sequence type carried it; scalars as []."""
    if isinstance(shape, (list, tuple)):
        return "[" + ", ".join(str(d) for d in shape) + "]"
    return str(shape)
