"""ckaudit's model check vs the obvious alternative, `torch.load` + `model.load_state_dict`, as processes.

ckaudit side: one process running the real `ckaudit diagnose FILE --model MODULE:FACTORY` (the torch-free
reader, then the model's own load_state_dict dry-run in the worker, on the meta device): cold
(`CKAUDIT_NO_SERVER=1`, a fresh worker process) and warm (a forked child of the build server, in a private
directory). Its peak memory is the SUM of its own and the worker's peaks (they run at the same time). The
alternative builds the model on CPU and loads the file for real. Models: a GPT-2-124M-size GPT as nanoGPT
writes it, transformers' BERT-small (4 layers, 512 wide; when transformers is installed) and a
~1.3B-parameter GPT (checkpoint in bf16, ~2.6 GB; skipped with --quick). Prints a Markdown table; writes
benchmarks/results/model.json.

    python benchmarks/bench_model.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "model"
RESULTS = HERE / "results" / "model.json"
GPT = '''"""A GPT-2-style decoder, as in most training repositories."""

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = nn.ModuleDict({"c_attn": nn.Linear(n_embd, 3 * n_embd),
                                   "c_proj": nn.Linear(n_embd, n_embd)})
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))


class GPT(nn.Module):
    def __init__(self, n_layer, n_head, n_embd, vocab_size=50257, block_size=1024):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
'''
BERT = '''"""BERT-small from transformers, as a project would build it."""

from transformers import BertConfig, BertModel


def build():
    config = BertConfig(hidden_size=512, num_hidden_layers=4, num_attention_heads=8, intermediate_size=2048)
    return BertModel(config)
'''


@dataclass(frozen=True)
class Case:
    """A model as a repository defines it: its file, the factory `diagnose --model` names, the checkpoint."""

    file: str
    source: str
    factory: str
    kwargs: dict[str, int] = field(default_factory=dict)
    dtype: str = "float32"
    tied: tuple[tuple[str, str], ...] = ()  # (key, key it shares its tensor with), as the model ties them


GPT_TIED = (("lm_head.weight", "wte.weight"),)
CASES = {
    "gpt2-124M": Case(
        "gpt.py", GPT, "gpt:GPT", {"n_layer": 12, "n_head": 12, "n_embd": 768}, "bfloat16", GPT_TIED
    ),
    "bert-small": Case("bert.py", BERT, "bert:build"),
    "gpt-1.3B": Case(
        "gpt.py", GPT, "gpt:GPT", {"n_layer": 24, "n_head": 16, "n_embd": 2048}, "bfloat16", GPT_TIED
    ),
}
FACTORY = """
import importlib, json, sys, torch
sys.path.insert(0, sys.argv[1])
module, _, name = {factory!r}.partition(":")
factory = getattr(importlib.import_module(module), name)
kwargs = json.loads({kwargs!r})
"""
MAKE = """
with torch.device("meta"):
    model = factory(**kwargs)
state = {{k: torch.empty(v.shape, dtype=torch.{dtype}) for k, v in model.state_dict().items()}}
for key, shared in {tied!r}:
    state[key] = state[shared]
torch.save(state, sys.argv[2])
"""
TORCH_LOAD = """
model = factory(**kwargs)
model.load_state_dict(torch.load(sys.argv[2]))
"""


def script(case: Case, body: str) -> str:
    header = FACTORY.format(factory=case.factory, kwargs=json.dumps(case.kwargs))
    return header + body.format(dtype=case.dtype, tied=case.tied)


def driver(checkpoint: str, root: str, name: str) -> None:
    """The ckaudit side, in its own process: the real `ckaudit diagnose FILE --model MODULE:FACTORY` (reader +
    worker dry run); its own peak and its worker's are read separately, since both are alive at once."""
    case = CASES[name]
    from ckaudit.cli import main as ckaudit

    linked = Path(root) / Path(checkpoint).name  # diagnose wants the file under its root (the import root)
    if not linked.exists():
        linked.symlink_to(Path(checkpoint).resolve())
    (Path(root) / "ckaudit.yaml").write_text("version: 1\n", encoding="utf-8")
    # a fresh edit of the model each run, so that no run is answered from the outcome cache
    (Path(root) / case.file).write_text(case.source + f"# run {time.time_ns()}\n", encoding="utf-8")
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "report.json"
        argv = [
            "diagnose",
            str(linked),
            "--config",
            str(Path(root) / "ckaudit.yaml"),
            "--model",
            case.factory,
        ]
        kwargs = ["--kwargs", json.dumps(case.kwargs)] if case.kwargs else []
        status = ckaudit([*argv, *kwargs, "--format", "json", "--output", str(report_path)])
        report = json.loads(report_path.read_text())
    if status == 2:
        raise SystemExit("ckaudit diagnose failed (exit 2)")
    (result,) = report["checkpoints"]
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "loads": result["verdict"] != "code",
                "rules": [f["rule"] for f in result["findings"]],
                "driver_rss": own,
                "worker_rss": worker_peak,
            }
        )
    )


