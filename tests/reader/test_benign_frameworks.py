"""Framework files that are not unsafe: torch.distributed.checkpoint saves, TorchScript archives, Trainer-like
training_args.bin (unsafe until trusted, with the exact trusted_globals hint), and DCP byte entries that
do carry a payload."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ckaudit.files.safety import safety_findings
from ckaudit.findings import Finding, Rule
from tests.conftest import requires_torch
from tests.reader import attacks, oracle

pytestmark = requires_torch


def _findings(path: Path, trusted: tuple[str, ...] = ()) -> list[Finding]:
    return safety_findings(path.name, oracle.seen_info(path), None, trusted=trusted)


def _unsafe(path: Path, trusted: tuple[str, ...] = ()) -> list[Finding]:
    return [f for f in _findings(path, trusted) if f.rule is Rule.UNSAFE_PICKLE]


def _dcp_save(folder: Path, state: dict[str, object]) -> None:
    import torch.distributed.checkpoint as dcp

    dcp.save(state, checkpoint_id=str(folder))


def test_plain_dcp_save_is_not_unsafe(tmp_path: Path) -> None:
    import torch

    _dcp_save(tmp_path / "dcp", {"w": torch.ones(3), "step": 5, "cfg": {"lr": 0.1}, "blob": b"xyz"})
    assert _unsafe(tmp_path / "dcp") == []


def test_dcp_byte_entry_with_a_payload_is_unsafe(tmp_path: Path) -> None:
    import torch

    canary = tmp_path / "canary"
    payload = attacks.Call(attacks.os.system, f"touch {canary}")
    _dcp_save(tmp_path / "dcp", {"w": torch.ones(3), "extra": payload})
    unsafe = _unsafe(tmp_path / "dcp")
    assert unsafe and "posix.system" in unsafe[0].message
    assert not canary.exists()


_DCP_LOAD = """
import sys, torch, torch.distributed.checkpoint as dcp
state = {"w": torch.zeros(3), "extra": None}
dcp.load(state, checkpoint_id=sys.argv[1])
"""


@pytest.mark.slow
def test_dcp_byte_entry_payload_is_real(tmp_path: Path) -> None:
    """dcp.load (torch.load(weights_only=False) on each byte entry) runs it, in a throwaway subprocess."""
    import torch

    canary = tmp_path / "canary"
    _dcp_save(
        tmp_path / "dcp", {"w": torch.ones(3), "extra": attacks.Call(attacks.os.system, f"touch {canary}")}
    )
    subprocess.run([sys.executable, "-c", _DCP_LOAD, str(tmp_path / "dcp")], capture_output=True, timeout=120)
    assert canary.exists()


def test_torchscript_archives_are_not_unsafe(tmp_path: Path) -> None:
    """torch.jit.save of a scripted and a traced module: torch.jit._pickle helpers and __torch__ classes."""
    import torch

    module = torch.nn.Sequential(torch.nn.Linear(2, 3))
    torch.jit.save(torch.jit.script(module), tmp_path / "script.pt")
    torch.jit.save(torch.jit.trace(module, torch.ones(1, 2)), tmp_path / "trace.pt")
    for name in ("script.pt", "trace.pt"):
        assert _unsafe(tmp_path / name) == [], name


_TRAINER_LIKE = """
import dataclasses, enum

class Strategy(enum.Enum):
    STEPS = "steps"

@dataclasses.dataclass
class TrainingArgs:
    output_dir: str = "out"
    lr: float = 1e-4
    strategy: Strategy = Strategy.STEPS
"""


def test_training_args_gets_the_exact_trusted_globals_hint(tmp_path: Path) -> None:
    """A Trainer-like training_args.bin (a dataclass holding an enum): unsafe until trusted; the fix names
    exactly the classes to trust, and trusting them clears it."""
    (tmp_path / "trainer_like.py").write_text(textwrap.dedent(_TRAINER_LIKE))
    script = (
        "import sys, torch; sys.path.insert(0, sys.argv[1]); import trainer_like; "
        "torch.save(trainer_like.TrainingArgs(), sys.argv[2])"
    )
    target = tmp_path / "training_args.bin"
    subprocess.run([sys.executable, "-c", script, str(tmp_path), str(target)], check=True, timeout=120)
    unsafe = _unsafe(target)
    assert len(unsafe) == 1
    hint = unsafe[0].details["trusted_globals_hint"]
    assert hint == ["trainer_like.Strategy", "trainer_like.TrainingArgs"]
    assert "trusted_globals: [trainer_like.Strategy, trainer_like.TrainingArgs]" in unsafe[0].fix
    assert _unsafe(target, tuple(hint)) == []


def test_payload_gets_no_trusted_globals_hint(tmp_path: Path) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(attacks.call_bytes("posix", "system", "true"))
    unsafe = _unsafe(path)
    assert unsafe and "trusted_globals_hint" not in unsafe[0].details
