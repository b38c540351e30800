"""The page of `blame`: checkpoints × commits, and one panel per break (the last commit that loaded, the
first that failed, the model's state-dict diff between them and the findings) that the matrix links to.
Drawn from blame's JSON (`commands.blame.blame_dict`), one object per checkpoint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ckaudit.report.html import findings, matrix, page


def diff_lines(signature: Mapping[str, Any]) -> list[str]:
    """The state-dict diff between the last commit that loaded and the first that failed, one line each."""
    out = [
        f"changed {c['key']}: {c['before'][0]} {c['before'][1]} -> {c['after'][0]} {c['after'][1]}"
        for c in signature.get("changed") or []
    ]
    out += [f"added {key}" for key in signature.get("added") or []]
    out += [f"removed {key}" for key in signature.get("removed") or []]
    return out


def _commit_line(step: Mapping[str, Any] | None) -> str:
    if step is None:
        return ""
    return (
        f'<span class="mono">{page.esc(str(step["commit"])[:10])}</span> '
        f"{page.esc(str(step.get('date'))[:10])} {page.esc(step.get('author'))} — "
        f"{page.esc(step.get('subject'))}"
    )


def _break_panel(index: int, blame: Mapping[str, Any], sha: str) -> str:
    steps = {str(s["commit"]): s for s in blame.get("history") or []}
    change = (blame.get("changes") or {}).get(sha) or {}
    last = steps.get(str(change.get("last_loads")))
    now = steps.get(sha)
    target = matrix.break_anchor(index, sha)
    cards, _ = findings.cards((now or {}).get("findings") or [], f"{target}-f")
    diff = diff_lines(change.get("signature") or {})
    code = [str(line) for line in (change.get("source_diff") or {}).get("lines") or []]
    merged = (blame.get("introduced_by") or {}).get(sha)
    short = page.esc(str(merged)[:10])
    via = f'<div>introduced by <span class="mono">{short}</span> on the merged branch</div>'
    lines = "".join(f'<pre class="mono">{page.esc(d)}</pre>' for d in diff)
    return (
        f'<details id="{target}" class="card" data-commit="{page.esc(sha)}"><summary>'
        f"<b>breaks at</b> {_commit_line(now)}</summary>"
        f"<div>last loads: {_commit_line(last)}</div>"
        + (via if merged else "")
        + (f"<h3>Model state-dict diff</h3>{lines}" if diff else "")
        + (
            "<h3>Changed lines</h3>" + "".join(f'<pre class="mono">{page.esc(c)}</pre>' for c in code)
            if code
            else ""
        )
        + f"<h3>Findings at the first bad commit</h3>{cards}</details>"
    )


def row_panel(index: int, blame: Mapping[str, Any]) -> str:
    breaks = [str(b) for b in blame.get("breaks") or []]
    counts: dict[str, int] = {}
    for step in blame.get("history") or []:
        counts[str(step.get("status"))] = counts.get(str(step.get("status")), 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    body = (
        "".join(_break_panel(index, blame, sha) for sha in breaks) or '<div class="mute">no break found</div>'
    )
    return (
        f'<section data-checkpoint="{page.esc(blame.get("checkpoint"))}"><h3><span class="mono">'
        f'{page.esc(blame.get("checkpoint"))}</span> <span class="mute">'
        f"model {page.esc(blame.get('model'))} · "
        f"{page.esc(tally)}</span></h3>{body}</section>"
    )


def render(blames: Sequence[Mapping[str, Any]], root: str = "") -> str:
    columns = matrix.columns_of(blames)
    rows = matrix.blame_rows(blames, columns)
    return page.document(
        "ckaudit blame",
        f"{root} — {len(blames)} checkpoint(s) × {len(columns)} commit(s) that touched model code, "
        "oldest first",
        [
            f'<section id="matrix"><h2>Checkpoints × commits</h2>{matrix.table(columns, rows)}</section>',
            '<section id="breaks"><h2>Where each one broke</h2>'
            + "".join(row_panel(i, b) for i, b in enumerate(blames))
            + "</section>",
        ],
    )
