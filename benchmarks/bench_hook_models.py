"""The hook with a model change on real model definitions: `python benchmarks/bench_hook_models.py [--quick]`.

Models: a GPT-2-small-size GPT written as training repositories write it (a causal-mask buffer from
`torch.tril(torch.ones(...))`, weights initialised in `__init__`), and transformers' BERT (bert-base) when
transformers is installed (`pip install -r benchmarks/requirements.txt`; it keeps torch at its version).
For each: a repository with the model, a registered checkpoint (bf16, written once under
benchmarks/.data/hook/), ckaudit.yaml without `python:` (the interpreter is discovered), HEAD's result cached
by one earlier hook run — then each measured run stages an edit of the model file and runs `ckaudit hook`
(an index-side build on meta plus a dry run), against `python -c "import torch"` in the same run and against
importing the model's module (`import torch, bert` pulls in transformers, which alone costs more than torch).
Each hook runs twice per round: cold (`CKAUDIT_NO_SERVER=1`, a fresh worker process; target at most 1.2x
`import torch`) and warm (a forked child of the build server, started in a private directory by an earlier
run and stopped at the end; target at most 0.25x).
Writes benchmarks/results/hook_models.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "hook"
RESULTS = HERE / "results" / "hook_models.json"
PYTHON = sys.executable
ENV_KEYS = ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH", "CKAUDIT_SERVER_DIR", "CKAUDIT_NO_SERVER")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}
GPT = '''"""nanoGPT-style model definition."""

import math

import torch
from torch import nn
from torch.nn import functional as F


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.n_head = n_head
        self.register_buffer(
            "bias", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size)
        )


class MLP(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd)
        self.dropout = nn.Dropout(0.0)


class Block(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd)


class GPT(nn.Module):
    def __init__(self, n_layer=12, n_head=12, n_embd=768, vocab_size=50257, block_size=1024):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd),
            wpe=nn.Embedding(block_size, n_embd),
            h=nn.ModuleList([Block(n_embd, n_head, block_size) for _ in range(n_layer)]),
            ln_f=nn.LayerNorm(n_embd),
        ))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
'''
BERT = '''"""A BERT encoder from transformers, as a project would build it."""

from transformers import BertConfig, BertModel


def build():
    return BertModel(BertConfig())
'''
MODELS = {
    "gpt": {"file": "gpt.py", "source": GPT, "factory": "gpt:GPT"},
    "bert": {"file": "bert.py", "source": BERT, "factory": "bert:build"},
}
SAVE = """
import sys, torch
sys.path.insert(0, sys.argv[1])
module, _, name = sys.argv[2].partition(":")
factory = getattr(__import__(module), name)
with torch.device("meta"):
    model = factory()
