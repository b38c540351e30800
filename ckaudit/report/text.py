"""Plain text for a terminal (placeholder until the reports issue builds the full one)."""

from __future__ import annotations

from ckaudit.findings import Report


def render(report: Report) -> str:
    lines = []
    for result in report.checkpoints:
        lines.append(f"{result.path}  [{result.verdict.value}]")
        for f in result.findings:
            lines.append(f"  {f.severity.value}: {f.rule.value}: {f.message}")
    for f in report.findings:
        lines.append(f"{f.severity.value}: {f.rule.value}: {f.message}")
    summary = report.summary()
    lines.append(", ".join(f"{v} {k}" for k, v in summary.items()))
    return "\n".join(lines) + "\n"
