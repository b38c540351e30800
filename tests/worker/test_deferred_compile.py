"""A module-level `@torch.compile` in the project's code (nanochat's optimizer) imports torch._dynamo and
inductor when the module is imported: 4-8 s of every cold build that never compiles anything. While a model
builds, `torch.compile(fn)` is deferred to fn's first call; `torch.compile(module)` is compiled at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ckaudit.worker.meta import deferred_compile
from tests.conftest import requires_torch
from tests.modeltools import in_worker_process


class _Module:
    """Stands for torch.nn.Module in the unit tests (what `deferred_compile` passes through)."""


def _recording() -> tuple[list[tuple[Any, dict[str, Any]]], Any]:
    calls: list[tuple[Any, dict[str, Any]]] = []

    def real(model: Any, **options: Any) -> Any:
        calls.append((model, options))
        return lambda *args, **kwargs: ("compiled", model(*args, **kwargs))

    return calls, real


def test_a_function_is_compiled_at_its_first_call_once() -> None:
    calls, real = _recording()
    compile_ = deferred_compile(real, _Module)

    def double(x: int) -> int:
        return 2 * x

    deferred = compile_(double, mode="max-autotune")
    assert calls == [] and deferred.__name__ == "double"
    assert deferred(3) == ("compiled", 6) and deferred(4) == ("compiled", 8)
    assert calls == [(double, {"mode": "max-autotune"})]  # once, with the options given


def test_the_decorator_with_options_form_and_modules_compile_now() -> None:
    calls, real = _recording()
    compile_ = deferred_compile(real, _Module)

    @compile_(dynamic=False)
    def inc(x: int) -> int:
        return x + 1

    assert calls == [] and inc(1) == ("compiled", 2)
    module = _Module()
    compile_(module, backend="eager")
    assert calls[-1] == (module, {"backend": "eager"})  # the wrapper's state dict is what checkpoints hold


BUILD = """import torch
from torch import nn


@torch.compile
def fused(x):
    return x * 2


@torch.compile(dynamic=False)
def fused_too(x):
    return x + 1


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)


def compiled():
    return torch.compile(Net(), backend="eager")
"""


@requires_torch
@pytest.mark.slow  # the last step compiles for real (dynamo's import: seconds)
def test_a_build_with_module_level_compile_never_imports_dynamo(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "net.py").write_text(BUILD, encoding="utf-8")
    lines = in_worker_process(f"""
worker = server.Worker()
_, plain = worker.build({{"root": {str(root)!r}, "factory": "net:Net", "kwargs": {{}}}})
print(json.dumps([plain["ok"], "torch._dynamo" in sys.modules, sorted(plain["signature"])]))
import torch, net
print(json.dumps([net.fused(torch.ones(2)).tolist(), "torch._dynamo" in sys.modules]))
_, wrapped = worker.build({{"root": {str(root)!r}, "factory": "net:compiled", "kwargs": {{}}}})
print(json.dumps([wrapped["ok"], sorted(wrapped["signature"])]))
""")
    built, called, compiled = (json.loads(line) for line in lines[-3:])
    assert built == [True, False, ["fc.bias", "fc.weight"]]
    assert called == [[2.0, 2.0], True]  # the deferred function compiles and runs when called
    assert compiled == [True, ["_orig_mod.fc.bias", "_orig_mod.fc.weight"]]
