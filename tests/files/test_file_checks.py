"""check_file on single cases the repository-wide scan test does not cover."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ckaudit.files import FileScope, check_file, content
from ckaudit.findings import Rule, Severity
from ckaudit.registry.config import CheckpointEntry
from tests.conftest import requires_torch
from tests.files import factory


def rules(scope: FileScope, rel: str, entry: CheckpointEntry | None = None) -> list[tuple[Rule, Severity]]:
    result, _ = check_file(scope, entry, rel)
    return [(f.rule, f.severity) for f in result.findings]


@requires_torch
def test_archive_version_newer_than_torch_reads(tmp_path: Path) -> None:
    source = factory.save_zip(tmp_path / "src.pt")
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(tmp_path / "future.pt", "w") as dst:
        for info in src.infolist():
            data = (
                b"11\n"
                if info.filename.endswith("/version") and "/data/" not in info.filename
                else src.read(info)
            )
            dst.writestr(info, data)
    assert rules(FileScope(tmp_path), "future.pt") == [(Rule.TORCH_VERSION, Severity.ERROR)]
    assert rules(FileScope(tmp_path), "src.pt") == []


@requires_torch
def test_legacy_format_is_a_note(tmp_path: Path) -> None:
    factory.save_legacy(tmp_path / "old.pt")
    assert rules(FileScope(tmp_path), "old.pt") == [(Rule.TORCH_VERSION, Severity.NOTE)]


@requires_torch
def test_safetensors_under_another_name_is_a_warning(tmp_path: Path) -> None:
    """torch.load reads `*.safetensors` paths with the safetensors library, any other name as a pickle."""
    import shutil

    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.ones(2)}, tmp_path / "model.safetensors")
    shutil.copy(tmp_path / "model.safetensors", tmp_path / "model.bin")
    assert torch.load(tmp_path / "model.safetensors")["w"].tolist() == [1.0, 1.0]
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(tmp_path / "model.bin")
    assert rules(FileScope(tmp_path), "model.safetensors") == []
    assert rules(FileScope(tmp_path), "model.bin") == [(Rule.TORCH_VERSION, Severity.WARNING)]
    inspected = subprocess.run(
        [sys.executable, "-m", "ckaudit", "inspect", str(tmp_path / "model.bin")],
        capture_output=True,
        text=True,
    )
    assert "torch.load reads safetensors only by a `.safetensors` name" in inspected.stdout

    # as a user meets it: `ckaudit scan` in a repository without a registry, the file committed
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "model.bin", "model.safetensors"], cwd=tmp_path, check=True)
    scanned = subprocess.run(
        [sys.executable, "-m", "ckaudit", "scan", str(tmp_path), "--format", "json"],
        capture_output=True,
        text=True,
    )
    found = {c["path"]: [f["rule"] for f in c["findings"]] for c in json.loads(scanned.stdout)["checkpoints"]}
    assert found == {"model.bin": ["torch-version"], "model.safetensors": []}


@requires_torch
def test_malicious_pickle_is_reported_and_never_runs(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    factory.save_malicious(tmp_path / "evil.pt", canary)
    result, info = check_file(FileScope(tmp_path, verify=True), None, "evil.pt")
    assert [f.rule for f in result.findings] == [Rule.UNSAFE_PICKLE]
    assert info is not None and result.verdict.value == "environment"
    assert not canary.exists()


def test_fifo_is_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.pt")
    assert rules(FileScope(tmp_path), "pipe.pt") == [(Rule.NOT_A_CHECKPOINT, Severity.ERROR)]


def test_a_reader_bug_is_contained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.pt").write_bytes(b"PK\x03\x04whatever")

    def broken(path: Path) -> None:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(content, "read_checkpoint", broken)
    result, info = check_file(FileScope(tmp_path), None, "x.pt")
    assert info is None and [f.rule for f in result.findings] == [Rule.CORRUPT]
    assert "RuntimeError" in result.findings[0].details["internal_error"]


def test_registered_missing_file_points_at_the_registry_line(tmp_path: Path) -> None:
    scope = FileScope(tmp_path, registry="ckaudit.yaml")
    result, _ = check_file(scope, CheckpointEntry(path="ck/a.pt", model="net", line=7), "ck/a.pt")
    (finding,) = result.findings
    assert finding.rule is Rule.FILE_MISSING and finding.model == "net"
    assert finding.location is not None and (finding.location.path, finding.location.line) == (
        "ckaudit.yaml",
        7,
    )