def run(command: list[str], extra: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Wall time, peak RSS (bytes: the largest process of its tree, from wait4) and stdout of one child."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env={**os.environ, **(extra or {})})
        _pid, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if status != 0:
            raise RuntimeError(f"{command[:3]} failed: {err.read().decode()[-2000:]}")
        return elapsed, usage.ru_maxrss * 1024, out.read().decode()


def warm_runs(driver: list[str], repeat: int) -> float:
    """The best of `repeat` diagnose runs served by the build server (private directory; started by a first
    run, stopped at the end). Only wall time: the forked worker is no child of the driver."""
    with tempfile.TemporaryDirectory(prefix="ckb") as private:
        extra = {"CKAUDIT_SERVER_DIR": os.path.join(private, "srv")}
        status = [sys.executable, "-m", "ckaudit", "server", "status", "--format", "json"]
        run(driver, extra)  # cold; starts the server after it
        deadline = time.monotonic() + 300
        while not json.loads(run(status, extra)[2])["servers"] and time.monotonic() < deadline:
            time.sleep(0.2)
        run(driver, extra)  # the first warm run: the server learns the session's imports
        best = min(run(driver, extra)[0] for _ in range(repeat))
        served = json.loads(run(status, extra)[2])["servers"][0]["sessions"]
        run([sys.executable, "-m", "ckaudit", "server", "stop"], extra)
    if served < repeat + 1:
        raise SystemExit(f"the build server served {served} sessions, not {repeat + 1}: not a warm figure")
    return best


def prepare(name: str) -> tuple[Path, Path]:
    case = CASES[name]
    root = DATA / f"repo-{name}"
    root.mkdir(parents=True, exist_ok=True)
    (root / case.file).write_text(case.source, encoding="utf-8")
    checkpoint = DATA / f"{name}.pt"
    if not checkpoint.exists():
        print(f"writing {checkpoint} …", file=sys.stderr, flush=True)
        run([sys.executable, "-c", script(case, MAKE), str(root), str(checkpoint)])
    return root, checkpoint


def measure(name: str, repeat: int) -> dict[str, Any]:
    root, checkpoint = prepare(name)
    driver = [sys.executable, __file__, "--driver", str(checkpoint), str(root), name]
    ours = [run(driver, {"CKAUDIT_NO_SERVER": "1"}) for _ in range(repeat)]  # cold: a fresh worker process
    warm = warm_runs(driver, repeat)
    theirs = [
        run([sys.executable, "-c", script(CASES[name], TORCH_LOAD), str(root), str(checkpoint)])
        for _ in range(repeat)
    ]
    wall, _, out = min(ours)
    figures = json.loads(out)
    peak = figures["driver_rss"] + figures["worker_rss"]  # concurrent processes: count both
    torch_wall, torch_peak = min(t[0] for t in theirs), max(t[1] for t in theirs)
    return {
        "file_bytes": checkpoint.stat().st_size,
        "loads": figures["loads"],
        "rules": figures["rules"],
        "ckaudit_s": wall,
        "ckaudit_peak_bytes": peak,
        "ckaudit_driver_bytes": figures["driver_rss"],
        "ckaudit_worker_bytes": figures["worker_rss"],
        "torch_s": torch_wall,
        "torch_peak_bytes": torch_peak,
        "speedup": torch_wall / wall,
        "ckaudit_warm_s": warm,
        "warm_speedup": torch_wall / warm,
        "memory_ratio": torch_peak / peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="skip the 1.3B model")
    parser.add_argument("--driver", nargs=3, metavar=("CHECKPOINT", "ROOT", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        driver(*args.driver)
        return
    has_transformers = importlib.util.find_spec("transformers") is not None
    names = [
        n for n in CASES if (n != "gpt-1.3B" or not args.quick) and (n != "bert-small" or has_transformers)
    ]
    results: dict[str, Any] = {"quick": args.quick, "models": {}}
    print(
        "| model | file | `ckaudit diagnose --model` cold | warm | torch.load + load_state_dict | faster "
        "(cold / warm) | ckaudit peak (driver + worker, cold) | torch peak | less memory |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        fig = measure(name, repeat=1 if name == "gpt-1.3B" else 3)
        results["models"][name] = fig
        print(
            f"| {name} | {fig['file_bytes'] / 1e9:.2f} GB | {fig['ckaudit_s']:.2f} s | "
            f"{fig['ckaudit_warm_s']:.2f} s | {fig['torch_s']:.2f} s | "
            f"{fig['speedup']:.1f}x / {fig['warm_speedup']:.1f}x | "
            f"{fig['ckaudit_peak_bytes'] / 2**20:.0f} MB | "
            f"{fig['torch_peak_bytes'] / 2**20:.0f} MB | {fig['memory_ratio']:.1f}x |",
            flush=True,
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
