"""JSON output: SPEC's documented shape, every field present, round-trippable."""

from __future__ import annotations

import json

from ckaudit import __version__
from ckaudit.findings import Report
from ckaudit.report.json_format import render


def test_top_level_shape(report: Report) -> None:
    document = json.loads(render(report))
    assert list(document) == ["version", "tool", "root", "checkpoints", "findings", "summary", "groups"]
    assert document["version"] == 1
    assert document["tool"] == {"name": "ckaudit", "version": __version__, "command": "scan"}
    assert document["summary"] == {"checkpoints": 7, "ok": 2, "code": 3, "repository": 1, "environment": 1}


def test_checkpoints_and_findings(report: Report) -> None:
    document = json.loads(render(report))
    entry = document["checkpoints"][1]
    assert {k: entry[k] for k in ("path", "model", "format", "verdict", "tensors", "bytes")} == {
        "path": "checkpoints/classifier_a_for_b.pth",
        "model": "classifier_b",
        "format": "zip",
        "verdict": "code",
        "tensors": 4,
        "bytes": 438_000,
    }
    finding = entry["findings"][0]
    assert (
        finding["rule"] == "shape-mismatch" and finding["cause"] == "code" and finding["severity"] == "error"
    )
    assert finding["location"] == {
        "path": "models/classifier.py",
        "line": 25,
        "snippet": "self.conv1 = nn.Conv2d(1, 16, 3)",
    }
    assert finding["details"]["mismatches"][0]["model_shape"] == [16, 1, 3, 3]
    assert [f["rule"] for f in document["findings"]] == ["dangling-reference"]
    assert document["checkpoints"][-1]["registered"] is False
