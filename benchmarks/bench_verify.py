"""`ckaudit scan --verify` against `sha256sum` and a bare `hashlib.sha256` pass over the same bytes.

`python benchmarks/bench_verify.py [--quick]`

For each size, one registered torch.save checkpoint (with its sha256 in ckaudit.yaml, so --verify computes
every zip member's CRC32 *and* the sha256) in a folder of its own under benchmarks/.data/verify/. Every
measurement reads from the page cache (one warm-up read first), best of --repeat runs:

- `ckaudit scan --verify` as a whole process, with the verification cache emptied first ("first");
- the same again with the cache filled ("cached");
- `sha256sum FILE` as a process, and `hashlib.sha256` over 8 MiB chunks in this process;
- `scan_files(verify=True)` in this process, uncached and cached (no interpreter start-up).

Targets (issue 2): --verify >= 4x faster than sha256sum, within 1.5x of hashlib.sha256, and a cached second
--verify >= 50x faster than the first. Prints a Markdown table, writes benchmarks/results/verify.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "verify"
RESULTS = HERE / "results" / "verify.json"
MB = 1024 * 1024
CHUNK = 8 * MB


def make_checkpoint(folder: Path, size_mb: int) -> Path:
    """64 MiB float32 tensors totalling `size_mb`, registered with their sha256, in a repo of their own."""
    target = folder / "model.pt"
    if not target.is_file():
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        generator = torch.Generator().manual_seed(0)
        left, tensors = size_mb * MB // 4, {}
        while left > 0:
            n = min(left, 64 * MB // 4)
            tensors[f"layers.{len(tensors)}.weight"] = torch.rand(n, generator=generator)
            left -= n
        torch.save(tensors, folder / "model.pt.tmp")
        os.replace(folder / "model.pt.tmp", target)
    if not (folder / ".git").is_dir():  # its own repository: the cache lives in its .git, not ckaudit's
        subprocess.run(["git", "init", "-q", str(folder)], check=True)
    registry = folder / "ckaudit.yaml"
    if not registry.is_file():
        digest = hashlib_sha256(target)
        registry.write_text(f'version: 1\ncheckpoints:\n  - path: model.pt\n    sha256: "{digest}"\n')
    return target


def hashlib_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def best_of(repeat: int, run: Callable[[], object], before: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def process(*command: str, env: dict[str, str] | None = None) -> Callable[[], None]:
    def run() -> None:
        done = subprocess.run(list(command), env=env, capture_output=True, check=False)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr.decode()}")

    return run


def in_process_scan(folder: Path, use_cache: bool) -> Callable[[], None]:
    from ckaudit.files import scan_files
    from ckaudit.registry.config import load_config

    config = load_config(folder / "ckaudit.yaml")

    def run() -> None:
        report = scan_files(config, verify=True, use_cache=use_cache)
        errors = [f for f in report.all_findings() if f.severity.value == "error"]  # not-tracked is expected
        assert not errors, errors

    return run


def measure(folder: Path, size_mb: int, repeat: int) -> dict[str, float]:
    from ckaudit.cache import verify as verify_cache

    path = make_checkpoint(folder, size_mb)
    cache = folder / ".git" / "ckaudit"
    env = dict(os.environ)
    clear = lambda: shutil.rmtree(cache, ignore_errors=True)  # noqa: E731
    hashlib_sha256(path)  # warm the page cache
    ckaudit = [sys.executable, "-m", "ckaudit", "scan", str(folder), "--verify", "--format", "json"]
    age = time.time() - path.stat().st_mtime
    if age < verify_cache.RACY_NS / 1e9:
        time.sleep(verify_cache.RACY_NS / 1e9 - age)  # a file written this instant is never cached
    figures = {
        "size_mb": size_mb,
        "ckaudit_verify_first_s": best_of(repeat, process(*ckaudit, env=env), before=clear),
        "ckaudit_verify_cached_s": best_of(repeat, process(*ckaudit, env=env)),
        "sha256sum_s": best_of(repeat, process("sha256sum", str(path))),
        "hashlib_sha256_s": best_of(repeat, lambda: hashlib_sha256(path)),
    }
    figures["in_process_verify_s"] = best_of(repeat, in_process_scan(folder, use_cache=False))
    in_process_scan(folder, use_cache=True)()
    figures["in_process_cached_s"] = best_of(repeat, in_process_scan(folder, use_cache=True))
    return figures


def ratios(f: dict[str, float]) -> dict[str, float]:
    return {
        "sha256sum_over_verify": f["sha256sum_s"] / f["ckaudit_verify_first_s"],
        "verify_over_hashlib": f["ckaudit_verify_first_s"] / f["hashlib_sha256_s"],
        "in_process_verify_over_hashlib": f["in_process_verify_s"] / f["hashlib_sha256_s"],
        "first_over_cached_process": f["ckaudit_verify_first_s"] / f["ckaudit_verify_cached_s"],
        "first_over_cached_in_process": f["in_process_verify_s"] / f["in_process_cached_s"],
    }


def table(rows: list[dict[str, float]]) -> str:
    lines = [
        "| size | verify (first) | verify (cached) | sha256sum | hashlib.sha256 | in-process verify "
        "| in-process cached | sha256sum / verify | verify / hashlib | first / cached (process) "
        "| first / cached (in-process) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        q = ratios(r)
        lines.append(
            f"| {r['size_mb']} MB | {r['ckaudit_verify_first_s']:.3f} s "
            f"| {r['ckaudit_verify_cached_s']:.3f} s "
            f"| {r['sha256sum_s']:.3f} s | {r['hashlib_sha256_s']:.3f} s | {r['in_process_verify_s']:.3f} s "
            f"| {r['in_process_cached_s'] * 1000:.1f} ms | {q['sha256sum_over_verify']:.1f}x "
            f"| {q['verify_over_hashlib']:.2f}x ({q['in_process_verify_over_hashlib']:.2f}x in-process) "
            f"| {q['first_over_cached_process']:.0f}x | {q['first_over_cached_in_process']:.0f}x |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="64 MB and 256 MB instead of ~500 MB and ~2 GB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = (64, 256) if args.quick else (512, 2048)
    rows = [measure(DATA / f"{size}mb", size, args.repeat) for size in sizes]
    print(table(rows))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = {"quick": args.quick, "cpus": os.cpu_count(), "rows": [{**r, **ratios(r)} for r in rows]}
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
