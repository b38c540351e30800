"""`--format html` opened in a real browser: headless Chromium loads each page from file:// (no console
error, no request but the page itself), and the DOM is checked against the JSON output of the same command:
every checkpoint present, the matrix cells' verdicts, the tree diff's coloured keys equal to the findings' key
lists, the file-health badges. Pages come from sample_repo and from a small real git history built here.

Screenshots go to $CKAUDIT_SCREENSHOTS when set (how docs/html-*.png were made), else to the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ckaudit.cli import main
from tests.browser import chromium, visit
from tests.conftest import git, requires_torch
from tests.modelrepo import NET, registry, run_cli, write

pytestmark = [
    pytest.mark.slow,
    requires_torch,
    pytest.mark.skipif(chromium() is None, reason="chromium is not installed (.ci/run installs it)"),
]

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_repo"

# What the page shows, read from the DOM: rows of the matrix, badges, and each tree's coloured keys.
DOM = """JSON.stringify({
  rows: [...document.querySelectorAll('#matrix tr[data-checkpoint]')].map(r => ({
    checkpoint: r.dataset.checkpoint,
    cells: [...r.querySelectorAll('td.cell')].map(c => ({
      verdict: c.dataset.verdict, cause: c.dataset.cause, commit: c.dataset.commit,
      first: c.classList.contains('first'), link: (c.querySelector('a') || {}).hash || ''}))})),
  health: Object.fromEntries([...document.querySelectorAll('#health [data-file-state]')].map(
    b => [b.parentElement.previousElementSibling.dataset.checkpoint, b.dataset.fileState])),
  trees: Object.fromEntries([...document.querySelectorAll('#failing section[data-checkpoint]')].map(s => [
    s.dataset.checkpoint, Object.fromEntries([...s.querySelectorAll('svg.tree')].map(t => [t.dataset.side,
      [...t.querySelectorAll('g.leaf')].filter(g => g.dataset.status !== 'matched').flatMap(
        g => g.dataset.keys.split(' ').map(k => [g.dataset.status, k,
          g.parentElement.tagName.toLowerCase() === 'a' ? g.parentElement.getAttribute('href') : '']))]))])),
  missingTargets: [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href'))
    .filter(h => !document.getElementById(decodeURIComponent(h.slice(1)))),
})"""


def _shot(name: str, data: bytes, tmp: Path) -> None:
    folder = Path(os.environ.get("CKAUDIT_SCREENSHOTS") or tmp)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    assert data.startswith(b"\x89PNG") and len(data) > 10_000


def _load(page: Path, tmp: Path, shot: str, width: int = 1280) -> dict[str, Any]:
    seen = visit(page, DOM, width=width)
    assert seen.errors == [], seen.errors
    assert seen.requests == [page.resolve().as_uri()], "the page asked for more than itself"
    _shot(shot, seen.screenshot, tmp)
    dom = json.loads(seen.value)
    assert dom["missingTargets"] == [], "links to nothing"
    return dom


def _expected_marks(entry: Mapping[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """Each side's (status, key) pairs as the findings name them."""
    model: set[tuple[str, str]] = set()
    file: set[tuple[str, str]] = set()
    for f in entry["findings"]:
        details = f["details"]
        if f["rule"] == "missing-keys":
            model |= {("missing", k) for k in details["keys"]}
        elif f["rule"] == "unexpected-keys":
            file |= {("unexpected", k) for k in details["keys"]}
        elif f["rule"] == "shape-mismatch":
            keys = [r["key"] for r in details.get("mismatches") or [details]]
            model |= {("resized", k) for k in keys}
            file |= {("resized", k) for k in keys}
        elif f["rule"] == "key-prefix":
            prefix = details["prefix"]
            model |= {("renamed", k) for k in entry["model_keys"] if prefix + k in entry["checkpoint_keys"]}
            file |= {
                ("renamed", prefix + k) for k in entry["model_keys"] if prefix + k in entry["checkpoint_keys"]
            }
        elif f["rule"] == "renamed-keys":
            for old, new in details["modules"].items():
                model |= {("renamed", k) for k in entry["model_keys"] if k.startswith(new + ".")}
                file |= {("renamed", k) for k in entry["checkpoint_keys"] if k.startswith(old + ".")}
    return {"model": model, "checkpoint": file}


def _check_scan_page(dom: dict[str, Any], report: dict[str, Any]) -> None:
    entries = report["checkpoints"]
    assert [r["checkpoint"] for r in dom["rows"]] == [e["path"] for e in entries]
    for row, entry in zip(dom["rows"], entries, strict=True):
        (cell,) = row["cells"]
        assert cell["verdict"] == ("loads" if entry["loads"] else "fails")
        assert cell["cause"] == ("" if entry["loads"] else entry["verdict"])
    assert set(dom["health"]) == {e["path"] for e in entries}
    failing = [e for e in entries if e.get("model_keys") is not None]
    assert failing, "no checkpoint was dry-run and failed"
    for entry in failing:
        drawn = dom["trees"][entry["path"]]
        expected = _expected_marks(entry)
        for side in ("model", "checkpoint"):
            marks = {(status, key) for status, key, _ in drawn[side]}
            assert marks == expected[side], (entry["path"], side)
            assert all(link for *_, link in drawn[side]), "a coloured key without a link to its finding"


@pytest.fixture(scope="module")
def sample_pages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("html")
    for fmt in ("json", "html"):
        code = main(
            ["scan", str(SAMPLE), "--format", fmt, "--output", str(out / f"scan.{fmt}"), "--no-cache"]
        )
        assert code == 1
    return out / "scan.html", json.loads((out / "scan.json").read_text())


def test_sample_repo_scan_page_matches_its_json(
    sample_pages: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    page, report = sample_pages
    assert page.stat().st_size < 1_000_000
    assert "http://" not in page.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page.read_text()
    dom = _load(page, tmp_path, "html-scan.png")
    _check_scan_page(dom, report)
    assert dom["health"]["checkpoints/tagger_large.pt"] == "LFS pointer"
    assert dom["health"]["checkpoints/classifier_b_download.pth"] == "truncated"
    assert dom["health"]["checkpoints/classifier_finetuned.pth"] == "missing"
    assert dom["health"]["checkpoints/classifier_a.pth"] == "ok"


def test_sample_repo_page_on_a_phone(sample_pages: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    seen = visit(sample_pages[0], "document.documentElement.scrollWidth", width=390)
    assert seen.errors == []
    assert seen.value <= 390, "the page scrolls sideways on a phone"


# --- a small real history: three checkpoints, a break, a fix, an unbuildable commit, a missing layer -----

GREY = NET.replace("nn.Conv2d(3, 8, 3)", "nn.Conv2d(1, 8, 3)")
EXTRA = NET.replace(
    "self.fc1 = head(8, classes)", "self.fc1 = head(8, classes)\n        self.extra = nn.Linear(2, 2)"
)
SHAPES = {"conv1.weight": (8, 3, 3, 3), "conv1.bias": (8,), "fc1.weight": (4, 8), "fc1.bias": (4,)}
MORE = """\
  - path: checkpoints/grey.pt
    model: net
  - path: checkpoints/net_plus.pt
    model: net
"""


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import torch

    repo = tmp_path_factory.mktemp("history") / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, "models/__init__.py", "")
    write(
        repo,
        "models/blocks.py",
        "from torch import nn\n\n\ndef head(w: int, c: int) -> nn.Linear:\n    return nn.Linear(w, c)\n",
    )
    write(repo, "ckaudit.yaml", registry(MORE))
    (repo / "checkpoints").mkdir()
    torch.save({k: torch.zeros(s) for k, s in SHAPES.items()}, repo / "checkpoints/net.pt")
    torch.save(
        {**{k: torch.zeros(s) for k, s in SHAPES.items()}, "conv1.weight": torch.zeros(8, 1, 3, 3)},
        repo / "checkpoints/grey.pt",
    )
    torch.save(
        {**{k: torch.zeros(s) for k, s in SHAPES.items()}, "aux.weight": torch.zeros(3, 3)},
        repo / "checkpoints/net_plus.pt",
    )
    shas = {}
    for name, text in (
        ("initial", NET),
        ("grey", GREY),
        ("revert", NET),
        ("typo", NET.replace("def __init__", "def __init__(")),
        ("fix", NET),
        ("extra", EXTRA),
    ):
        write(repo, "models/net.py", text)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"model: {name}")
        shas[name] = git(repo, "rev-parse", "HEAD").strip()
    out = repo.parent / "out"
    out.mkdir()
    blames = []
    for path in ("checkpoints/net.pt", "checkpoints/grey.pt", "checkpoints/net_plus.pt"):
        _, text = run_cli(repo, "blame", path, "--format", "json")
        blames.append(json.loads(text))
    code, _ = run_cli(repo, "blame", "--format", "html", "--output", str(out / "blame.html"))
    assert code == 1
    code, _ = run_cli(repo, "blame", "--format", "html", "--last", "3", "--output", str(out / "last3.html"))
    assert code == 1
    run_cli(repo, "scan", "--format", "json", "--output", str(out / "scan.json"))
    run_cli(repo, "scan", "--format", "html", "--output", str(out / "scan.html"))
    run_cli(repo, "scan", "--history", "4", "--format", "html", "--output", str(out / "scan-history.html"))
    return {
        "repo": repo,
        "shas": shas,
        "blames": blames,
        "out": out,
        "scan": json.loads((out / "scan.json").read_text()),
    }


def test_blame_matrix_matches_blame_json(history: dict[str, Any], tmp_path: Path) -> None:
    dom = _load(history["out"] / "blame.html", tmp_path, "html-blame.png")
    blames = history["blames"]
    assert [r["checkpoint"] for r in dom["rows"]] == [b["checkpoint"] for b in blames]
    for row, blame in zip(dom["rows"], blames, strict=True):
        by_commit = {c["commit"]: c for c in row["cells"]}
        for step in blame["history"]:
            cell = by_commit[step["commit"]]
            assert cell["verdict"] == step["status"]
            assert cell["first"] == (step["commit"] in blame["breaks"])
            if cell["first"]:
                assert cell["link"], "a first bad commit without a link to its finding"
    shas = history["shas"]
    net, grey, plus = ({c["commit"]: c for c in r["cells"]} for r in dom["rows"])
    assert net[shas["grey"]]["first"] and net[shas["grey"]]["cause"] == "code"
    assert net[shas["typo"]]["verdict"] == "unbuildable"
    assert grey[shas["revert"]]["first"] and grey[shas["grey"]]["verdict"] == "loads"
    assert net[shas["extra"]]["first"], "adding a layer breaks net.pt"
    assert all(c["verdict"] == "fails" for c in plus.values() if c["verdict"] != "unbuildable")


def test_history_scan_draws_missing_and_unexpected_keys(history: dict[str, Any], tmp_path: Path) -> None:
    dom = _load(history["out"] / "scan.html", tmp_path, "html-scan-history.png")
    report = history["scan"]
    _check_scan_page(dom, report)
    model_side = {(s, k) for s, k, _ in dom["trees"]["checkpoints/net.pt"]["model"]}
    assert model_side == {("missing", "extra.weight"), ("missing", "extra.bias")}
    file_side = {(s, k) for s, k, _ in dom["trees"]["checkpoints/net_plus.pt"]["checkpoint"]}
    assert ("unexpected", "aux.weight") in file_side


def test_blame_last_n_commits_and_one_checkpoint_per_text_or_json(history: dict[str, Any]) -> None:
    seen = visit(history["out"] / "last3.html", "[...document.querySelectorAll('th.col')].map(t => t.title)")
    assert seen.errors == []
    shas = history["shas"]
    assert [title.split()[0] for title in seen.value] == [shas["typo"], shas["fix"], shas["extra"]]
    code, _ = run_cli(
        history["repo"], "blame", "checkpoints/net.pt", "checkpoints/grey.pt", "--format", "json"
    )
    assert code == 2


def test_scan_with_history_draws_the_matrix_and_the_working_tree(
    history: dict[str, Any], tmp_path: Path
) -> None:
    dom = _load(history["out"] / "scan-history.html", tmp_path, "html-scan-matrix.png")
    shas = history["shas"]
    newest = [shas[n] for n in ("revert", "typo", "fix", "extra")]
    for row, blame in zip(dom["rows"], history["blames"], strict=True):
        assert [c["commit"] for c in row["cells"]] == [*newest, "working-tree"]
        status = {s["commit"]: s["status"] for s in blame["history"]}
        assert [c["verdict"] for c in row["cells"][:4]] == [status[sha] for sha in newest]
        assert row["cells"][4]["verdict"] == "fails"
    first = {r["checkpoint"]: [c["commit"] for c in r["cells"] if c["first"]] for r in dom["rows"]}
    assert first["checkpoints/net.pt"] == [shas["extra"]]  # the earlier break is outside the window


def test_copy_opens_offline(history: dict[str, Any], tmp_path: Path) -> None:
    """The page is one file: moved alone to another folder (a CI artifact), it still renders cleanly."""
    alone = tmp_path / "artifact" / "report.html"
    alone.parent.mkdir()
    shutil.copy(history["out"] / "blame.html", alone)
    seen = visit(alone, "document.querySelectorAll('td.cell').length")
    assert seen.errors == [] and seen.value > 0
