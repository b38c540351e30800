"""Git layer benchmarks: `python benchmarks/bench_git.py [--quick] [--baseline DIR]`.

Measured in one run, each against the obvious alternative:
- the hook with no model file staged (target < 0.3 s; it must never import torch: checked) vs bare `python`;
- the hook with a model change, HEAD side from the cache (target <= 1.5x `python -c "import torch"`);
- `blame` over N commits, cold cache vs warm cache;
- materialising N Python files through ckaudit's git layer (a persistent `cat-file` run by GitPython, fed
  in pipelined chunks) vs the plumbing it replaced (`git ls-tree` + one `git cat-file --batch` process,
  re-done here; target <= 1.5x) and vs GitPython's own `get_object_data`, one object per round trip.
`--baseline DIR` (a checkout of ckaudit before the GitPython layer: `git archive 31e3412 | tar -x -C DIR`)
also times the two hook cases with that code, interleaved with the current code, so "before" and "after"
share the machine's load. Writes benchmarks/results/git.json; generated repositories live under
benchmarks/.data/git/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "git"
RESULTS = HERE / "results" / "git.json"
PYTHON = sys.executable
CKAUDIT = [PYTHON, "-m", "ckaudit"]
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}
NET = """\
from torch import nn


class Net(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3)
        self.fc1 = nn.Linear(width, 4)
"""
REGISTRY = f"""\
version: 1
python: {PYTHON}
models:
  net:
    factory: models.net:Net
checkpoints:
  - path: checkpoints/net.pt
    model: net
"""


def sh(
    repo: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command; with check=False exit status 1 (findings) is fine, anything else is a broken run."""
    result = subprocess.run(args, cwd=repo, env=env or ENV, capture_output=True, text=True)
    if result.returncode != 0 and (check or result.returncode != 1):
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def model_repo(name: str, extra_files: int = 0) -> Path:
    repo = DATA / name
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "models").mkdir(parents=True)
    (repo / "checkpoints").mkdir()
    (repo / "models" / "__init__.py").write_text("")
    (repo / "models" / "net.py").write_text(NET)
    (repo / "ckaudit.yaml").write_text(REGISTRY)
    (repo / "README.md").write_text("bench\n")
    for i in range(extra_files):
        folder = repo / "lib" / f"pkg{i // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"mod{i}.py").write_text(f"VALUE = {i}\n" + "# padding\n" * 20)
    code = (
        "import torch, sys\nfrom torch import nn\n"
        "sd = {'conv1.weight': torch.zeros(8, 3, 3, 3), 'conv1.bias': torch.zeros(8), "
        "'fc1.weight': torch.zeros(4, 8), 'fc1.bias': torch.zeros(4)}\ntorch.save(sd, sys.argv[1])"
    )
    subprocess.run([PYTHON, "-c", code, str(repo / "checkpoints" / "net.pt")], check=True)
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "initial")
    return repo


def baseline_env(baseline: Path | None) -> dict[str, str] | None:
    return None if baseline is None else {**ENV, "PYTHONPATH": str(baseline)}


def bench_fast_path(repeat: int, baseline: Path | None) -> dict[str, float | bool | None]:
    repo = model_repo("fast")
    (repo / "README.md").write_text("changed\n")
    sh(repo, "git", "add", "README.md")
    bare = timed(lambda: sh(repo, PYTHON, "-c", "pass"), repeat)
    hook = timed(lambda: sh(repo, *CKAUDIT, "hook", "README.md"), repeat)
    before = None
    if baseline is not None:
        env = baseline_env(baseline)
        before = timed(lambda: sh(repo, *CKAUDIT, "hook", "README.md", env=env), repeat)
    probe = (
        "import sys\nfrom ckaudit.cli import main\nmain(['hook', 'README.md'])\nprint('torch' in sys.modules)"
    )
    imported_torch = sh(repo, PYTHON, "-c", probe).stdout.strip() == "True"
    importtime = sh(repo, PYTHON, "-X", "importtime", "-m", "ckaudit", "hook", "README.md").stderr
    return {
        "hook_s": hook,
        "hook_before_s": before,
        "python_s": bare,
        "imports_torch": imported_torch or "| torch\n" in importtime,
    }


