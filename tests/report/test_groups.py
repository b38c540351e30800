"""Grouping: equal findings for one model are one block; any difference keeps checkpoints apart."""

from __future__ import annotations

import dataclasses

from ckaudit.findings import CheckpointResult, Finding, Location, Report, Rule, Severity
from ckaudit.report.groups import group_results, groups_json
from ckaudit.report.text import render


def _result(path: str, model: str = "net", shape: int = 64, message_prefix: bool = False) -> CheckpointResult:
    message = f"fc1.weight: [{shape}, 3] in the checkpoint, [128, 3] in the model"
    finding = Finding(
        Rule.SHAPE_MISMATCH,
        Severity.ERROR,
        f"{path}: {message}" if message_prefix else message,
        checkpoint=path,
        model=model,
        location=Location("models/net.py", 7, "self.fc1 = nn.Linear(3, width)"),
        fix="Restore the size.",
        details={"key": "fc1.weight", "checkpoint_shape": [shape, 3], "model_shape": [128, 3]},
    )
    return CheckpointResult(path, model, "torch-zip", 2, 100, (finding,))


def test_equal_findings_group_and_differences_do_not() -> None:
    results = [
        _result("a.pt"),
        _result("b.pt", shape=32),  # another shape: another cause
        _result("c.pt", message_prefix=True),  # the message names the checkpoint: still the same cause
        _result("d.pt", model="other"),  # another model
        CheckpointResult("e.pt", "net", "torch-zip", 2, 100),  # no findings: alone
        CheckpointResult("f.pt", "net", "torch-zip", 2, 100),
    ]
    assert [g.paths for g in group_results(results)] == [
        ("a.pt", "c.pt"),
        ("b.pt",),
        ("d.pt",),
        ("e.pt",),
        ("f.pt",),
    ]
    assert groups_json(results)[0] == {"checkpoints": ["a.pt", "c.pt"], "model": "net", "verdict": "code"}


def test_a_long_group_lists_paths_in_three_lines_at_most() -> None:
    results = tuple(_result(f"checkpoints/run_{i:03d}/model_final.pt") for i in range(40))
    text = render(Report(root="/r", command="scan", checkpoints=results))
    lines = text.splitlines()
    assert lines[0] == "40 checkpoints  [fails: code]  model net"
    assert lines[1].startswith("  checkpoints/run_000/model_final.pt, checkpoints/run_001/")
    assert "more (`--format json` lists all)" in lines[3]
    assert lines[4].startswith("  error shape-mismatch: fc1.weight")
    assert text.count("error shape-mismatch") == 1
    assert all(len(line) <= 80 for line in lines)


def test_a_single_result_keeps_its_one_line_header() -> None:
    result = dataclasses.replace(_result("checkpoints/a.pt"))
    text = render(Report(root="/r", command="scan", checkpoints=(result,)))
    assert text.splitlines()[0] == "checkpoints/a.pt  [fails: code]  model net"
