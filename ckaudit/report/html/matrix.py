"""Checkpoints × commits: one row per checkpoint, one column per commit, each cell its verdict and cause.

Built from blame's JSON (each row one checkpoint's `history`) or from a scan's JSON (one column, the working
tree). A cell whose commit is one of the row's `breaks` (loads turns to fails) is marked and links to the
panel with that break's findings and diff lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ckaudit.report.html.page import anchor, esc, legend

LEGEND = (
    ("c-loads", "loads"),
    ("c-code", "fails: code"),
    ("c-repository", "fails: repository"),
    ("c-environment", "fails: environment"),
    ("c-unbuildable", "model not buildable"),
    ("c-none", "not evaluated"),
)
_CAUSES = ("repository", "code", "environment")


@dataclass(frozen=True)
class Column:
    sha: str
    label: str
    date: str
    subject: str


@dataclass(frozen=True)
class Cell:
    status: str  # "loads" | "fails" | "unbuildable" | "none" (not evaluated)
    cause: str | None = None
    first_bad: bool = False
    target: str = ""  # the anchor the cell links to


@dataclass(frozen=True)
class Row:
    checkpoint: str
    model: str | None
    cells: tuple[Cell, ...]


def failing_cause(findings: Sequence[Mapping[str, Any]]) -> str:
    """The cause of a failure: of its error findings (repository before code before environment)."""
    errors = [f.get("cause") for f in findings if f.get("severity") == "error"] or [
        f.get("cause") for f in findings
    ]
    return next((c for c in _CAUSES if c in errors), "code")


def columns_of(blames: Sequence[Mapping[str, Any]]) -> list[Column]:
    """Every commit any row walked, oldest first (by date, then by where a history first lists it)."""
    seen: dict[str, tuple[str, int, Column]] = {}
    for blame in blames:
        for step in blame.get("history") or []:
            sha = str(step["commit"])
            if sha not in seen:
                column = Column(sha, sha[:8], str(step.get("date", "")), str(step.get("subject", "")))
                seen[sha] = (column.date, len(seen), column)
    return [c for _, _, c in sorted(seen.values(), key=lambda t: (t[0], t[1]))]


def blame_rows(blames: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> list[Row]:
    rows = []
    for index, blame in enumerate(blames):
        steps = {str(s["commit"]): s for s in blame.get("history") or []}
        breaks = {str(b) for b in blame.get("breaks") or []}
        cells = []
        for column in columns:
            step = steps.get(column.sha)
            if step is None:
                cells.append(Cell("none"))
                continue
            status = str(step.get("status"))
            cause = failing_cause(step.get("findings") or []) if status == "fails" else None
            first = column.sha in breaks
            cells.append(Cell(status, cause, first, break_anchor(index, column.sha) if first else ""))
        rows.append(Row(str(blame.get("checkpoint")), blame.get("model"), tuple(cells)))
    return rows


def scan_rows(checkpoints: Sequence[Mapping[str, Any]]) -> list[Row]:
    """The working tree's column: each checkpoint entry's verdict, linking to its findings."""
    rows = []
    for index, entry in enumerate(checkpoints):
        loads = entry.get("loads", entry.get("verdict") == "ok")
        verdict = str(entry.get("verdict"))
        cell = (
            Cell("loads", None, False, "")
            if loads
            else Cell("fails", verdict, False, checkpoint_anchor(index))
        )
        rows.append(Row(str(entry.get("path")), entry.get("model"), (cell,)))
    return rows


def break_anchor(row: int, sha: str) -> str:
    return anchor("break", row, sha[:12])


def checkpoint_anchor(index: int) -> str:
    return anchor("checkpoint", index)


def _cell(cell: Cell, column: Column, checkpoint: str) -> str:
    colour = {"loads": "c-loads", "unbuildable": "c-unbuildable", "none": "c-none"}.get(
        cell.status, f"c-{cell.cause}"
    )
    what = cell.status + (f": {cell.cause}" if cell.cause else "")
    title = f"{checkpoint} at {column.label} {column.date[:10]} {column.subject}: {what}"
    mark = "●" if cell.first_bad else ""
    inner = (
        f'<a href="#{cell.target}" aria-label="{esc(title)}">{mark or "&nbsp;"}</a>' if cell.target else mark
    )
    classes = f"cell {colour}" + (" first" if cell.first_bad else "")
    return (
        f'<td class="{classes}" data-verdict="{esc(cell.status)}" data-cause="{esc(cell.cause or "")}" '
        f'data-commit="{esc(column.sha)}" title="{esc(title)}">{inner}</td>'
    )


def table(columns: Sequence[Column], rows: Sequence[Row]) -> str:
    head = "".join(
        f'<th class="col" title="{esc(c.sha)} {esc(c.date)}&#10;{esc(c.subject)}"><span class="mono">'
        f"{esc(c.label)}</span> {esc(c.date[:10])}</th>"
        for c in columns
    )
    body = "".join(
        f'<tr data-checkpoint="{esc(r.checkpoint)}"><th class="mono" title="model {esc(r.model)}">'
        f"{esc(r.checkpoint)}</th>"
        + "".join(_cell(cell, col, r.checkpoint) for cell, col in zip(r.cells, columns, strict=True))
        + "</tr>"
        for r in rows
    )
    return (
        legend(LEGEND)
        + f'<div class="scroll"><table class="matrix"><thead><tr><th></th>{head}</tr></thead>'
        + f"<tbody>{body}</tbody></table></div>"
        + '<div class="mute">● first bad commit (loads turns to fails): '
        + "click it for its findings and diff.</div>"
    )
