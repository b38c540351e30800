"""Run every benchmark in this folder: `python benchmarks/run.py [--quick]`.

Each bench_<area>.py prints a Markdown table (timings, and ratios against the obvious alternative measured in
the same run) and writes benchmarks/results/<area>.json. This runner calls them one after another, so they
do not compete for the two cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def user_like_environment() -> dict[str, str]:
    """Python as a user's install runs it: ckaudit's bytecode compiled (pip compiles on install; an
    editable checkout under PYTHONDONTWRITEBYTECODE=1 would recompile every module on every run, ~30 ms
    that no user pays) and bytecode writing left on."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "ckaudit")], check=True)
    return {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes only (minutes, not tens of minutes)"
    )
    parser.add_argument("only", nargs="*", help="areas to run (default: all), e.g. reader verify model git")
    args = parser.parse_args()
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
    env = user_like_environment()
    failed = []
    for script in scripts:
        print(f"\n## {script.stem.removeprefix('bench_')}\n", flush=True)
        command = [sys.executable, str(script), *(["--quick"] if args.quick else [])]
        if subprocess.run(command, cwd=HERE.parent, env=env).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
