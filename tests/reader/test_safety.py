"""Malicious pickles are reported, never run; classify_globals agrees with torch.load(weights_only=True)."""

from __future__ import annotations

import argparse
import builtins
import os
import pickle
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ckaudit.reader import read_checkpoint
from ckaudit.reader.safety import ALLOWED, classify_globals, safe_globals_fix
from tests.conftest import requires_torch
from tests.reader import reader_fixtures as fx

pytestmark = requires_torch


def _exploits(canary: Path) -> dict[str, Any]:
    return {
        "os_system": fx.Exploit(os.system, f"touch {canary}"),
        "popen": fx.Exploit(subprocess.Popen, ["touch", str(canary)]),
        "eval": fx.Exploit(builtins.eval, f"open({str(canary)!r}, 'w')"),
        "exec": fx.Exploit(builtins.exec, f"open({str(canary)!r}, 'w')"),
    }


def _malicious_files(tmp_path: Path, canary: Path) -> dict[str, Path]:
    import torch

    out = {}
    for name, exploit in _exploits(canary).items():
        out[f"zip_{name}"] = tmp_path / f"zip_{name}.pt"
        torch.save({"w": torch.ones(2), "payload": exploit}, out[f"zip_{name}"])
        out[f"legacy_{name}"] = tmp_path / f"legacy_{name}.pt"
        fx.legacy_with_main(pickle.dumps({"payload": exploit}, protocol=2), out[f"legacy_{name}"])
    memo_trick = fx.stack_global_through_memo("os", "system", f"touch {canary}")
    out["zip_stack_global"] = tmp_path / "zip_stack_global.pt"
    fx.replace_data_pkl(out["zip_os_system"], memo_trick, out["zip_stack_global"])
    out["legacy_stack_global"] = tmp_path / "legacy_stack_global.pt"
    fx.legacy_with_main(memo_trick, out["legacy_stack_global"])
    return out


def test_malicious_pickles_are_reported_and_never_run(tmp_path: Path) -> None:
    import torch

    canary = tmp_path / "canary"
    for name, path in _malicious_files(tmp_path, canary).items():
        info = read_checkpoint(path)
        verdict = classify_globals(info.globals)
        assert verdict.unsafe, name
        assert set(verdict.unsafe) <= set(verdict.blocked)
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path, weights_only=True)
        assert not canary.exists(), f"{name} ran its payload"
    assert classify_globals(read_checkpoint(tmp_path / "zip_stack_global.pt").globals).unsafe == (
        "os.system",
    )


def test_unsafe_names() -> None:
    verdict = classify_globals(
        [
            "posix.system",
            "nt.system",
            "subprocess.Popen",
            "__builtin__.eval",
            "builtins.getattr",
            "runpy._run_code",
            "functools.partial",
            "<dynamic>.<unresolved>",
            "argparse.Namespace",
            "torch._utils._rebuild_tensor_v2",
        ]
    )
    assert "torch._utils._rebuild_tensor_v2" not in verdict.blocked
    assert "argparse.Namespace" in verdict.fixable
    assert set(verdict.unsafe) == set(verdict.blocked) - {"argparse.Namespace"}
    assert "builtins.eval" in verdict.unsafe  # python 2 names mapped as torch maps them


def _benign_objects() -> dict[str, tuple[Any, bool]]:
    """name -> (object to save, whether torch.load(weights_only=True) accepts it)."""
    import numpy as np
    import torch

    return {
        "plain": ({"w": torch.ones(2), "nested": {"b": torch.zeros(1)}, "step": 3, "names": ["a"]}, True),
        "training": (fx.training_checkpoint(), True),
        "numpy_scalar": ({"w": torch.ones(1), "best": np.float64(0.5)}, False),
        "numpy_array": ({"mean": np.zeros(3)}, False),
        "namespace": ({"args": argparse.Namespace(lr=0.1)}, False),
        "user_class": ({"cfg": fx.UserThing()}, False),
    }


def test_classification_agrees_with_torch(tmp_path: Path) -> None:
    import torch

    for name, (obj, accepted) in _benign_objects().items():
        path = tmp_path / f"{name}.pt"
        torch.save(obj, path)
        verdict = classify_globals(read_checkpoint(path).globals)
        assert not verdict.unsafe, name
        try:
            torch.load(path, weights_only=True)
            loads = True
        except pickle.UnpicklingError:
            loads = False
        assert loads is accepted and (not verdict.blocked) is accepted, name
        if not accepted:
            _assert_fix_makes_it_load(path, verdict.fixable)


def _assert_fix_makes_it_load(path: Path, names: tuple[str, ...]) -> None:
    import torch

    try:
        exec(safe_globals_fix(names), {})
        torch.load(path, weights_only=True)
    finally:
        torch.serialization.clear_safe_globals()


def test_static_allowlist_equals_torch() -> None:
    from torch._weights_only_unpickler import _get_allowed_globals

    assert set(_get_allowed_globals()) == ALLOWED
