"""`device`: storages saved on CUDA are an error where the model side knows this interpreter has no CUDA,
and only a warning on the torch-free path. torch.load itself (in a subprocess) is the oracle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git, requires_torch
from tests.modelrepo import populate, run_cli
from tests.reader.streams import Entry, torch_entries, write_zip

pytestmark = requires_torch

_CPU = b"X\x03\x00\x00\x00cpu"  # the storage location in torch.save's data.pkl (BINUNICODE 'cpu')


def _on_cuda(saved: Path, out: Path) -> None:
    """A copy of a real torch.save archive whose storages say they were saved on cuda:0."""
    entries = [
        Entry(e.name, e.data.replace(_CPU, b"X\x06\x00\x00\x00cuda:0")) if e.name.endswith(b"data.pkl") else e
        for e in torch_entries(saved)
    ]
    assert any(_CPU in e.data for e in torch_entries(saved))
    write_zip(out, entries)


def _cuda_present() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.fixture
def cuda_repo(git_repo: Path, checkpoint_bytes: bytes, tmp_path: Path) -> Path:
    if _cuda_present():
        pytest.skip("this machine has CUDA: storages on cuda:0 load")
    populate(git_repo, checkpoint_bytes)
    saved = tmp_path / "cpu.pt"
    saved.write_bytes(checkpoint_bytes)
    _on_cuda(saved, git_repo / "checkpoints" / "net.pt")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "a checkpoint saved on a GPU")
    return git_repo


def _device_findings(repo: Path, *argv: str) -> tuple[list[dict[str, object]], str]:
    _status, out = run_cli(repo, "diagnose", "checkpoints/net.pt", "--format", "json", "--no-cache", *argv)
    (result,) = json.loads(out)["checkpoints"]
    return [f for f in result["findings"] if f["rule"] == "device"], result["verdict"]


@pytest.mark.slow
def test_an_absent_device_is_an_error_on_the_model_side(cuda_repo: Path) -> None:
    loader = "import sys, torch; torch.load(sys.argv[1])"
    done = subprocess.run(
        [sys.executable, "-c", loader, str(cuda_repo / "checkpoints/net.pt")], capture_output=True, text=True
    )
    assert done.returncode != 0 and "CUDA device" in done.stderr  # the oracle: a plain torch.load fails
    findings, verdict = _device_findings(cuda_repo)
    assert [f["severity"] for f in findings] == ["error"]
    assert findings[0]["details"] == {"devices": {"cuda:0": 4}, "available": ["cpu", "meta"]}
    assert "map_location" in str(findings[0]["fix"])
    assert verdict == "environment"


def test_without_torch_it_is_a_warning(
    tmp_path: Path, checkpoint_bytes: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    from ckaudit.cli import main

    saved = tmp_path / "cpu.pt"
    saved.write_bytes(checkpoint_bytes)
    _on_cuda(saved, tmp_path / "gpu.pt")
    main(["diagnose", str(tmp_path / "gpu.pt"), "--format", "json", "--no-cache"])
    (result,) = json.loads(capsys.readouterr().out)["checkpoints"]
    assert [(f["rule"], f["severity"]) for f in result["findings"]] == [("device", "warning")]
    assert result["verdict"] == "ok"
