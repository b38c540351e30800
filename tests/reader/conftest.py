"""Session-wide real checkpoints: torch writes each once, every reader test reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import HAS_TORCH


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not HAS_TORCH:
        pytest.skip("torch is not installed")
    import torch
    from safetensors.torch import save_file

    from tests.reader import reader_fixtures as fx

    root = tmp_path_factory.mktemp("checkpoints")
    out = {name: root / name for name in ("zip.pt", "legacy.pt", "train.pt", "small.pt", "small_legacy.pt")}
    torch.save(fx.tricky_state(), out["zip.pt"])
    torch.save(fx.legacy_state(), out["legacy.pt"], _use_new_zipfile_serialization=False)
    torch.save(fx.training_checkpoint(), out["train.pt"])
    small = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(2, dtype=torch.float16)}
    torch.save(small, out["small.pt"])
    torch.save(small, out["small_legacy.pt"], _use_new_zipfile_serialization=False)
    out["small.safetensors"] = root / "small.safetensors"
    save_file(small, out["small.safetensors"], metadata={"format": "pt"})
    out["jit.pt"] = root / "jit.pt"
    torch.jit.save(
        torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())), out["jit.pt"]
    )
    return out
