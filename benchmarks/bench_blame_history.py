"""`blame` over a real history: `python benchmarks/bench_blame_history.py [--quick] [--mirror GIT]
[--baseline DIR]`.

The history is nanochat's (`--mirror`: a local clone or bare git directory of github.com/karpathy/nanochat,
or `$CKAUDIT_BENCH_NANOCHAT`; it is cloned into a temporary folder with `git clone`, no network), ~180
first-parent commits that touch Python code, most of them not the model. Its GPT (`nanochat/gpt.py`) is
registered with a tiny config through `build:`; a checkpoint saved with real torch from the model as of the
first commit that has it lives outside git and is registered with `ckaudit register`. Without a mirror, a
synthetic history of the same shape is generated instead (bench_git's small model; the table says which).

Each round, interleaved: `python -c "import torch"`; `ckaudit blame` cold (outcome cache removed, the build
server stopped — it runs in a private directory); then warm (the cache of the cold run, the server it
started). `--baseline DIR` (`git archive <rev> | tar -x -C DIR`) times that code's cold and warm runs in the
same rounds. One more, instrumented, cold run counts what the time goes to: builds (worker dry runs),
distinct model trees, worker start-ups and git calls. Writes benchmarks/results/blame_history.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_git import CKAUDIT, ENV, NET, PYTHON, baseline_env, model_repo, sh

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "blame_history.json"
MODEL_FILE = "nanochat/gpt.py"
BUILD = (
    "from nanochat.gpt import GPT, GPTConfig\n"
    "model = GPT(GPTConfig(sequence_len=64, vocab_size=256, n_layer=2, n_head=2, n_kv_head=2, n_embd=64))\n"
)
SAVE = """
import sys, torch
sys.path.insert(0, sys.argv[1])
namespace = {}
exec(sys.argv[2], namespace)
torch.save(namespace["model"].state_dict(), sys.argv[3])
"""
# run in-process by the instrumented run: counters around the evaluator, the worker and git, nothing else
PROFILE = """
import collections, json, sys
from ckaudit.scan.evaluator import Evaluator
from ckaudit.vcs.repo import GitRepo
from ckaudit.worker.client import ModelWorker
counts = collections.Counter()
keys = set()
def counting(owner, name, counter, keep=None):
    real = getattr(owner, name)
    def wrapper(self, *args, **kwargs):
        counts[counter] += 1
        if keep is not None:
            keep(self, args)
        return real(self, *args, **kwargs)
    setattr(owner, name, wrapper)
counting(Evaluator, "_evaluate", "builds", lambda self, a: keys.add(self.outcome_key(*a)))
counting(ModelWorker, "_spawn", "worker_starts")
counting(GitRepo, "run", "git_calls")
from ckaudit.cli import main
try:
    main(["blame", sys.argv[1]])
except SystemExit:
    pass
