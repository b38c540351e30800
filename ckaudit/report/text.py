"""Text for a terminal: grouped by checkpoint with its verdict, readable at 80 columns.

Colour is decided by the caller (`color=`): the reporter stays a pure function of the report.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from collections.abc import Iterable

from ckaudit.findings import CheckpointResult, Finding, Location, Report, Severity, Verdict, plural
from ckaudit.report.details import DetailView, ShapeRow, other_locations, view
from ckaudit.report.groups import Group, group_results
from ckaudit.scan import changed_texts, without_causes

WIDTH = 80
SCREENFUL = 24  # lines per checkpoint by default: one terminal screen
GROUP_PATH_LINES = 3  # a group's checkpoint list, wrapped, before "… and N more"
CHANGED_SHOWN = 3  # changed lines named under a finding (JSON keeps them all)
FINDING_INDENT = "  "
DETAIL_INDENT = "      "

_RESET = "\033[0m"
_SEVERITY_STYLE = {Severity.ERROR: "\033[1;31m", Severity.WARNING: "\033[33m", Severity.NOTE: "\033[36m"}
_VERDICT_STYLE = {Verdict.OK: "\033[32m"}
_BAD_VERDICT_STYLE = "\033[1;31m"
_BOLD = "\033[1m"


def _paint(text: str, style: str, color: bool) -> str:
    return f"{style}{text}{_RESET}" if color else text


_CODE_SPAN = re.compile(r"`[^`\n]+`")
_KEPT_SPACE = "\u00a0"  # not whitespace to textwrap: a code span that fits on a line is never split


def _unbroken_code(text: str, room: int) -> str:
    """Code spans (`ckaudit fix PATH --registry`) that fit in `room` keep their spaces on one line, so a
    command copied from the terminal is one command."""
    return _CODE_SPAN.sub(
        lambda m: m.group(0).replace(" ", _KEPT_SPACE) if len(m.group(0)) <= room else m.group(0), text
    )


def wrap(text: str, first: str, rest: str, *, styled_first: str | None = None) -> list[str]:
    """Wrap at WIDTH without breaking tokens (paths, keys) or short code spans; restyle the first prefix
    after measuring."""
    lines = textwrap.wrap(
        _unbroken_code(text, WIDTH - len(rest)),
        WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first.rstrip()]
    lines = [line.replace(_KEPT_SPACE, " ") for line in lines]
    if styled_first is not None:
        lines[0] = styled_first + lines[0][len(first) :]
    return lines


def _shape_table(rows: tuple[ShapeRow, ...]) -> list[str]:
    header = ShapeRow("key", "checkpoint", "model")
    kw = max(len(r.key) for r in (header, *rows) if r.checkpoint)
    cw = max(len(r.checkpoint) for r in (header, *rows))
    if len(DETAIL_INDENT) + kw + cw + max(len(r.model) for r in rows) + 6 <= WIDTH:
        return [
            f"{DETAIL_INDENT}{r.key:<{kw}}   {r.checkpoint:<{cw}}   {r.model}".rstrip()
            for r in (header, *rows)
        ]
    lines = []
    for r in rows:  # too wide for a table: key, then the two shapes beneath it
        lines.append(f"{DETAIL_INDENT}{r.key}")
        if r.checkpoint:
            text = f"checkpoint {r.checkpoint}   model {r.model}"
            lines.extend(wrap(text, DETAIL_INDENT + "  ", DETAIL_INDENT + "  "))
    return lines


def _detail_lines(details: DetailView) -> list[str]:
    lines = _shape_table(details.shapes) if details.shapes else []
    for name, count, entries in details.lists:
        lines.append(f"{DETAIL_INDENT}{name} ({count}):")
        lines.extend(f"{DETAIL_INDENT}  {entry}" for entry in entries)
    if details.renames:
        lines.append(f"{DETAIL_INDENT}rename:")
        for old, new in details.renames:
            pair = f"{old} -> {new}" if new else old
            lines.extend(wrap(pair, DETAIL_INDENT + "  ", DETAIL_INDENT + "    "))
    for checkpoint, model in details.ambiguous:
        lines.extend(wrap(f"{checkpoint}  <->  {model}", f"{DETAIL_INDENT}ambiguous: ", DETAIL_INDENT + "  "))
    for name, text in details.extras:
        lines.extend(wrap(text, f"{DETAIL_INDENT}{name}: ", DETAIL_INDENT + "  "))
    return lines


def _location_lines(loc: Location | None) -> list[str]:
    if loc is None:
        return []
    where = f"{loc.path}:{loc.line}" if loc.line else loc.path
    snippet = (loc.snippet or "").strip()
    line = f"{DETAIL_INDENT}{where}  {snippet}".rstrip()
    if len(line) <= WIDTH or not snippet:
        return [line]
    room = WIDTH - len(DETAIL_INDENT) - 2
    return [
        f"{DETAIL_INDENT}{where}",
        f"{DETAIL_INDENT}  {snippet if len(snippet) <= room else snippet[: room - 3] + '...'}",
    ]


def _changed_lines(changed: list[str]) -> list[str]:
    """The lines the change touched that cause the finding, each on its own `changed:` line."""
    lines = []
    for text in changed[:CHANGED_SHOWN]:
        lines += wrap(text, f"{DETAIL_INDENT}changed: ", DETAIL_INDENT + "  ")
    if len(changed) > CHANGED_SHOWN:
        lines.append(f"{DETAIL_INDENT}… {plural(len(changed) - CHANGED_SHOWN, 'more changed line')}")
    return lines


def finding_lines(finding: Finding, color: bool = False, *, show_checkpoint: bool = False) -> list[str]:
    """`show_checkpoint`: the finding stands outside its checkpoint's block, so its message names it;
    inside the block the header does, and the message and location do not repeat it."""
    head = f"{finding.severity.value} {finding.rule.value}:"
    styled = (
        _paint(finding.severity.value, _SEVERITY_STYLE[finding.severity], color) + f" {finding.rule.value}:"
    )
    changed = changed_texts(finding.details)
    message = without_causes(finding.message) if changed else finding.message
    if show_checkpoint and finding.checkpoint:
        message = f"{finding.checkpoint}: {message}"
    elif finding.checkpoint and message.startswith(f"{finding.checkpoint}: "):
        message = message[len(finding.checkpoint) + 2 :]
    lines = wrap(
        message, f"{FINDING_INDENT}{head} ", DETAIL_INDENT, styled_first=f"{FINDING_INDENT}{styled} "
    )
    lines += _changed_lines(changed) + _detail_lines(view(finding))
    loc = finding.location
    if show_checkpoint or loc is None or loc.line is not None or loc.path != finding.checkpoint:
        lines += _location_lines(loc)
    for other in other_locations(finding):
        lines += _location_lines(other)
    if finding.fix:
        lines += wrap(finding.fix, f"{DETAIL_INDENT}fix: ", DETAIL_INDENT + "     ")
    return lines


def _label(result: CheckpointResult) -> str:
    verdict = result.verdict
    warnings = sum(f.severity is Severity.WARNING for f in result.findings)
    # "[ok]" beside "already fails at HEAD" would read as all clear: a checkpoint that does not load fails
    word = "fails" if result.fails else "ok"
    cause = f": {verdict.value}" if verdict is not Verdict.OK else ""
    return f"[{word}{cause}, {plural(warnings, 'warning')}]" if warnings else f"[{word}{cause}]"


def _header(group: Group, color: bool) -> list[str]:
    """One checkpoint: its path, verdict and model; a group: how many, then their paths."""
    result = group.first
    label = _label(result)
    style = _BAD_VERDICT_STYLE if result.fails else _VERDICT_STYLE[Verdict.OK]
    tail = f"model {result.model}" if result.model else "no model"
    if not result.registered:
        tail = "not registered"
    title = result.path if len(group.results) == 1 else f"{len(group.results)} checkpoints"
    plain = f"{title}  {label}  {tail}"
    styled = f"{_paint(title, _BOLD, color)}  {_paint(label, style, color)}  {tail}"
    lines = (
        [styled]
        if len(plain) <= WIDTH
        else [_paint(title, _BOLD, color), f"    {_paint(label, style, color)}  {tail}"]
    )
    if len(group.results) > 1:
        lines += _path_list(group.paths)
    return lines


def _path_list(paths: tuple[str, ...]) -> list[str]:
    lines = wrap(", ".join(paths), FINDING_INDENT, FINDING_INDENT)
    if len(lines) <= GROUP_PATH_LINES:
        return lines
    for shown in range(len(paths) - 1, 0, -1):  # the most paths that fit with the "… and N more" tail
        tail = f"… and {len(paths) - shown} more (`--format json` lists all)"
        lines = wrap(", ".join([*paths[:shown], tail]), FINDING_INDENT, FINDING_INDENT)
        if len(lines) <= GROUP_PATH_LINES:
            break
    return lines


def _checkpoint_block(group: Group, color: bool, limit: int | None) -> list[str]:
    """The header and its findings, cut after `limit` lines at a finding's end (JSON keeps them all)."""
    lines = _header(group, color)
    findings = group.first.findings
    for shown, finding in enumerate(findings):
        more = finding_lines(finding, color)
        if limit is not None and shown and len(lines) + len(more) > limit - 1:
            rest = len(findings) - shown
            lines.append(f"{FINDING_INDENT}… {plural(rest, 'more finding')} (`--format json` lists all)")
            break
        lines += more
    return [*lines, ""] if findings else lines


def summary_line(report: Report) -> str:
    counts = report.summary()
    verdicts = [f"{counts[v.value]} {v.value}" for v in Verdict if v is Verdict.OK or counts[v.value]]
    severities = Counter(f.severity for f in report.all_findings())
    found = [plural(severities[s], s.value) for s in reversed(Severity) if severities[s]]
    checkpoints = f"{plural(counts['checkpoints'], 'checkpoint')}: {', '.join(verdicts)}"
    return f"{checkpoints}; {', '.join(found) if found else 'no findings'}."


def _other_block(findings: Iterable[Finding], color: bool) -> list[str]:
    lines: list[str] = []
    for finding in findings:
        lines += finding_lines(finding, color, show_checkpoint=True)
    return ["Other findings", *lines, ""] if lines else []


def render(report: Report, color: bool = False, limit: int | None = SCREENFUL) -> str:
    """`limit`: lines per checkpoint or group of checkpoints (None: everything)."""
    lines: list[str] = []
    for group in group_results(report.checkpoints):
        lines += _checkpoint_block(group, color, limit)
    if lines and lines[-1] != "":
        lines.append("")
    lines += _other_block(report.findings, color)
    lines += wrap(summary_line(report), "", "  ")
    return "\n".join(lines) + "\n"
