"""SARIF output against the official SARIF 2.1.0 schema, with stable fingerprints and relative locations."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from ckaudit.findings import RULES, CheckpointResult, Finding, Location, Report, Rule, Severity
from ckaudit.report.sarif import FINGERPRINT_KEY, render, sarif_dict

SCHEMA = json.loads((Path(__file__).parent.parent / "data" / "sarif-schema-2.1.0.json").read_text())
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)  # the schema declares draft-04


def _validate(text: str) -> dict:
    document = json.loads(text)
    VALIDATOR.validate(document)
    return document


def _every_rule_report(root: str) -> Report:
    findings = tuple(
        Finding(
            rule,
            Severity.ERROR if i % 3 else Severity.WARNING,
            f"{rule.value} happened: 50% of keys, a:b",
            checkpoint=f"ckpt/{rule.value}.pt",
            model="m",
            location=Location("models/net.py", 10 + i, "self.fc = nn.Linear(3, 4)") if i % 2 else None,
            details={"key": f"layer{i}.weight"},
        )
        for i, rule in enumerate(Rule)
    )
    loose = (Finding(Rule.DANGLING_REFERENCE, Severity.NOTE, "no location at all"),)
    return Report(root, "scan", (CheckpointResult("ckpt/all.pt", "m", "zip", 3, 10, findings),), loose)


def test_empty_report_is_valid() -> None:
    document = _validate(render(Report("/r", "scan")))
    run = document["runs"][0]
    assert run["results"] == []
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [r.value for r in RULES]


def test_every_rule_and_locations_with_and_without_lines_are_valid(tmp_path: Path) -> None:
    document = _validate(render(_every_rule_report(str(tmp_path))))
    results = document["runs"][0]["results"]
    assert len(results) == len(Rule) + 1
    for result in results:
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert not location["artifactLocation"]["uri"].startswith("/")
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results} >= {
        "models/net.py",
        "ckpt/file-missing.pt",
        "ckaudit.yaml",
    }


def test_sample_report_is_valid_and_points_at_the_defining_line(report: Report) -> None:
    results = _validate(render(report))["runs"][0]["results"]
    shape = next(r for r in results if r["ruleId"] == "shape-mismatch")
    region = shape["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 25, "snippet": {"text": "self.conv1 = nn.Conv2d(1, 16, 3)"}}
    assert shape["level"] == "error" and "Fix: Re-save" in shape["message"]["text"]


def test_rules_carry_help_level_and_cause_tags() -> None:
    rules = sarif_dict(Report("/r", "scan"))["runs"][0]["tool"]["driver"]["rules"]
    by_id = {r["id"]: r for r in rules}
    assert by_id["shape-mismatch"]["properties"]["tags"][:2] == ["ckaudit", "code"]
    assert by_id["dtype-change"]["defaultConfiguration"]["level"] == "warning"
    assert "security" in by_id["unsafe-pickle"]["properties"]["tags"]
    assert all(r["help"]["text"] and r["help"]["markdown"] and r["shortDescription"]["text"] for r in rules)


def test_fingerprints_are_stable_across_machines_and_line_moves(tmp_path: Path) -> None:
    a = sarif_dict(_every_rule_report("/home/alice/repo"))["runs"][0]["results"]
    b = sarif_dict(_every_rule_report(str(tmp_path / "ci" / "checkout")))["runs"][0]["results"]
    prints = [r["partialFingerprints"][FINGERPRINT_KEY] for r in a]
    assert prints == [r["partialFingerprints"][FINGERPRINT_KEY] for r in b]
    assert len(set(prints)) == len(prints)
    moved = Finding(
        Rule.SHAPE_MISMATCH,
        Severity.ERROR,
        "m",
        checkpoint="c.pt",
        location=Location("models/net.py", 99),
        details={"key": "fc.weight"},
    )
    same = Finding(
        Rule.SHAPE_MISMATCH,
        Severity.ERROR,
        "m",
        checkpoint="c.pt",
        location=Location("models/net.py", 12),
        details={"key": "fc.weight"},
    )
    fp = [
        sarif_dict(Report("/r", "scan", findings=(f,)))["runs"][0]["results"][0]["partialFingerprints"]
        for f in (moved, same)
    ]
    assert fp[0] == fp[1]


@pytest.mark.parametrize("source_root,expected", [(None, "models/net.py"), ("/w", "repo/models/net.py")])
def test_paths_are_relative_to_the_checkout(source_root: str | None, expected: str) -> None:
    finding = Finding(Rule.MISSING_KEYS, Severity.ERROR, "m", location=Location("models/net.py", 3))
    result = sarif_dict(Report("/w/repo", "scan", findings=(finding,)), source_root)["runs"][0]["results"][0]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == expected


def test_the_schema_check_has_teeth() -> None:
    document = sarif_dict(Report("/r", "scan", findings=(Finding(Rule.CORRUPT, Severity.ERROR, "m"),)))
    document["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(document)


def test_layers_one_change_resized_are_related_locations(tmp_path: Path) -> None:
    also = [{"path": "models/mlp.py", "line": 8, "snippet": "self.out = nn.Linear(width, classes)"}]
    finding = Finding(
        Rule.SHAPE_MISMATCH,
        Severity.ERROR,
        "3 tensors in 2 layers (fc1, out) resized by one change: 64 -> 128",
        checkpoint="ckpt/a.pt",
        model="mlp",
        location=Location("models/mlp.py", 7, "self.fc1 = nn.Linear(inputs, width)"),
        details={"mismatches": [], "also_at": also},
    )
    report = Report(str(tmp_path), "scan", (CheckpointResult("ckpt/a.pt", "mlp", "zip", 3, 10, (finding,)),))
    (result,) = _validate(render(report))["runs"][0]["results"]
    (related,) = result["relatedLocations"]
    assert related["physicalLocation"]["artifactLocation"]["uri"] == "models/mlp.py"
    assert related["physicalLocation"]["region"]["startLine"] == 8
