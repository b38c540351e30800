"""The worker against real model code: defining lines, sources, many roots, and model code that misbehaves."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ckaudit.registry.config import ModelSpec
from ckaudit.worker.client import SERVER, ModelWorker
from tests.conftest import requires_torch
from tests.modeltools import in_worker_process, write

pytestmark = [requires_torch]

NET = """import torch
from torch import nn

from models.blocks import Block


class Net(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        print("model code printing to stdout")
        self.conv1 = nn.Conv2d(1, width, 3)
        self.blocks = nn.Sequential(Block(width), Block(width))
        self.fc1 = nn.Linear(width, 10)
        nn.init.normal_(self.fc1.weight)
"""
BLOCKS = """import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, bias=False)
        self.register_buffer("scale", torch.ones(c), persistent=False)
"""


def make_repo(root: Path, width_default: int = 16) -> Path:
    write(root, "models/__init__.py", "")
    write(root, "models/blocks.py", BLOCKS)
    write(root, "models/net.py", NET.replace("width=16", f"width={width_default}"))
    write(root, "unrelated.py", "raise SystemExit('never imported')\n")
    return root


def test_build_records_signature_lines_and_sources(tmp_path: Path, worker: ModelWorker) -> None:
    root = make_repo(tmp_path / "repo")
    build = worker.build(ModelSpec("net", factory="models.net:Net", kwargs={"width": 8}), root)
    assert build.ok and build.device == "meta"
    assert build.signature["conv1.weight"].shape == (8, 1, 3, 3)
    assert build.signature["blocks.0.scale"].persistent is False
    assert "blocks.0.scale" not in build.state_keys()
    where = build.location_of("fc1.weight")
    assert where is not None and (where.path, where.line) == ("models/net.py", 13)
    assert where.snippet == "self.fc1 = nn.Linear(width, 10)"
    inner = build.location_of("blocks.1.conv.weight")
    assert inner is not None and (inner.path, inner.line) == ("models/blocks.py", 8)
    assert build.sources == ("models/__init__.py", "models/blocks.py", "models/net.py")
    assert not list(root.rglob("__pycache__")), "the worker must not write into the repository"


def test_one_worker_builds_versions_from_different_roots(tmp_path: Path, worker: ModelWorker) -> None:
    old = make_repo(tmp_path / "old", width_default=4)
    new = make_repo(tmp_path / "new", width_default=6)
    spec = ModelSpec("net", factory="models.net:Net")
    for root, width in ((old, 4), (new, 6), (old, 4)):
        build = worker.build(spec, root)
        assert build.signature["fc1.weight"].shape == (10, width)
        assert build.sources  # re-imported each time, so each build knows its sources


def test_build_code_instead_of_factory(tmp_path: Path, worker: ModelWorker) -> None:
    root = make_repo(tmp_path / "repo")
    build = worker.build(ModelSpec("net", build="from models.net import Net\nmodel = Net(width=2)\n"), root)
    assert build.ok and build.signature["conv1.bias"].shape == (2,)


def test_meta_failure_falls_back_to_cpu_and_says_so(tmp_path: Path, worker: ModelWorker) -> None:
    write(
        tmp_path / "repo",
        "needs_cpu.py",
        "import torch\nfrom torch import nn\n\n\nclass M(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(2, 2)\n"
        "        assert self.fc.weight.sum().item() == self.fc.weight.sum().item()\n",
    )
    build = worker.build(ModelSpec("m", factory="needs_cpu:M"), tmp_path / "repo")
    assert build.ok and build.device == "cpu" and build.meta_error


@pytest.fixture(scope="module")
def short() -> Iterator[ModelWorker]:
    """A worker with a 3 s timeout, shared by the misbehaving factories (each failure restarts it)."""
    with ModelWorker(sys.executable, timeout=3.0) as worker:
        yield worker


@pytest.mark.parametrize(
    ("source", "kind", "line"),
    [
        ("import torch\n\n\ndef build():\n    raise ValueError('width must be even')\n", "raised", 5),
        ("import missing_dependency_xyz\n\n\ndef build():\n    pass\n", "raised", 1),
        pytest.param(
            "import torch\n\n\ndef build():\n    while True:\n        pass\n",
            "timeout",
            (5, 6),
            marks=pytest.mark.slow,  # waits out the timeout
        ),
        pytest.param("import os\n\n\ndef build():\n    os._exit(3)\n", "crashed", 5, marks=pytest.mark.slow),
        pytest.param(
            "import ctypes\n\n\ndef build():\n    ctypes.string_at(0)\n", "crashed", 5, marks=pytest.mark.slow
        ),
    ],
    ids=["raises", "import-error", "loops", "os-exit", "segfault"],
)
def test_misbehaving_factory_becomes_an_error_within_the_timeout(
    tmp_path: Path, short: ModelWorker, source: str, kind: str, line: int | tuple[int, ...]
) -> None:
    root = tmp_path / "repo"
    write(root, "bad.py", source)
    write(root, "good.py", "from torch import nn\n\n\ndef build():\n    return nn.Linear(2, 3)\n")
    short.build(ModelSpec("good", factory="good:build"), root)  # pays the torch import outside the clock
    started = time.monotonic()
    build = short.build(ModelSpec("bad", factory="bad:build"), root)
    assert time.monotonic() - started < 8.0
    assert not build.ok and build.error is not None
    assert build.error.kind == kind
    where = build.error.location
    assert where is not None and where.path == "bad.py", build.error
    assert where.line in (line if isinstance(line, tuple) else (line,)), build.error
    after = short.build(ModelSpec("good", factory="good:build"), root)  # a fresh worker, transparently
    assert after.ok and after.signature["weight"].shape == (3, 2)


@pytest.mark.slow  # a fresh interpreter importing torch
def test_server_runs_without_ckaudit_importable(tmp_path: Path) -> None:
    """The project's interpreter may lack ckaudit: the worker's folder (server.py and the siblings it loads by
    path) copied alone, run without site, answers."""
    import torch

    alone = tmp_path / "alone"
    alone.mkdir()
    for module in SERVER.parent.glob("*.py"):
        shutil.copy(module, alone / module.name)
    root = make_repo(tmp_path / "repo")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(torch.__file__).parents[1])}  # torch, not ckaudit
    probe = subprocess.run(
        [sys.executable, "-S", "-c", "import ckaudit"], env=env, capture_output=True, cwd=alone
    )
    assert probe.returncode != 0, "ckaudit must not be importable in this interpreter"
    request = f'{{"op": "build", "id": 1, "root": "{root}", "factory": "models.net:Net", "kwargs": {{}}}}\n'
    result = subprocess.run(
        [sys.executable, "-S", str(alone / "server.py")],
        cwd=alone,
        input=request,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stderr  # ready + one answer: the model's print went to stderr
    assert '"ok": true' in lines[1] and "model code printing to stdout" in result.stderr


def test_unresolvable_globals(tmp_path: Path, worker: ModelWorker) -> None:
    root = make_repo(tmp_path / "repo")
    missing = worker.resolve_globals(
        root,
        ["models.net.Net", "models.net.OldNet", "models.gone.Thing", "__main__.Config", "argparse.Namespace"],
    )
    assert set(missing) == {"models.net.OldNet", "models.gone.Thing", "__main__.Config"}


def test_a_missing_factory_module_has_no_made_up_location(tmp_path: Path, worker: ModelWorker) -> None:
    """Import machinery frames (`<frozen importlib._bootstrap>`) are not files under the root."""
    build = worker.build(ModelSpec(name="m", factory="nomod:Net"), tmp_path)
    assert not build.ok and build.error is not None
    assert "No module named 'nomod'" in build.error.message
    assert build.error.location is None


CAUSAL_GPT = """
import math

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, block_size):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        mask = torch.tril(torch.ones(block_size, block_size))
        self.register_buffer("bias", mask.view(1, 1, block_size, block_size))
        self.register_buffer("masked", torch.zeros(4, 4).masked_fill(torch.ones(4, 4) > 0, float("-inf")))


