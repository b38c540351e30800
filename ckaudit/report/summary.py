"""The Markdown job summary GitHub shows on a run's page (`$GITHUB_STEP_SUMMARY`)."""

from __future__ import annotations

from ckaudit.findings import Finding, Report, Severity, Verdict
from ckaudit.report.details import view
from ckaudit.report.text import summary_line

_VERDICT_MARK = {
    Verdict.OK: "✅ ok",
    Verdict.CODE: "❌ code",
    Verdict.REPOSITORY: "❌ repository",
    Verdict.ENVIRONMENT: "⚠️ environment",
}


def _cell(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(value: str) -> str:
    return f"`` {value} ``" if "`" in value else f"`{value}`"


def _checkpoint_table(report: Report) -> list[str]:
    rows = ["| checkpoint | model | verdict | findings |", "|---|---|---|---|"]
    for result in report.checkpoints:
        rules = ", ".join(dict.fromkeys(f.rule.value for f in result.findings))
        rows.append(
            f"| {_cell(_code(result.path))} | {_cell(result.model or '')} | "
            f"{_VERDICT_MARK[result.verdict]} | {_cell(rules)} |"
        )
    return rows


def _finding_item(finding: Finding) -> list[str]:
    subject = f"{_code(finding.checkpoint)}: " if finding.checkpoint else ""
    lines = [f"- **{finding.severity.value}** `{finding.rule.value}` {subject}{finding.message}"]
    for row in view(finding).shapes:
        lines.append(
            f"  - {_code(row.key)}: {_code(row.checkpoint)} in the checkpoint, "
            f"{_code(row.model)} in the model"
        )
    for label, count, entries in view(finding).lists:
        lines.append(f"  - {label} ({count}): " + ", ".join(_code(e) for e in entries))
    if finding.location is not None:
        loc = finding.location
        where = f"{loc.path}:{loc.line}" if loc.line else loc.path
        snippet = f" {_code(loc.snippet.strip())}" if loc.snippet else ""
        lines.append(f"  - at {_code(where)}{snippet}")
    if finding.fix:
        lines.append(f"  - fix: {finding.fix}")
    return lines


def render(report: Report) -> str:
    findings = report.all_findings()
    icon = "❌" if report.fails(Severity.ERROR) else "⚠️" if findings else "✅"
    lines = [f"## {icon} ckaudit {report.command}", "", summary_line(report), ""]
    if report.checkpoints:
        lines += [*_checkpoint_table(report), ""]
    if findings:
        lines += [f"### Findings ({len(findings)})", ""]
        for finding in findings:
            lines += _finding_item(finding)
        lines.append("")
    return "\n".join(lines) + "\n"