def bench_model_change(repeat: int, baseline: Path | None) -> dict[str, float | None]:
    """Each run stages new model code (an index-side build) while HEAD's result is already cached."""
    repo = model_repo("change")
    sh(
        repo, *CKAUDIT, "hook", "ckaudit.yaml"
    )  # caches HEAD's result, as the commit before this one would have
    torch_import = timed(lambda: sh(repo, PYTHON, "-c", "import torch"), repeat)
    counter = iter(range(10_000))

    def stage(width: int) -> None:
        (repo / "models" / "net.py").write_text(
            NET.replace("nn.Linear(width, 4)", f"nn.Linear(width, {width})") + f"# edit {next(counter)}\n"
        )
        sh(repo, "git", "add", "models/net.py")

    def hook(width: int, env: dict[str, str] | None = None) -> float:
        stage(width)
        return timed(lambda: sh(repo, *CKAUDIT, "hook", "models/net.py", check=False, env=env))

    forward = statistics.median(hook(4) for _ in range(repeat))
    breaking = statistics.median(hook(5) for _ in range(repeat))
    before = None
    if baseline is not None:
        before = statistics.median(hook(4, baseline_env(baseline)) for _ in range(repeat))
    return {
        "hook_s": forward,
        "hook_before_s": before,
        "hook_breaking_s": breaking,
        "import_torch_s": torch_import,
    }


def bench_blame(commits: int) -> dict[str, float | int]:
    repo = model_repo("blame")
    for i in range(commits - 1):
        width = 8 if i < commits // 2 else 16  # one break half-way
        (repo / "models" / "net.py").write_text(
            NET.replace("width: int = 8", f"width: int = {width}") + f"# {i}\n"
        )
        sh(repo, "git", "commit", "-q", "-am", f"commit {i}")
    cache = repo / ".git" / "ckaudit"
    shutil.rmtree(cache, ignore_errors=True)
    cold = timed(lambda: sh(repo, *CKAUDIT, "blame", "checkpoints/net.pt", check=False))
    warm = timed(lambda: sh(repo, *CKAUDIT, "blame", "checkpoints/net.pt", check=False))
    return {"commits": commits, "cold_s": cold, "warm_s": warm}


def bench_snapshot(files: int) -> dict[str, float | int]:
    from ckaudit.vcs.trees import commit_tree, materialise

    repo = model_repo("snapshot", extra_files=files)

    def gitpython() -> None:  # ckaudit's git layer, a fresh repository object each run (no warm cat-file)
        from ckaudit.vcs import repo as vcs_repo

        vcs_repo._open.cache_clear()
        with materialise(commit_tree(repo, "HEAD"), base=DATA):  # the same filesystem as the plumbing run
            pass

    runs: dict[str, list[float]] = {"gitpython": [], "plumbing": [], "odb": []}  # interleaved: same load
    for _ in range(5):
        runs["plumbing"].append(timed(lambda: plumbing_materialise(repo)))
        runs["gitpython"].append(timed(gitpython))
        runs["odb"].append(timed(lambda: object_by_object(repo)))
    return {
        "files": files,
        "plumbing_s": statistics.median(runs["plumbing"]),
        "gitpython_s": statistics.median(runs["gitpython"]),
        "gitpython_odb_s": statistics.median(runs["odb"]),
    }


def object_by_object(repo: Path) -> None:
    """The same files through GitPython's own persistent cat-file (`Git.get_object_data`), which asks one
    object per round trip: what ckaudit's layer would cost without its pipelined chunks."""
    import git as gitpython

    from ckaudit.vcs.trees import commit_tree, wanted, write_files

    tree = commit_tree(repo, "HEAD")
    runner = gitpython.Repo(repo).git
    selected = [e for e in tree.entries.values() if wanted(e)]
    contents = {e.path: runner.get_object_data(e.oid)[3] for e in selected}
    target = Path(tempfile.mkdtemp(dir=DATA))
    write_files(target, contents)
    shutil.rmtree(target)
    runner.clear_cache()