class GPT(nn.Module):
    def __init__(self, n_embd=32, block_size=16, n_layer=2):
        super().__init__()
        self.h = nn.ModuleList([CausalSelfAttention(n_embd, block_size) for _ in range(n_layer)])
        for name, p in self.named_parameters():
            if name.endswith("c_attn.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))
"""


@pytest.mark.slow
def test_building_on_meta_never_imports_dynamo(tmp_path: Path) -> None:
    """A causal-mask buffer (torch.tril, masked_fill) and an init call on meta: torch's reference ops would
    import torch._dynamo (seconds) only to mark themselves "never compile"; the build must not."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "gpt.py").write_text(CAUSAL_GPT, encoding="utf-8")
    lines = in_worker_process(
        f"""
model, info = server.Worker().build({{"root": {str(root)!r}, "factory": "gpt:GPT", "kwargs": {{}}}})
print(json.dumps([info["ok"], info["device"], "torch._dynamo" in sys.modules, info["signature"]["h.0.bias"]]))
import torch._dynamo  # the real module still loads afterwards
print(torch._dynamo.disable.__module__)
""",
        timeout=120,
    )
    first, second = lines[-2:]
    assert json.loads(first) == [True, "meta", False, [[1, 1, 16, 16], "float32", True, True]]  # a buffer
    assert second.startswith("torch._dynamo")


CLASS_AT_5 = """import torch
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.scale = nn.Parameter(torch.ones(2))
"""


def test_the_class_statement_follows_each_version_of_the_file(tmp_path: Path, worker: ModelWorker) -> None:
    """The class line is memoised on the file's text (a walk meets the same model file in many trees): a file
    edited in place (the working tree between two runs of the hook's worker), another root holding the
    first text, and the first text again each name their own class statement."""
    root, other = tmp_path / "repo", tmp_path / "other"
    moved = "# one\n# two\n" + CLASS_AT_5
    spec = ModelSpec("net", factory="models.net:Net")
    for where, text, line in (
        (root, CLASS_AT_5, 5),
        (root, moved, 7),
        (other, CLASS_AT_5, 5),
        (root, CLASS_AT_5, 5),
    ):
        write(where, "models/__init__.py", "")
        write(where, "models/net.py", text)
        build = worker.build(spec, where)
        found = build.location_of("")
        assert found is not None and (found.path, found.line, found.snippet) == (
            "models/net.py",
            line,
            "class Net(nn.Module):",
        )
