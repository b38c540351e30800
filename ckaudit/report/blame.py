"""`blame` as text: the answer in a screenful — last good, first bad, why, and the code lines that changed.

Per break: the two commits, the findings at the first bad one (one line each), and the model's source diff
between them trimmed to the changed lines (`compare/sourcediff.py`), the hunks at the findings' lines
first. Then one line on where HEAD stands. Every commit's status is listed only on `--verbose`;
`--format json` keeps the full history and findings.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ckaudit.compare import Blame, Step, by_relevance, trimmed
from ckaudit.report.details import other_locations
from ckaudit.report.text import wrap
from ckaudit.scan import without_causes

WIDTH = 80
MAX_FINDINGS = 3
MAX_SIGNATURE = 4


def _fit(text: str, indent: str = "    ") -> str:
    line = f"{indent}{text}"
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


def commit_line(step: Step) -> str:
    c = step.commit
    return f"{c.sha[:10]}  {c.date[:10]}  {c.author}  {c.subject}"


def _break_lines(blame: Blame, sha: str, change: dict[str, Any]) -> list[str]:
    last, now = blame.step(blame.last_loads[sha]), blame.step(sha)
    assert last is not None and now is not None
    lines = [_fit(f"last loads   {commit_line(last)}", "  "), _fit(f"first fails  {commit_line(now)}", "  ")]
    if sha in blame.introduced_by:
        lines.append(f"  introduced by {blame.introduced_by[sha][:10]} on the merged branch")
    for finding in now.findings[:MAX_FINDINGS]:
        message = without_causes(finding.message)  # the changed lines are the diff shown below
        lines += wrap(f"{finding.rule.value}: {message}", "    ", "      ")
    if len(now.findings) > MAX_FINDINGS:
        lines.append(f"    … {len(now.findings) - MAX_FINDINGS} more findings (`--format json`)")
    if not now.findings:
        lines += [_fit(text) for text in signature_lines(change["signature"])[:MAX_SIGNATURE]]
    code = change["source_diff"]
    focus = [
        (loc.path, loc.line)
        for f in now.findings
        for loc in (f.location, *other_locations(f))
        if loc and loc.line
    ]
    for text in trimmed(by_relevance(code["lines"], focus), code["command"]):
        lines.append(_fit(text if text[:1] in "+-…" else f"changed at {text}"))
    return [*lines, ""]


def signature_lines(diff: dict[str, list[Any]]) -> list[str]:
    out = [
        f"changed {c['key']}: {c['before'][0]} {c['before'][1]} -> {c['after'][0]} {c['after'][1]}"
        for c in diff["changed"]
    ]
    out += [f"added {key}" for key in diff["added"][:10]]
    out += [f"removed {key}" for key in diff["removed"][:10]]
    return out


def _standing(blame: Blame, verbose: bool) -> list[str]:
    counts = Counter(s.status for s in blame.history)
    latest = next((s for s in reversed(blame.history) if s.status != "unbuildable"), None)
    tally = ", ".join(f"{counts[k]} {k}" for k in ("loads", "fails", "unbuildable") if counts[k])
    where = f"now: {latest.status} at {latest.commit.sha[:10]} ({latest.commit.subject})" if latest else ""
    lines = [
        _fit(where or "now: no commit builds the model", "  "),
        f"  {len(blame.history)} commits: {tally}",
    ]
    if verbose:
        lines += ["", "history:", *(f"  {s.status:<11} {commit_line(s)}" for s in blame.history)]
    else:
        lines[-1] += " (`--verbose` lists them)"
    return lines


def render_text(blame: Blame, changes: dict[str, Any], verbose: bool = False) -> str:
    """`changes`: the JSON's per-break evidence (`signature`, `source_diff`)."""
    lines = [f"{blame.checkpoint} (model {blame.model})", ""]
    for step in blame.history:  # breaks and fixes in the order they happened
        if step.commit.sha in changes:
            lines += _break_lines(blame, step.commit.sha, changes[step.commit.sha])
        elif step.commit.sha in blame.fixes:
            lines += [_fit(f"loads again  {commit_line(step)}", "  "), ""]
    if not blame.breaks:
        statuses = {s.status for s in blame.history} - {"unbuildable"}
        every = "/".join(sorted(statuses)) or "is unbuildable"
        lines += [f"  no break found: every buildable commit {every}", ""]
    lines += _standing(blame, verbose)
    return "\n".join(lines) + "\n"