def plumbing_materialise(repo: Path) -> None:
    """The plumbing the git layer replaced: `ls-tree -r -l -z`, then every wanted blob through one
    `git cat-file --batch` process, written under a temporary folder."""
    from ckaudit.vcs.trees import MATERIAL_SUFFIXES, MAX_BLOB

    env = {**ENV, "GIT_OPTIONAL_LOCKS": "0"}
    listing = subprocess.run(
        ["git", "ls-tree", "-r", "-l", "-z", "HEAD"], cwd=repo, env=env, capture_output=True, check=True
    ).stdout
    wanted: dict[str, str] = {}
    for record in listing.split(b"\0"):
        if record:
            meta, _, path = record.partition(b"\t")
            _mode, kind, oid, size = meta.decode().split()
            if kind == "blob" and path.decode().endswith(MATERIAL_SUFFIXES) and int(size) <= MAX_BLOB:
                wanted[path.decode()] = oid
    oids = sorted(set(wanted.values()))
    out = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=repo,
        env=env,
        input="\n".join(oids).encode() + b"\n",
        capture_output=True,
        check=True,
    ).stdout
    blobs, pos = {}, 0
    for _ in oids:
        end = out.index(b"\n", pos)
        oid, _, size = out[pos:end].decode().split()
        blobs[oid] = out[end + 1 : end + 1 + int(size)]
        pos = end + 1 + int(size) + 1
    target = Path(tempfile.mkdtemp(dir=DATA))
    for name, blob in wanted.items():
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(blobs[blob])
    shutil.rmtree(target)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--baseline", type=Path, help="a checkout of the plumbing version, timed alongside")
    args = parser.parse_args()
    baseline = args.baseline.resolve() if args.baseline else None
    DATA.mkdir(parents=True, exist_ok=True)
    repeat = 3 if args.quick else 5
    results = {
        "fast_path": bench_fast_path(repeat, baseline),
        "model_change": bench_model_change(repeat, baseline),
        "blame": bench_blame(20 if args.quick else 100),
        "snapshot": bench_snapshot(300 if args.quick else 2000),
        "quick": args.quick,
    }
    print(table(results))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def table(r: dict[str, Any]) -> str:
    f, m, b, s = r["fast_path"], r["model_change"], r["blame"], r["snapshot"]
    rows = [
        (
            "hook, no model file staged",
            f["hook_s"],
            f"bare python {f['python_s']:.3f} s" + _before(f),
            "< 0.3 s",
            f"torch imported: {f['imports_torch']}",
        ),
        (
            "hook, model change (HEAD cached)",
            m["hook_s"],
            f"import torch {m['import_torch_s']:.3f} s" + _before(m),
            "<= 1.5x",
            f"{m['hook_s'] / m['import_torch_s']:.2f}x",
        ),
        ("hook, breaking change (blocks)", m["hook_breaking_s"], "", "", ""),
        (f"blame, {b['commits']} commits, cold", b["cold_s"], "", "", ""),
        (
            f"blame, {b['commits']} commits, warm",
            b["warm_s"],
            f"cold {b['cold_s']:.2f} s",
            "",
            f"{b['cold_s'] / b['warm_s']:.1f}x faster",
        ),
        (
            f"materialise {s['files']} .py, GitPython cat-file",
            s["gitpython_s"],
            f"plumbing (ls-tree + cat-file --batch) {s['plumbing_s']:.3f} s; "
            f"GitPython object by object {s['gitpython_odb_s']:.3f} s",
            "<= 1.5x",
            f"{s['gitpython_s'] / s['plumbing_s']:.2f}x",
        ),
    ]
    lines = ["| case | time (s) | alternative | target | ratio / check |", "|---|---:|---|---|---|"]
    lines += [f"| {c} | {t:.3f} | {alt} | {target} | {ratio} |" for c, t, alt, target, ratio in rows]
    return "\n".join(lines)


def _before(case: dict[str, Any]) -> str:
    return "" if case.get("hook_before_s") is None else f"; plumbing version {case['hook_before_s']:.3f} s"


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    raise SystemExit(main())
