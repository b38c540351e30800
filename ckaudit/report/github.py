"""GitHub Actions workflow commands: one annotation per finding, the full text report in a log group.

Escaping follows the runner's rules: in the message (data) `%`, `\\r`, `\\n`; in properties (`file`,
`title`, …) additionally `:` and `,`, which would otherwise end the property.
"""

from __future__ import annotations

from ckaudit.findings import Finding, Report, Severity
from ckaudit.report import text
from ckaudit.report.details import view
from ckaudit.report.paths import primary_location, relative_path

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def escape_data(value: str) -> str:
    """A workflow command's message escaped as GitHub requires (%, CR, LF), so a multi-line message stays
    one annotation."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """An annotation property (file, title) escaped: as data, plus `:` and `,`, which separate properties."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def _message(finding: Finding) -> str:
    lines = [finding.message]
    shapes = [
        f"{r.key}: {r.checkpoint} in the checkpoint, {r.model} in the model" for r in view(finding).shapes
    ]
    lines += [row for row in shapes if row not in finding.message]  # one mismatch is already the message
    if finding.fix:
        lines.append(f"Fix: {finding.fix}")
    return "\n".join(lines)


def annotation(finding: Finding, root: str, source_root: str | None = None) -> str:
    """`::error file=…,line=…,title=…::message` for one finding."""
    props: list[tuple[str, str]] = []
    loc = primary_location(finding)
    if loc is not None:
        props.append(("file", relative_path(loc.path, root, source_root)))
        if loc.line:
            props.append(("line", str(loc.line)))
    title = f"ckaudit {finding.rule.value}"
    if finding.checkpoint:
        title += f" ({finding.checkpoint})"
    props.append(("title", title))
    joined = ",".join(f"{name}={escape_property(value)}" for name, value in props)
    return f"::{_COMMAND[finding.severity]} {joined}::{escape_data(_message(finding))}"


def _log_safe(line: str) -> str:
    """A report line must never be read as a workflow command."""
    return " " + line if line.startswith("::") else line


def render(report: Report, source_root: str | None = None) -> str:
    lines = ["::group::ckaudit report"]
    lines += [_log_safe(line) for line in text.render(report).splitlines()]
    lines.append("::endgroup::")
    lines += [annotation(f, report.root, source_root) for f in report.all_findings()]
    lines.append(text.summary_line(report))
    return "\n".join(lines) + "\n"
