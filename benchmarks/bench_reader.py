"""Reader benchmark: `ckaudit inspect` against torch.load / torch.load(mmap=True), and `verify` against
sha256sum and a bare hashlib.sha256 pass, on the same files in the same run.

    python benchmarks/bench_reader.py [--quick]     (--quick skips the ~2 GB checkpoint)

Prints a Markdown table and writes the figures to benchmarks/results/reader.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
RESULTS = HERE / "results" / "reader.json"
MB = 1024 * 1024
# name -> (number of tensors, bytes per tensor)
SIZES = {
    "10MB": (40, MB // 4),
    "500MB": (200, 5 * MB // 2),
    "2GB": (400, 5 * MB),
    "5000-tensors": (5000, 256),
}


def make_checkpoint(name: str) -> Path:
    """Written by a child process, so this one stays small: children forked from a process that holds
    torch and gigabytes would report the parent's memory as their peak."""
    path = DATA / f"reader_{name}.pt"
    if path.exists():
        return path
    count, nbytes = SIZES[name]
    DATA.mkdir(parents=True, exist_ok=True)
    make = f"state = {{f'layers.{{i}}.weight': torch.randn({nbytes // 4}) for i in range({count})}}"
    save = "torch.save({'model_state_dict': state, 'epoch': 1}, sys.argv[1])"
    script = f"import sys, torch; {make}; {save}"
    subprocess.run([sys.executable, "-c", script, str(path.with_suffix(".tmp"))], check=True)
    path.with_suffix(".tmp").rename(path)
    return path


def run_child(command: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{command} failed with status {status}")
    return elapsed, usage.ru_maxrss * 1024


def best_of(repeat: int, func: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def process_figures(path: Path, repeat: int) -> dict[str, Any]:
    py = sys.executable
    commands = {
        "inspect": [py, "-m", "ckaudit", "inspect", str(path), "--format", "json"],  # the real CLI
        "torch_load": [py, "-c", f"import torch; torch.load({str(path)!r}, weights_only=True)"],
        "torch_load_mmap": [
            py,
            "-c",
            f"import torch; torch.load({str(path)!r}, weights_only=True, mmap=True)",
        ],
    }
    out: dict[str, Any] = {}
    for name, command in commands.items():
        runs = [run_child(command) for _ in range(repeat)]
        out[f"{name}_s"] = statistics.median(t for t, _ in runs)
        out[f"{name}_peak_mb"] = max(m for _, m in runs) / MB
    return out


def inprocess_figures(path: Path, repeat: int) -> dict[str, Any]:
    import torch

    from ckaudit.reader import read_checkpoint

    return {
        "read_checkpoint_s": best_of(max(repeat, 5), lambda: read_checkpoint(path)),
        "torch_load_inproc_s": best_of(repeat, lambda: torch.load(path, weights_only=True)),
        "torch_load_mmap_inproc_s": best_of(repeat, lambda: torch.load(path, weights_only=True, mmap=True)),
    }


def hashlib_pass(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        while chunk := handle.read(8 * MB):
            digest.update(chunk)
    return digest.hexdigest()


def verify_figures(path: Path, repeat: int) -> dict[str, Any]:
    from ckaudit.reader import read_checkpoint, verify_checkpoint

    info = read_checkpoint(path)
    hashlib_pass(path)  # warm the page cache so every contender reads from memory
    return {
        "verify_s": best_of(repeat, lambda: verify_checkpoint(path, info, sha256=True)),
        "verify_crc_only_s": best_of(repeat, lambda: verify_checkpoint(path, info, sha256=False)),
        "hashlib_sha256_s": best_of(repeat, lambda: hashlib_pass(path)),
        "sha256sum_s": best_of(repeat, lambda: subprocess.run(["sha256sum", str(path)], capture_output=True)),
    }


def row(name: str, path: Path, fig: dict[str, Any]) -> str:
    cells = [
        name,
        f"{path.stat().st_size / MB:,.0f} MB",
        f"{fig['inspect_s']:.3f} s",
        f"{fig['torch_load_s']:.2f} s",
        f"{fig['torch_load_mmap_s']:.2f} s",
        f"{fig['torch_load_s'] / fig['inspect_s']:.1f}x",
        f"{fig['read_checkpoint_s'] * 1000:.1f} ms",
        f"{fig['torch_load_inproc_s'] * 1000:.0f} ms",
        f"{fig['torch_load_inproc_s'] / fig['read_checkpoint_s']:.0f}x",
        f"{fig['inspect_peak_mb']:.0f} MB",
        f"{fig['torch_load_peak_mb']:.0f} MB",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="skip the ~2 GB checkpoint, fewer repeats")
    args = parser.parse_args()
    names = [n for n in SIZES if not (args.quick and n == "2GB")]
    repeat = 2 if args.quick else 3
    results: dict[str, Any] = {"quick": args.quick, "checkpoints": {}}
    lines = [
        "| checkpoint | size | inspect (process) | torch.load | torch.load mmap | ratio | read_checkpoint "
        "| torch.load in-proc | ratio | inspect peak | torch.load peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    paths = {name: make_checkpoint(name) for name in names}
    figures = {
        name: process_figures(path, repeat) for name, path in paths.items()
    }  # before torch is imported
    for name, path in paths.items():
        fig = figures[name] | inprocess_figures(path, repeat)
        results["checkpoints"][name] = {"bytes": path.stat().st_size, **fig}
        lines.append(row(name, path, fig))
    biggest = make_checkpoint(names[-2] if names[-1] == "5000-tensors" else names[-1])
    verify = verify_figures(biggest, repeat)
    results["verify"] = {"file": biggest.name, "bytes": biggest.stat().st_size, **verify}
    small, large = results["checkpoints"]["10MB"], results["checkpoints"][names[-2]]
    results["flatness"] = large["inspect_s"] / small["inspect_s"]
    print("\n".join(lines))
    print(f"\ninspect time {names[-2]} / 10MB: {results['flatness']:.2f}x\n")
    print(
        "| verify on | CRC32+sha256 | CRC32 only | hashlib.sha256 | sha256sum | vs sha256sum | vs hashlib |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {biggest.name} ({biggest.stat().st_size / MB:,.0f} MB) | {verify['verify_s']:.2f} s "
        f"| {verify['verify_crc_only_s']:.2f} s | {verify['hashlib_sha256_s']:.2f} s "
        f"| {verify['sha256sum_s']:.2f} s "
        f"| {verify['sha256sum_s'] / verify['verify_s']:.1f}x faster "
        f"| {verify['verify_s'] / verify['hashlib_sha256_s']:.2f}x |"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
