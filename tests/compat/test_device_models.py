"""A constructor that needs CUDA on a machine without it: cause environment (`device`), not a code error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckaudit.cli import main
from tests.conftest import requires_torch

pytestmark = [requires_torch, pytest.mark.slow]

MODELS = """\
import torch
from torch import nn


class CudaCall(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.register_buffer("mask", torch.ones(2).cuda())


class CudaDevice(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.mask = torch.zeros(2, device=torch.device("cuda"))


class CudaApi(nn.Module):
    def __init__(self):
        super().__init__()
        self.gpu = torch.cuda.current_device()
        self.fc = nn.Linear(2, 2)


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, undefined_width)
"""


def test_device_calls_are_the_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the constructors build")
    (tmp_path / "nets.py").write_text(MODELS, "utf-8")
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "fc.pt")
    names = ["CudaCall", "CudaDevice", "CudaApi", "Broken"]
    models = "".join(f"  {n.lower()}:\n    factory: nets:{n}\n" for n in names)
    entries = "".join(f"  - path: fc.pt\n    model: {n.lower()}\n" for n in names[:1])
    (tmp_path / "ckaudit.yaml").write_text(f"version: 1\nmodels:\n{models}checkpoints:\n{entries}", "utf-8")
    found = {}
    for name in names:
        status = main(["diagnose", str(tmp_path / "fc.pt"), "--model", name.lower(), "--format", "json"])
        (result,) = json.loads(capsys.readouterr().out)["checkpoints"]
        found[name] = (status, result["verdict"], result["findings"][0])
    for name, line in (("CudaCall", 9), ("CudaDevice", 16), ("CudaApi", 22)):
        status, verdict, finding = found[name]
        assert (status, verdict, finding["rule"], finding["cause"]) == (
            1,
            "environment",
            "device",
            "environment",
        )
        assert finding["location"]["line"] == line and "needs CUDA" in finding["message"]
    status, verdict, finding = found["Broken"]
    assert (verdict, finding["rule"], finding["cause"]) == ("code", "model-error", "code")
