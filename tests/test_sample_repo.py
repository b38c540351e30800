"""sample_repo end to end: every verdict, the exact text a colleague would read, and nothing changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ckaudit.cli import main
from tests.conftest import requires_torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_repo"
SNAPSHOT = Path(__file__).resolve().parent / "data" / "sample_repo_scan.txt"
pytestmark = pytest.mark.slow  # every model of sample_repo built and dry-run

EXPECTED_VERDICTS = {
    "checkpoints/classifier_a.pth": "ok",
    "checkpoints/classifier_b.pth": "ok",
    "checkpoints/classifier_a_for_b.pth": "code",
    "checkpoints/tagger_dataparallel.pt": "code",
    "checkpoints/tagger_compiled.pt": "code",
    "checkpoints/tagger_v1.pt": "code",
    "checkpoints/classifier_a_epoch12.pt": "code",
    "checkpoints/tagger_with_args.pt": "environment",
    "checkpoints/classifier_b_download.pth": "repository",
    "checkpoints/tagger_large.pt": "repository",
    "checkpoints/classifier_finetuned.pth": "repository",
}
EXPECTED_RULES = {
    "checkpoints/classifier_a_for_b.pth": {"shape-mismatch"},
    "checkpoints/tagger_dataparallel.pt": {"key-prefix"},
    "checkpoints/tagger_compiled.pt": {"key-prefix"},
    "checkpoints/tagger_v1.pt": {"renamed-keys"},
    "checkpoints/classifier_a_epoch12.pt": {"wrong-container-key"},
    "checkpoints/tagger_with_args.pt": {"weights-only-blocked"},
    "checkpoints/classifier_b_download.pth": {"truncated"},
    "checkpoints/tagger_large.pt": {"lfs-pointer"},
    "checkpoints/classifier_finetuned.pth": {"file-missing"},
}


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One text and one JSON scan of sample_repo (each builds the models once)."""
    out = tmp_path_factory.mktemp("scan")
    before = _files(SAMPLE)
    codes = {}
    for fmt in ("text", "json"):
        codes[fmt] = main(["scan", str(SAMPLE), "--format", fmt, "--output", str(out / fmt), "--no-cache"])
    assert _files(SAMPLE) == before, "scan changed files in sample_repo"
    assert codes == {"text": 1, "json": 1}
    return {fmt: (out / fmt).read_text() for fmt in codes}


@requires_torch
def test_every_verdict_and_rule(scans: dict[str, str]) -> None:
    report = json.loads(scans["json"])
    verdicts = {c["path"]: c["verdict"] for c in report["checkpoints"]}
    assert verdicts == EXPECTED_VERDICTS
    for checkpoint in report["checkpoints"]:
        errors = {f["rule"] for f in checkpoint["findings"] if f["severity"] == "error"}
        assert errors == EXPECTED_RULES.get(checkpoint["path"], set()), checkpoint["path"]
    assert [f["rule"] for f in report["findings"]] == ["dangling-reference"]
    assert report["summary"] == {"checkpoints": 11, "ok": 2, "code": 5, "repository": 3, "environment": 1}


@requires_torch
def test_text_report_matches_snapshot(scans: dict[str, str]) -> None:
    if os.environ.get("CKAUDIT_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(scans["text"])
    assert scans["text"] == SNAPSHOT.read_text()


@requires_torch
def test_text_report_fits_80_columns(scans: dict[str, str]) -> None:
    for line in scans["text"].splitlines():
        assert len(line) <= 80 or " " not in line.strip(), line
