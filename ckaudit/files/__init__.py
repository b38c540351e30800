"""The file checks: repository and environment findings for checkpoint files, torch-free.

Entry points (see `engine`): `open_scope`, `check_file`, `check_checkpoints`, `scan_files`, `report_of`.
"""

from __future__ import annotations

from ckaudit.files.engine import (
    FileOutcome,
    FileScope,
    check_checkpoints,
    check_file,
    open_scope,
    report_of,
    scan_files,
)

__all__ = [
    "FileOutcome",
    "FileScope",
    "check_checkpoints",
    "check_file",
    "open_scope",
    "report_of",
    "scan_files",
]