print(json.dumps({**counts, "distinct_trees": len(keys)}), file=sys.stderr)
"""


def nanochat_repo(mirror: str, work: Path) -> tuple[Path, Path]:
    """A clone of the mirror with the GPT registered, and its checkpoint (outside git)."""
    repo = work / "nanochat"
    sh(work, "git", "clone", "-q", mirror, str(repo))
    first = sh(repo, "git", "log", "--reverse", "--format=%H", "--", MODEL_FILE).stdout.split()[0]
    old = work / "old"
    old.mkdir()
    archive = subprocess.run(["git", "archive", first, "nanochat"], cwd=repo, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    checkpoint = work / "checkpoints" / "gpt.pt"
    checkpoint.parent.mkdir()
    sh(old, PYTHON, "-c", SAVE, str(old), BUILD, str(checkpoint))
    indented = "".join(f"      {line}\n" for line in BUILD.splitlines())
    (repo / "ckaudit.yaml").write_text(
        f"version: 1\npython: {PYTHON}\nmodels:\n  gpt:\n    build: |\n{indented}"
    )
    sh(repo, *CKAUDIT, "register", str(checkpoint), "--model", "gpt")
    return repo, checkpoint


def synthetic_repo(commits: int) -> tuple[Path, Path]:
    """bench_git's model repository grown to `commits` commits: one in five edits the model (a break
    half-way, a revert near the end), the rest touch other Python files."""
    repo = model_repo("blame_history")
    for i in range(commits - 1):
        if i % 5 == 0:
            width = 16 if commits // 2 <= i < commits - 20 else 8
            (repo / "models" / "net.py").write_text(
                NET.replace("width: int = 8", f"width: int = {width}") + f"# {i % 40}\n"
            )
        else:
            (repo / "tools" / f"tool{i % 7}.py").parent.mkdir(exist_ok=True)
            (repo / "tools" / f"tool{i % 7}.py").write_text(f"VALUE = {i}\n")
        sh(repo, "git", "add", "-A")
        sh(repo, "git", "commit", "-q", "-m", f"commit {i}")
    return repo, repo / "checkpoints" / "net.pt"


def wall(repo: Path, *args: str, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    sh(repo, *args, check=False, env=env)
    return time.perf_counter() - start


def cold_then_warm(repo: Path, checkpoint: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """Cold (no cache, no server), then warm once the server the cold run started answers; the warm run's
    sessions served by the server are returned so that a cold figure is never reported as warm."""
    sh(repo, *CKAUDIT, "server", "stop", env=env)
    shutil.rmtree(repo / ".git" / "ckaudit", ignore_errors=True)
    cold = wall(repo, *CKAUDIT, "blame", str(checkpoint), env=env)
    before = wait_for_server(repo, env)
    warm = wall(repo, *CKAUDIT, "blame", str(checkpoint), env=env)
    return cold, warm, server_sessions(repo, env) - before


def server_sessions(repo: Path, env: dict[str, str]) -> int:
    out = sh(repo, *CKAUDIT, "server", "status", "--format", "json", env=env).stdout
    return sum(int(s["sessions"]) for s in json.loads(out)["servers"])


def wait_for_server(repo: Path, env: dict[str, str], limit: float = 60.0) -> int:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        out = sh(repo, *CKAUDIT, "server", "status", "--format", "json", env=env).stdout
        if json.loads(out)["servers"]:
            return server_sessions(repo, env)
        time.sleep(0.5)
    return 0


def summary(runs: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(runs), "min_s": min(runs), "max_s": max(runs)}


def measure(repo: Path, checkpoint: Path, rounds: int, baseline: Path | None) -> dict[str, Any]:
    env = {**ENV, "CKAUDIT_SERVER_DIR": str(repo.parent / "srv")}
    variants = {"after": env}
    if baseline is not None:
        variants["before"] = {**(baseline_env(baseline) or {}), **env}
    runs: dict[str, list[float]] = {"torch": []}
    served: dict[str, list[int]] = {name: [] for name in variants}
    for _ in range(rounds):
        runs["torch"].append(wall(repo, PYTHON, "-c", "import torch"))
        for name, variant in variants.items():
            cold, warm, sessions = cold_then_warm(repo, checkpoint, variant)
            runs.setdefault(f"{name}_cold", []).append(cold)
            runs.setdefault(f"{name}_warm", []).append(warm)
            served[name].append(sessions)
    sh(repo, *CKAUDIT, "server", "stop", env=env)
    result: dict[str, Any] = {key: summary(values) for key, values in runs.items()}
    result["warm_sessions"] = served
    return result


def profile(repo: Path, checkpoint: Path, env: dict[str, str]) -> dict[str, int]:
    shutil.rmtree(repo / ".git" / "ckaudit", ignore_errors=True)
    done = sh(
        repo, PYTHON, "-c", PROFILE, str(checkpoint), check=False, env={**env, "CKAUDIT_NO_SERVER": "1"}
    )
    return dict(json.loads(done.stderr.strip().splitlines()[-1]))


def history_shape(repo: Path, checkpoint: Path) -> dict[str, Any]:
    out = sh(repo, *CKAUDIT, "blame", str(checkpoint), "--format", "json", check=False).stdout
    data = json.loads(out)
    statuses = [h["status"] for h in data["history"]]
    return {
        "commits": len(statuses),
        **{status: statuses.count(status) for status in ("loads", "fails", "unbuildable")},
        "breaks": data["breaks"],
        "fixes": data["fixes"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds instead of 3")
    parser.add_argument("--mirror", default=os.environ.get("CKAUDIT_BENCH_NANOCHAT"), help="nanochat's git")
    parser.add_argument("--baseline", type=Path, help="a checkout of ckaudit to time alongside (before)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ckblame") as scratch:
        work = Path(scratch)
        if args.mirror:
            repo, checkpoint = nanochat_repo(args.mirror, work)
        else:
            repo, checkpoint = synthetic_repo(180)
        results: dict[str, Any] = {
            "history": "nanochat" if args.mirror else "synthetic",
            **history_shape(repo, checkpoint),
            "profile": profile(repo, checkpoint, ENV),
        }
        if args.baseline:
            baseline = args.baseline.resolve()
            results["profile_before"] = profile(repo, checkpoint, baseline_env(baseline) or ENV)
        results |= measure(
            repo, checkpoint, 2 if args.quick else 3, args.baseline and args.baseline.resolve()
        )
    print(table(results))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def table(r: dict[str, Any]) -> str:
    torch_s = r["torch"]["median_s"]
    rows = ["| blame | median | spread | ratio to `import torch` |", "|---|---:|---:|---:|"]
    for key in ("before_cold", "after_cold", "before_warm", "after_warm"):
        if key in r:
            s = r[key]
            rows.append(
                f"| {key.replace('_', ', ')} | {s['median_s']:.2f} s | {s['min_s']:.2f}–{s['max_s']:.2f} s "
                f"| {s['median_s'] / torch_s:.2f}x |"
            )
    t = r["torch"]
    rows.append(
        f'| `python -c "import torch"` | {torch_s:.2f} s | {t["min_s"]:.2f}–{t["max_s"]:.2f} s | 1x |'
    )
    p = r["profile"]
    head = (
        f"{r['history']} history: {r['commits']} commits ({r.get('loads', 0)} load, "
        f"{r.get('fails', 0)} fail, "
        f"{r.get('unbuildable', 0)} unbuildable); cold run: {p.get('builds', 0)} builds of "
        f"{p.get('distinct_trees', 0)} distinct model trees, {p.get('worker_starts', 0)} worker start-up(s), "
        f"{p.get('git_calls', 0)} git calls"
    )
    return head + "\n\n" + "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
