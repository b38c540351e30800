"""The tree diff and the matrix as data (no browser): which keys each side draws, in which colour,
collapsed how; and the page stays self-contained. test_html_browser.py checks rendered pages."""

from __future__ import annotations

import re

from ckaudit.report.html import blame_page, matrix, report_page, tree

BLOCKS = [f"blocks.{i}.{p}" for i in range(12) for p in ("attn.weight", "attn.bias", "mlp.weight")]


def _entry(findings: list[dict], model: list[str], file: list[str]) -> dict:
    return {
        "path": "ck.pt",
        "model": "m",
        "verdict": "code",
        "loads": False,
        "findings": findings,
        "model_keys": model,
        "checkpoint_keys": file,
        "checkpoint_container": "",
    }


def test_twelve_alike_blocks_are_one_subtree_and_the_resized_key_is_named_in_all() -> None:
    rows = [
        {"key": f"blocks.{i}.mlp.weight", "checkpoint_shape": [4, 4], "model_shape": [8, 4]}
        for i in range(12)
    ]
    finding = {"rule": "shape-mismatch", "details": {"mismatches": rows}}
    diff = tree.key_diff(_entry([finding], BLOCKS, BLOCKS), {0: "f-0"})
    assert diff is not None
    drawn = tree.rows(tree.build_tree(diff.model, diff.model_status))
    labels = [(r.depth, r.label, r.status) for r in drawn]
    assert labels == [
        (0, "blocks", "differs"),
        (1, "{0..11}", "differs"),
        (2, "attn", "matched"),
        (2, "mlp", "differs"),
        (3, "weight", "resized"),
    ]
    resized = drawn[-1]
    assert set(resized.keys) == {f"blocks.{i}.mlp.weight" for i in range(12)} and resized.finding == "f-0"
    assert drawn[2].count == 24  # attn's two keys in each of twelve blocks


def test_unlike_blocks_stay_apart_and_keys_no_finding_names_still_show() -> None:
    model = [*BLOCKS, "head.weight"]
    file = [k for k in BLOCKS if k != "blocks.3.attn.bias"] + ["old_head.weight"]
    missing = {"rule": "missing-keys", "details": {"keys": ["blocks.3.attn.bias"]}}
    diff = tree.key_diff(_entry([missing], model, file), {0: "f-0"})
    assert diff is not None
    assert diff.model_status["blocks.3.attn.bias"] == ("missing", "f-0")
    assert diff.model_status["head.weight"] == ("missing", "")  # model side only, named by no finding
    assert diff.checkpoint_status["old_head.weight"] == ("unexpected", "")
    drawn = tree.rows(tree.build_tree(diff.model, diff.model_status))
    assert [r.label for r in drawn if r.depth == 1] == ["{0..2}", "3", "{4..11}", "weight"]


def test_prefix_and_rename_pair_both_sides() -> None:
    prefix = {"rule": "key-prefix", "details": {"prefix": "module.", "mode": "strip"}}
    diff = tree.key_diff(_entry([prefix], ["a.w", "b.w"], ["module.a.w", "module.b.w"]), {0: "p"})
    assert diff is not None
    assert diff.model_status == {"a.w": ("renamed", "p"), "b.w": ("renamed", "p")}
    assert set(diff.checkpoint_status) == {"module.a.w", "module.b.w"}
    rename = {"rule": "renamed-keys", "details": {"modules": {"backbone": "encoder"}}}
    diff = tree.key_diff(_entry([rename], ["encoder.0.w", "head.w"], ["backbone.0.w", "head.w"]), {0: "r"})
    assert diff is not None
    assert diff.model_status == {"encoder.0.w": ("renamed", "r")}
    assert diff.checkpoint_status == {"backbone.0.w": ("renamed", "r")}


def test_page_is_self_contained_and_escapes_what_it_shows() -> None:
    hostile = {
        "rule": "missing-keys",
        "cause": "code",
        "severity": "error",
        "message": "<script>alert(1)</script>",
        "details": {"keys": ["x.<b>"]},
    }
    data = {
        "tool": {"command": "scan"},
        "root": "/r",
        "summary": {"checkpoints": 1},
        "checkpoints": [_entry([hostile], ["x.<b>", "y"], ["y"])],
        "findings": [],
    }
    page = report_page.render(data)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert page.count("<script>") == 1  # the page's own, inline


def test_blame_matrix_columns_and_cells() -> None:
    history = [
        {"commit": "a" * 40, "date": "2026-01-01", "subject": "one", "status": "loads", "findings": []},
        {
            "commit": "b" * 40,
            "date": "2026-01-02",
            "subject": "two",
            "status": "fails",
            "findings": [{"cause": "code", "severity": "error"}],
        },
    ]
    blame = {"checkpoint": "ck.pt", "model": "m", "history": history, "breaks": ["b" * 40], "changes": {}}
    other = {"checkpoint": "ck2.pt", "model": "n", "history": history[1:], "breaks": []}
    columns = matrix.columns_of([blame, other])
    rows = matrix.blame_rows([blame, other], columns)
    assert [c.sha[0] for c in columns] == ["a", "b"]
    assert [(c.status, c.cause, c.first_bad) for c in rows[0].cells] == [
        ("loads", None, False),
        ("fails", "code", True),
    ]
    assert [c.status for c in rows[1].cells] == ["none", "fails"]
    page = blame_page.render([blame, other])
    assert (
        f'id="{matrix.break_anchor(0, "b" * 40)}"' in page
        and f'href="#{matrix.break_anchor(0, "b" * 40)}"' in page
    )
