"""The file checks: repository and environment findings for checkpoint files, torch-free.

Entry points (see `engine`): `open_scope`, `check_file`, `check_checkpoints`, `scan_files`, `report_of`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.files.content import read
    from ckaudit.files.engine import (
        FileOutcome,
        FileScope,
        check_checkpoints,
        check_file,
        discovered,
        is_environment,
        open_scope,
        report_of,
        repository_files,
        scan_files,
    )
    from ckaudit.files.environment import device_findings
    from ckaudit.files.missing import judged_from_lock
    from ckaudit.files.outside import checkpoints_outside_git
    from ckaudit.files.shard import parse_shard

__all__ = [
    "FileOutcome",
    "FileScope",
    "check_checkpoints",
    "check_file",
    "checkpoints_outside_git",
    "device_findings",
    "discovered",
    "is_environment",
    "judged_from_lock",
    "open_scope",
    "parse_shard",
    "read",
    "report_of",
    "repository_files",
    "scan_files",
]

__getattr__ = lazy_exports(__name__, __file__)
