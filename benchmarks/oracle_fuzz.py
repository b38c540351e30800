"""A longer run of the differential oracle (tests/reader/test_oracle.py) than the fast tier's 150 mutants.

`python benchmarks/oracle_fuzz.py [--mutants N] [--seeds 16,17,...]`

For each seed, the oracle test runs with N mutants: torch.load(weights_only=False) under a
`pickle.find_class` audit hook (nothing runs) against ckaudit's reader, over real checkpoints, divergence
attacks and their mutations. Prints the divergences (none expected) and writes
benchmarks/results/oracle_fuzz.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=5000)
    parser.add_argument("--seeds", default="16,17,18,19")
    args = parser.parse_args()
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        env = {**os.environ, "CKAUDIT_ORACLE_MUTANTS": str(args.mutants), "CKAUDIT_ORACLE_SEED": str(seed)}
        start = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/reader/test_oracle.py"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = round(time.perf_counter() - start, 1)
        divergences = [line.strip() for line in run.stdout.splitlines() if "torch resolved" in line]
        results.append({"seed": seed, "mutants": args.mutants, "ok": run.returncode == 0, "seconds": seconds})
        verdict = "0 divergences" if run.returncode == 0 else "FAILED"
        print(f"seed {seed}: {args.mutants} mutants, {verdict} ({seconds} s)", flush=True)
        for line in divergences[:20]:
            print("   ", line)
    out = ROOT / "benchmarks" / "results" / "oracle_fuzz.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
