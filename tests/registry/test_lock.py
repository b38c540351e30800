"""ckaudit.lock from real torch.save files: deterministic, sorted, round-trips, and says what changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ckaudit.errors import ConfigError
from ckaudit.reader import read_checkpoint
from ckaudit.registry.lock import dump_lock, info_from_signature, parse_lock, signature_of
from tests.conftest import requires_torch

pytestmark = requires_torch


def saved(path: Path, widths: tuple[int, int]) -> Path:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(2, widths[0]), torch.nn.BatchNorm1d(widths[1]))
    torch.save({"model": model.state_dict(), "step": 3}, path)
    return path


def test_round_trip_sorted_and_independent_of_order(tmp_path: Path) -> None:
    a = signature_of(read_checkpoint(saved(tmp_path / "a.pt", (3, 3))), None)
    b = signature_of(read_checkpoint(saved(tmp_path / "b.pt", (4, 4))), "model")
    text = dump_lock({"b.pt": b, "a.pt": a})
    assert text == dump_lock({"a.pt": a, "b.pt": b})
    assert text.index('"a.pt":') < text.index('"b.pt":') and "time" not in text.lower()
    assert '          "0.weight": ["float32", [3, 2]]\n' in text  # one line per tensor
    assert '          "1": {"version": 2}\n' in text  # BatchNorm's _metadata version
    assert parse_lock(text, "ckaudit.lock") == {"a.pt": a, "b.pt": b}
    assert a.container == "model"  # detected: the state dict sits under "model"


def test_a_locked_signature_dry_runs_like_the_file(tmp_path: Path) -> None:
    info = read_checkpoint(saved(tmp_path / "a.pt", (3, 3)))
    back = info_from_signature("a.pt", parse_lock(dump_lock({"a.pt": signature_of(info, None)}), "x")["a.pt"])
    original = {c.key: {k: (t.shape, t.dtype) for k, t in c.tensors.items()} for c in info.candidates}
    assert {c.key: {k: (t.shape, t.dtype) for k, t in c.tensors.items()} for c in back.candidates} == original
    assert [c.metadata for c in back.candidates] == [dict(c.metadata or {}) for c in info.candidates]
    assert back.globals == info.globals and back.format == info.format


def test_differences_name_what_changed(tmp_path: Path) -> None:
    old = signature_of(read_checkpoint(saved(tmp_path / "a.pt", (3, 3))), None)
    new = signature_of(read_checkpoint(saved(tmp_path / "b.pt", (3, 5))), None)
    assert "1.weight: ['float32', [3]] -> ['float32', [5]]" in old.differences(new)
    assert old.differences(old) == []


def test_a_damaged_lock_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=r"ckaudit\.lock.*not valid YAML"):
        parse_lock("checkpoints: [1, 2", "ckaudit.lock")
    with pytest.raises(ConfigError, match="not a ckaudit lock file"):
        parse_lock("checkpoints:\n  a.pt: {}\n", "ckaudit.lock")
