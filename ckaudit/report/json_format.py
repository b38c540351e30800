"""SPEC's JSON shape: one object, version 1, documented field by field in docs/json-format.md.

Stability: fields are only ever added; a rename or removal would bump "version".
"""

from __future__ import annotations

import json
from typing import Any

from ckaudit import __version__
from ckaudit.finding_codec import finding_dict
from ckaudit.findings import CheckpointResult, Report
from ckaudit.report.groups import groups_json


def checkpoint_dict(result: CheckpointResult) -> dict[str, Any]:
    """A checkpoint's JSON entry; the key lists only when the checkpoint failed to load (the HTML tree
    diff)."""
    extra: dict[str, Any] = {}
    if result.model_keys is not None and result.checkpoint_keys is not None:
        extra = {
            "model_keys": list(result.model_keys),
            "checkpoint_keys": list(result.checkpoint_keys),
            "checkpoint_container": result.checkpoint_container,
        }
    return {
        "path": result.path,
        "model": result.model,
        "format": result.format,
        "verdict": result.verdict.value,
        "tensors": result.tensors,
        "bytes": result.bytes,
        "registered": result.registered,
        "loads": not result.fails,
        "findings": [finding_dict(f) for f in result.findings],
        **extra,
    }


def report_dict(report: Report) -> dict[str, Any]:
    """The JSON report (version 1): the tool, every checkpoint, the findings of no single checkpoint, the
    verdict counts and groups."""
    return {
        "version": 1,
        "tool": {"name": "ckaudit", "version": __version__, "command": report.command},
        "root": report.root,
        "checkpoints": [checkpoint_dict(c) for c in report.checkpoints],
        "findings": [finding_dict(f) for f in report.findings],
        "summary": report.summary(),
        "groups": groups_json(report.checkpoints),
    }


def render(report: Report) -> str:
    return json.dumps(report_dict(report), indent=2, sort_keys=False, default=str) + "\n"