state = {k: torch.empty(v.shape, dtype=torch.bfloat16) for k, v in model.state_dict().items()}
torch.save(state, sys.argv[3])
"""


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    import os

    return {**{k: v for k, v in os.environ.items() if k in ENV_KEYS}, **GIT_ENV, **(extra or {})}


def sh(
    repo: Path, *args: str, ok: tuple[int, ...] = (0,), extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=repo, env=env(extra), capture_output=True, text=True)
    if result.returncode not in ok:
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def timed(repo: Path, *args: str, ok: tuple[int, ...] = (0,), extra: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    sh(repo, *args, ok=ok, extra=extra)
    return time.perf_counter() - start


COLD = {"CKAUDIT_NO_SERVER": "1"}


def server_sessions(repo: Path) -> int | None:
    """Sessions the build server (of the private directory) has served; None while none answers."""
    out = sh(repo, PYTHON, "-m", "ckaudit", "server", "status", "--format", "json").stdout
    servers = json.loads(out)["servers"]
    return int(servers[0]["sessions"]) if servers else None


def warm_up(repo: Path, model_file: Path, source: str) -> None:
    """Start the server (a hook run that builds, then wait for it), then one warm run so that it learns and
    preloads the model's third-party imports (transformers), as after a user's first warm commit."""
    for step in range(2):
        model_file.write_text(source + f"# warm-up {step}\n", encoding="utf-8")
        sh(repo, "git", "add", model_file.name)
        sh(repo, PYTHON, "-m", "ckaudit", "hook", model_file.name)
        deadline = time.monotonic() + 300
        while server_sessions(repo) is None and time.monotonic() < deadline:
            time.sleep(0.2)
    time.sleep(5.0 if "transformers" in source else 1.0)  # the server imports what the session used


def prepare(name: str) -> Path:
    model = MODELS[name]
    repo = DATA / name
    checkpoint = DATA / f"{name}.pt"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir(parents=True)
    (repo / model["file"]).write_text(model["source"], encoding="utf-8")
    if not checkpoint.exists():
        print(f"writing {checkpoint} …", file=sys.stderr, flush=True)
        sh(repo, PYTHON, "-c", SAVE, str(repo), model["factory"], str(checkpoint))
    (repo / "checkpoints").mkdir()
    (repo / "checkpoints" / "model.pt").symlink_to(checkpoint)
    (repo / ".gitignore").write_text("checkpoints/\n", encoding="utf-8")
    (repo / "ckaudit.yaml").write_text(
        f"version: 1\nmodels:\n  {name}:\n    factory: {model['factory']}\n"
        f"checkpoints:\n  - path: checkpoints/model.pt\n    model: {name}\n",
        encoding="utf-8",
    )
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "model")
    sh(repo, PYTHON, "-m", "ckaudit", "hook", "ckaudit.yaml")  # caches HEAD, as the previous commit did
    return repo


def measure(name: str, repeat: int) -> dict[str, Any]:
    repo = prepare(name)
    model_file = repo / MODELS[name]["file"]
    module = MODELS[name]["factory"].partition(":")[0]
    warm_up(repo, model_file, MODELS[name]["source"])
    hooks, warm_hooks, torch_imports, model_imports = [], [], [], []
    for i in range(repeat):  # interleaved, so all of them see the same load on the machine
        for runs, extra in ((hooks, COLD), (warm_hooks, None)):
            model_file.write_text(MODELS[name]["source"] + f"# edit {i} {extra}\n", encoding="utf-8")
            sh(repo, "git", "add", model_file.name)
            runs.append(timed(repo, PYTHON, "-m", "ckaudit", "hook", model_file.name, extra=extra))
        torch_imports.append(timed(repo, PYTHON, "-c", "import torch"))
        model_imports.append(timed(repo, PYTHON, "-c", f"import torch, {module}"))
    served = server_sessions(repo)
    sh(repo, PYTHON, "-m", "ckaudit", "server", "stop")
    hook, warm = statistics.median(hooks), statistics.median(warm_hooks)
    torch_import, model_import = statistics.median(torch_imports), statistics.median(model_imports)
    return {
        "hook_s": hook,
        "warm_hook_s": warm,
        "import_torch_s": torch_import,
        "ratio": hook / torch_import,
        "warm_ratio": warm / torch_import,
        "import_model_s": model_import,
        "ratio_to_model_import": hook / model_import,
        "warm_sessions_served": served,
        "runs": repeat,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 runs per model instead of 5")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    names = ["gpt"] + (["bert"] if importlib.util.find_spec("transformers") else [])
    with tempfile.TemporaryDirectory(prefix="ckb") as private:  # the benchmark's own build server
        os.environ["CKAUDIT_SERVER_DIR"] = os.path.join(private, "srv")
        results = {name: measure(name, 3 if args.quick else 5) for name in names}
    print(
        "| model | hook cold | hook warm | `import torch` | cold ratio (target <= 1.2x) "
        "| warm ratio (target <= 0.25x) | `import torch, <model module>` |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['hook_s']:.2f} s | {r['warm_hook_s']:.2f} s | {r['import_torch_s']:.2f} s "
            f"| {r['ratio']:.2f}x | {r['warm_ratio']:.2f}x | {r['import_model_s']:.2f} s |"
        )
    if "bert" not in results:
        print("(bert skipped: transformers is not installed; `pip install -r benchmarks/requirements.txt`)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"quick": args.quick, "models": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
