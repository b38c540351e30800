"""Helpers for tests that build models: one session worker (the `worker` fixture of tests/compat and
tests/worker), writing a source file, reading a checkpoint the way torch does."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ckaudit.reader.types import CheckpointInfo, StateDictCandidate, TensorInfo
from ckaudit.worker.client import ModelWorker


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def info_from_torch(path: Path) -> CheckpointInfo:
    """The reader's answer, built here from torch.load itself (every dict of tensors is a candidate)."""
    import torch

    obj = torch.load(path, weights_only=True)
    candidates: list[StateDictCandidate] = []
    _visit(obj, "", candidates, torch)
    return CheckpointInfo(
        path=str(path),
        format="torch-zip",
        size=path.stat().st_size,
        candidates=tuple(sorted(candidates, key=lambda c: c.key != "")),
    )


def _visit(obj: Any, key: str, found: list[StateDictCandidate], torch: Any) -> None:
    if not isinstance(obj, dict):
        return
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if tensors and len(tensors) == len(obj):
        infos = {
            k: TensorInfo(k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in tensors.items()
        }
        metadata = getattr(obj, "_metadata", None)
        plain = {str(m): dict(v) for m, v in metadata.items()} if metadata is not None else None
        found.append(StateDictCandidate(key, infos, plain))
    for child_key, value in obj.items():
        _visit(value, f"{key}.{child_key}" if key else str(child_key), found, torch)


@pytest.fixture(scope="session")
def worker() -> Iterator[ModelWorker]:
    with ModelWorker(sys.executable, timeout=60.0) as shared:
        yield shared


def in_worker_process(body: str, timeout: float = 300) -> list[str]:
    """Run `body` in a fresh interpreter that has loaded the worker (server.py, by path, as `server`, its
    meta.py ready) and return its output lines; a failure shows the process's stderr."""
    import subprocess
    import sys

    from ckaudit.worker.client import SERVER

    prelude = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("server", {str(SERVER)!r})
server = importlib.util.module_from_spec(spec)
spec.loader.exec_module(server)
server._META = server._sibling("meta")
"""
    out = subprocess.run(
        [sys.executable, "-c", prelude + body], capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()
