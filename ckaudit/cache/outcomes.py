"""Content-keyed cache of compatibility results, under the git directory.

A key is the sha256 of everything a result depends on: the blob ids of the model's source files, the
factory/build/kwargs, the project interpreter and its torch version, the checkpoint's state-dict
signature and the entry's key/strict/ignore. One JSON file per key, written to a temporary file and
`os.replace`d into place, so two worktrees or terminals sharing the cache can never leave a torn file;
an unreadable entry is a miss. Deleting `<git-common-dir>/ckaudit/cache` changes nothing but speed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ckaudit import proc
from ckaudit.findings import Finding, Location, Rule, Severity

if TYPE_CHECKING:
    from ckaudit.reader.types import CheckpointInfo

CACHE_VERSION = 1
_VERSION_LINE = re.compile(r"""^__version__\s*=\s*['"]([^'"]+)['"]""", re.M)
_torch_versions: dict[str, str] = {}


class SigCache:
    """One JSON file per key under `directory`; `directory=None` is a disabled cache (`--no-cache`)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    @classmethod
    def for_repo(cls, repo: Path, enabled: bool = True) -> SigCache:
        if not enabled:
            return cls(None)
        result = proc.run(["git", "-C", str(repo), "rev-parse", "--git-common-dir"], check=False)
        if result.returncode != 0:
            return cls(None)
        common = Path(result.stdout.decode().strip())
        common = common if common.is_absolute() else repo / common
        return cls(common / "ckaudit" / "cache" / f"v{CACHE_VERSION}")

    def _file(self, kind: str, key: str) -> Path | None:
        return None if self.directory is None else self.directory / kind / key[:2] / f"{key}.json"

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        file = self._file(kind, key)
        if file is None:
            return None
        try:
            value = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def put(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        """Write atomically; a cache that cannot be written is only a slower run."""
        file = self._file(kind, key)
        if file is None:
            return
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(value, handle, sort_keys=True, separators=(",", ":"), default=str)
            os.replace(tmp, file)
        except OSError:
            return


def make_key(parts: Mapping[str, Any]) -> str:
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def torch_version(python: str) -> str:
    """The project interpreter's torch version, from `torch/version.py` beside it (no import)."""
    if python not in _torch_versions:
        _torch_versions[python] = _version_from_files(Path(python)) or _version_from_interpreter(python)
    return _torch_versions[python]


def _version_from_files(python: Path) -> str | None:
    prefix = python.parent.parent
    patterns = ("lib/python3*/site-packages/torch/version.py", "Lib/site-packages/torch/version.py")
    for pattern in patterns:
        for candidate in sorted(prefix.glob(pattern)):
            try:
                match = _VERSION_LINE.search(candidate.read_text(encoding="utf-8"))
            except OSError:
                continue
            if match:
                return match.group(1)
    return None


def _version_from_interpreter(python: str) -> str:
    code = "import importlib.metadata as m\ntry: print(m.version('torch'))\nexcept Exception: print('none')"
    try:
        return proc.run([python, "-S", "-c", code], timeout=30).stdout.decode().strip() or "unknown"
    except proc.CommandError:
        return "unknown"


def checkpoint_signature(info: CheckpointInfo) -> str:
    """What a dry run sees of a checkpoint: every state-dict candidate's keys, shapes, dtypes and metadata,
    and the hyperparameters it records (config-drift compares them with the build)."""
    candidates = [
        {
            "key": c.key,
            "tensors": sorted((k, list(t.shape), t.dtype) for k, t in c.tensors.items()),
            "metadata": c.metadata,
        }
        for c in info.candidates
    ]
    return make_key(
        {
            "format": info.format,
            "candidates": candidates,
            "globals": list(info.globals),
            "hyperparameters": info.hyperparameters,
        }
    )


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    loc = finding.location
    return {
        "rule": finding.rule.value,
        "severity": finding.severity.value,
        "message": finding.message,
        "checkpoint": finding.checkpoint,
        "model": finding.model,
        "location": None if loc is None else {"path": loc.path, "line": loc.line, "snippet": loc.snippet},
        "fix": finding.fix,
        "details": dict(finding.details),
    }


def finding_from_dict(data: Mapping[str, Any]) -> Finding:
    loc = data.get("location")
    return Finding(
        rule=Rule(data["rule"]),
        severity=Severity(data["severity"]),
        message=data["message"],
        checkpoint=data.get("checkpoint"),
        model=data.get("model"),
        location=None if not loc else Location(loc["path"], loc.get("line"), loc.get("snippet")),
        fix=data.get("fix", ""),
        details=data.get("details") or {},
    )
