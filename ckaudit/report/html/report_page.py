"""The page of `scan` and `check`: the working tree's column, file health, and for every checkpoint that does
not load its findings and the model beside the checkpoint — all from the JSON report (`report_dict`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ckaudit.report.html import blame_page, findings, health, matrix, page, tree

TREE_LEGEND = (
    ("l-matched", "matched"),
    ("l-missing", "missing (model only)"),
    ("l-unexpected", "unexpected (checkpoint only)"),
    ("l-resized", "resized"),
    ("l-renamed", "renamed"),
)


def _counts(summary: Mapping[str, Any]) -> str:
    items = "".join(
        f'<span class="count">{page.esc(k)}: <b>{page.esc(v)}</b></span>' for k, v in summary.items()
    )
    return f'<div class="counts" id="summary">{items}</div>'


def tree_diff(entry: Mapping[str, Any], anchors: Mapping[int, str]) -> str:
    """Both trees side by side, with the number of keys of each colour; empty without key lists."""
    diff = tree.key_diff(entry, anchors)
    if diff is None:
        return ""
    sides = []
    for side, keys, statuses, title in (
        ("model", diff.model, diff.model_status, f"model {entry.get('model')}"),
        ("checkpoint", diff.checkpoint, diff.checkpoint_status, _checkpoint_title(entry)),
    ):
        counted = Counter(statuses.get(k, (tree.MATCHED, ""))[0] for k in keys)
        tally = ", ".join(f"{n} {status}" for status, n in sorted(counted.items()))
        drawn = tree.svg(side, tree.rows(tree.build_tree(keys, statuses)))
        sides.append(f'<div><h3>{page.esc(title)}</h3><div class="mute">{page.esc(tally)}</div>{drawn}</div>')
    return (
        '<div class="card treediff"><b>The model beside the checkpoint</b>'
        + page.legend(TREE_LEGEND)
        + f'<div class="sides">{"".join(sides)}</div></div>'
    )


def _checkpoint_title(entry: Mapping[str, Any]) -> str:
    container = entry.get("checkpoint_container")
    return f"checkpoint {entry.get('path')}" + (f" (under {container!r})" if container else "")


def _failing(index: int, entry: Mapping[str, Any]) -> str:
    cards, anchors = findings.cards(entry.get("findings") or [], matrix.checkpoint_anchor(index))
    verdict = str(entry.get("verdict"))
    return (
        f'<section class="card" id="{matrix.checkpoint_anchor(index)}" '
        f'data-checkpoint="{page.esc(entry.get("path"))}">'
        f'<h3><span class="mono">{page.esc(entry.get("path"))}</span> '
        f'<span class="badge b-{page.esc(verdict)}">{page.esc(verdict)}</span> '
        f'<span class="mute">model {page.esc(entry.get("model"))}</span></h3>'
        + tree_diff(entry, anchors)
        + cards
        + "</section>"
    )


def _matrix(checkpoints: Sequence[Mapping[str, Any]], history: Sequence[Mapping[str, Any]]) -> str:
    """The working tree's column, after the history's columns when blame walked some (`scan --history`)."""
    now = matrix.Column("working-tree", "working tree", "", "the files and code as they are now")
    columns = matrix.columns_of(history)
    walked = {r.checkpoint: r for r in matrix.blame_rows(history, columns)}
    rows = [
        matrix.Row(
            r.checkpoint,
            r.model,
            (walked[r.checkpoint].cells if r.checkpoint in walked else (matrix.Cell("none"),) * len(columns))
            + r.cells,
        )
        for r in matrix.scan_rows(checkpoints)
    ]
    panels = "".join(blame_page.row_panel(i, b) for i, b in enumerate(history))
    title = "Checkpoints × commits" if history else "Checkpoints"
    return f'<section id="matrix"><h2>{title}</h2>{matrix.table([*columns, now], rows)}</section>' + (
        f'<section id="breaks"><h2>Where each one broke</h2>{panels}</section>' if history else ""
    )


def render(data: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = ()) -> str:
    """The page of a JSON report; `history`: blame's JSON for its checkpoints (`scan --history N`)."""
    checkpoints = list(data.get("checkpoints") or [])
    failing = [
        _failing(i, e) for i, e in enumerate(checkpoints) if not e.get("loads", e.get("verdict") == "ok")
    ]
    others, _ = findings.cards(data.get("findings") or [], "other")
    tool = data.get("tool") or {}
    return page.document(
        f"ckaudit {tool.get('command', 'report')}",
        str(data.get("root", "")),
        [
            _counts(data.get("summary") or {}),
            _matrix(checkpoints, history),
            health.section(checkpoints),
            f'<section id="failing"><h2>What does not load, and why</h2>{"".join(failing)}</section>'
            if failing
            else "",
            f'<section id="other"><h2>Other findings</h2>{others}</section>' if others else "",
        ],
    )
