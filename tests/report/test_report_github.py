"""GitHub workflow commands (escaping, severities, locations) and the Markdown job summary."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ckaudit.commands.common import color_wanted, finish, write_step_summary
from ckaudit.findings import CheckpointResult, Finding, Location, Report, Rule, Severity
from ckaudit.report import OutputFormat, render
from ckaudit.report.github import annotation, escape_data, escape_property
from ckaudit.report.github import render as render_github
from ckaudit.report.summary import render as render_summary


def test_escaping_of_data_and_properties() -> None:
    raw = "100% broken: a, b\r\nnext line"
    assert escape_data(raw) == "100%25 broken: a, b%0D%0Anext line"
    assert escape_property(raw) == "100%25 broken%3A a%2C b%0D%0Anext line"


def test_annotation_escapes_message_title_and_file() -> None:
    finding = Finding(
        Rule.SHAPE_MISMATCH,
        Severity.ERROR,
        "50% of fc:1, fc:2\nchanged",
        checkpoint="ck,pts/a:b.pt",
        location=Location("models/n,et.py", 7),
        fix="re-save",
    )
    line = annotation(finding, "/repo")
    assert line == (
        "::error file=models/n%2Cet.py,line=7,title=ckaudit shape-mismatch (ck%2Cpts/a%3Ab.pt)"
        "::50%25 of fc:1, fc:2%0Achanged%0AFix: re-save"
    )
    assert "\n" not in line


@pytest.mark.parametrize(
    "severity,command", [(Severity.ERROR, "error"), (Severity.WARNING, "warning"), (Severity.NOTE, "notice")]
)
def test_severity_maps_to_command(severity: Severity, command: str) -> None:
    assert annotation(Finding(Rule.CORRUPT, severity, "m"), "/r").startswith(f"::{command} title=")


def test_annotation_falls_back_to_the_checkpoint_file_relative_to_the_workspace() -> None:
    finding = Finding(Rule.TRUNCATED, Severity.ERROR, "short", checkpoint="checkpoints/a.pt")
    assert annotation(finding, "/ws/sample_repo", "/ws").startswith(
        "::error file=sample_repo/checkpoints/a.pt,title="
    )


def test_github_output_has_a_log_group_every_annotation_and_the_summary(report: Report) -> None:
    lines = render_github(report).splitlines()
    assert lines[0] == "::group::ckaudit report" and "::endgroup::" in lines
    annotations = [line for line in lines if line.startswith(("::error ", "::warning ", "::notice "))]
    assert len(annotations) == len(report.all_findings())
    assert "::error file=models/classifier.py,line=25," in "\n".join(annotations)
    assert lines[-1].startswith("7 checkpoints: 2 ok")


def test_summary_markdown(report: Report) -> None:
    markdown = render_summary(report)
    assert markdown.startswith("## ❌ ckaudit scan\n")
    assert "| `checkpoints/classifier_a_for_b.pth` | classifier_b | ❌ code | shape-mismatch |" in markdown
    assert "`conv1.weight`: `[16, 3, 3, 3]` in the checkpoint, `[16, 1, 3, 3]` in the model" in markdown
    assert render_summary(Report("/r", "scan")).startswith("## ✅ ckaudit scan")


def test_summary_is_appended_to_github_step_summary(tmp_path: Path, report: Report) -> None:
    target = tmp_path / "summary.md"
    target.write_text("earlier step\n")
    write_step_summary(report, {"GITHUB_STEP_SUMMARY": str(target)})
    write_step_summary(report, {})  # unset: nothing written anywhere
    text = target.read_text()
    assert text.startswith("earlier step\n## ❌ ckaudit scan")
    assert text.count("## ❌ ckaudit scan") == 1


def test_finish_writes_output_sarif_and_summary(
    tmp_path: Path, report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    args = argparse.Namespace(
        format=OutputFormat.GITHUB,
        output=tmp_path / "out.txt",
        sarif_output=tmp_path / "out.sarif",
        fail_on=Severity.ERROR,
    )
    assert finish(report, args) == 1
    assert (tmp_path / "out.txt").read_text().startswith("::group::")
    assert '"version": "2.1.0"' in (tmp_path / "out.sarif").read_text()
    assert "ckaudit scan" in (tmp_path / "summary.md").read_text()
    clean = Report("/r", "scan", (CheckpointResult("a.pt", "m", "zip", 1, 1),))
    assert (
        finish(
            clean,
            argparse.Namespace(format=OutputFormat.JSON, output=tmp_path / "o.json", fail_on=Severity.ERROR),
        )
        == 0
    )


class _Tty:
    def isatty(self) -> bool:
        return True


def test_colour_decision() -> None:
    assert color_wanted(OutputFormat.TEXT, _Tty(), {}) is True  # type: ignore[arg-type]
    assert color_wanted(OutputFormat.TEXT, _Tty(), {"NO_COLOR": "1"}) is False  # type: ignore[arg-type]
    assert color_wanted(OutputFormat.JSON, _Tty(), {}) is False  # type: ignore[arg-type]
    assert color_wanted(OutputFormat.TEXT, object(), {}) is False  # type: ignore[arg-type]


def test_every_output_format_maps_to_a_reporter(report: Report) -> None:
    for fmt in OutputFormat:
        assert callable(fmt.reporter())
        assert render(report, fmt).strip()
