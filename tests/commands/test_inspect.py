"""`ckaudit inspect`: text and JSON, exit codes, and no torch import on its path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ckaudit.cli import main
from ckaudit.keyranges import collapse_keys, collapse_rows
from tests.conftest import requires_torch


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    state = {f"layers.{i}.attn.weight": torch.ones(8, 8) for i in range(12)}
    state["head.weight"] = torch.ones(3, 8, dtype=torch.bfloat16)
    path = tmp_path_factory.mktemp("inspect") / "model.pt"
    torch.save({"model_state_dict": state, "epoch": 3}, path)
    return path


@requires_torch
def test_text_output(checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "torch-zip" in out
    assert "model_state_dict.layers.{0..11}.attn.weight ×12  [8, 8]" in out
    assert "state dicts: model_state_dict (13 tensors)" in out
    assert "archive: model" in out and "byteorder: little" in out
    assert "loads with torch.load(weights_only=True)" in out


@requires_torch
def test_json_output_and_verify(checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    assert main(["inspect", str(checkpoint), "--format", "json", "--verify"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "torch-zip"
    assert data["totals"] == {"tensors": 13, "parameters": 12 * 64 + 24, "bytes": 12 * 256 + 48}
    assert data["candidates"][0]["key"] == "model_state_dict"
    assert data["verify"] == {"sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(), "problems": []}
    assert data["tensors"][-1] == {
        "key": "model_state_dict.head.weight",
        "shape": [3, 8],
        "dtype": "bfloat16",
        "stride": [8, 1],
        "storage_offset": 0,
        "storage": "12",
        "device": "cpu",
        "bytes": 48,
        "file": None,
    }


@requires_torch
def test_json_rows_are_json_dumps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One tensor a line, each line exactly what json.dumps makes of it, whatever the key holds."""
    import torch

    keys = ["caf\u00e9.w", 'quote".w', "new\nline", "brace}, {.w", "back\\slash", "\U0001f600"]
    path = tmp_path / "odd.pt"
    torch.save({"sd": {k: torch.zeros(2, 3) for k in keys}}, path)
    assert main(["inspect", str(path), "--format", "json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert [row["key"] for row in data["tensors"]] == [f"sd.{k}" for k in keys]
    lines = out.splitlines()
    first = lines.index('  "tensors": [') + 1
    rows = [line.strip().rstrip(",") for line in lines[first : first + len(keys)]]
    assert rows == [json.dumps(row) for row in data["tensors"]]


@requires_torch
def test_broken_and_missing_files(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.pt"
    cut.write_bytes(checkpoint.read_bytes()[:500])
    assert main(["inspect", str(cut)]) == 1
    assert "truncated (repository)" in capsys.readouterr().out
    assert main(["inspect", str(cut), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["rule"] == "truncated"
    assert main(["inspect", str(tmp_path / "absent.pt")]) == 2
    assert "no such file" in capsys.readouterr().err


@requires_torch
def test_inspect_never_imports_torch(checkpoint: Path) -> None:
    script = (
        "import sys; from ckaudit.cli import main; rc = main(['inspect', sys.argv[1]]);"
        "heavy = [m for m in ('torch', 'git', 'numpy') if m in sys.modules];"
        "sys.exit(f'imported {heavy}' if heavy else rc)"
    )
    result = subprocess.run([sys.executable, "-c", script, str(checkpoint)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "torch-zip" in result.stdout


def test_collapse_rows_only_merges_equal_values() -> None:
    rows = [(f"blocks.{i}.heads.{j}.w", (4,)) for i in range(3) for j in range(2)]
    rows += [("blocks.3.heads.0.w", (5,)), ("fc.weight", (2,))]
    assert collapse_rows(rows) == [
        ("blocks.{0..2}.heads.{0..1}.w", (4,), 6),
        ("blocks.3.heads.0.w", (5,), 1),
        ("fc.weight", (2,), 1),
    ]
    assert collapse_keys(["a.0.w", "a.1.w", "a.2.w", "a.5.w", "b"]) == ["a.{0..2,5}.w", "b"]
