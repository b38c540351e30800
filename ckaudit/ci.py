"""The GitHub Action's run step (`python -m ckaudit.ci`), kept in Python so tests run it as GitHub does.

It reads the action's inputs from `CKAUDIT_*` variables and the event from `GITHUB_EVENT_NAME` /
`GITHUB_EVENT_PATH`, runs `ckaudit check --base <PR base>` on pull requests and `ckaudit scan` otherwise
(annotations on stdout, SARIF and the HTML page to files, the job summary appended by `finish`), and
records the outcome in `$GITHUB_OUTPUT` (`exit-code`, `sarif-file`, `category`, `command`, `html-file`). It
exits 0 itself so the SARIF and HTML uploads can run; the action's last step fails the job from `exit-code`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ckaudit.errors import EXIT_INTERNAL, CkauditError
from ckaudit.files import parse_shard
from ckaudit.report import escape_data

PR_EVENTS = ("pull_request", "pull_request_target", "merge_group")


@dataclass(frozen=True)
class Plan:
    command: str  # "check", "scan" or "skip"
    argv: tuple[str, ...]
    root: Path
    sarif_file: Path | None
    category: str
    html_file: Path | None = None  # the HTML report, uploaded as an artifact and linked from the summary


def pull_request_base(env: Mapping[str, str]) -> str | None:
    """The base commit of the pull request (or merge group) in the event payload."""
    event_path = env.get("GITHUB_EVENT_PATH")
    if not event_path:
        return None
    try:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CkauditError(f"cannot read the event payload {event_path}: {exc}") from None
    base = (event.get("pull_request") or {}).get("base", {}).get("sha")
    return base or (event.get("merge_group") or {}).get("base_sha")


def _shard(text: str) -> tuple[int, int] | None:
    return parse_shard(text) if text.strip() else None


def plan(env: Mapping[str, str]) -> Plan:
    """Decide what to run from the action's inputs and the event, without running anything."""
    workspace = Path(env.get("GITHUB_WORKSPACE") or ".").resolve()
    root = (workspace / (env.get("CKAUDIT_PATH") or ".")).resolve()
    shard = _shard(env.get("CKAUDIT_SHARD", ""))
    is_pr = env.get("GITHUB_EVENT_NAME", "") in PR_EVENTS
    base = env.get("CKAUDIT_BASE_REF") or (pull_request_base(env) if is_pr else None)
    if is_pr and not base:
        raise CkauditError("pull request event without a base commit: set the action's `base-ref` input")
    suffix = f"-shard-{shard[0]}-of-{shard[1]}" if shard else ""
    command = "check" if base else "scan"
    if command == "check" and shard and shard[0] != 1:
        return Plan("skip", (), root, None, f"ckaudit-check{suffix}")  # the check runs once, in shard 1
    sarif = None
    if env.get("CKAUDIT_SARIF", "true").lower() == "true":
        sarif = Path(env.get("RUNNER_TEMP") or tempfile.gettempdir()) / f"ckaudit-{command}{suffix}.sarif"
    argv = ["check", "--base", base] if base else ["scan", "."]
    if shard and command == "scan":
        argv += ["--shard", f"{shard[0]}/{shard[1]}"]
    argv += ["--format", "github", "--fail-on", env.get("CKAUDIT_FAIL_ON") or "error"]
    if env.get("CKAUDIT_CONFIG"):
        argv += ["--config", str((workspace / env["CKAUDIT_CONFIG"]).resolve())]
    if sarif is not None:
        argv += ["--sarif-output", str(sarif)]
    html = None
    if env.get("CKAUDIT_HTML", "true").lower() == "true":
        html = Path(env.get("RUNNER_TEMP") or tempfile.gettempdir()) / f"ckaudit-{command}{suffix}.html"
        argv += ["--html-output", str(html)]
    return Plan(command, tuple(argv), root, sarif, f"ckaudit-{command}{suffix}", html)


def _set_outputs(env: Mapping[str, str], outputs: Mapping[str, str]) -> None:
    target = env.get("GITHUB_OUTPUT")
    lines = "".join(f"{key}={value}\n" for key, value in outputs.items())
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(lines)
    else:
        sys.stdout.write(lines)


def execute(step: Plan) -> int:
    """Run ckaudit in-process from the scan root; its exit status."""
    from ckaudit.cli import main as ckaudit_main

    if step.command == "skip":
        print("::notice title=ckaudit::the pull request check runs in shard 1 only")
        return 0
    print(f"ckaudit {' '.join(step.argv)}  (in {step.root})", flush=True)
    os.chdir(step.root)
    return ckaudit_main(list(step.argv))


def main(environ: Mapping[str, str] | None = None) -> int:
    """The GitHub Action's entry: run the command its inputs ask for and set the step outputs (its exit
    code, the SARIF and HTML files). Always returns 0: a later step fails the job on `exit-code`, after
    the SARIF upload; a bad input is an annotation and exit-code 2."""
    env = os.environ if environ is None else environ
    try:
        step = plan(env)
    except CkauditError as exc:
        print(f"::error title=ckaudit::{escape_data(str(exc))}")
        _set_outputs(
            env,
            {"exit-code": "2", "sarif-file": "", "category": "ckaudit", "command": "none", "html-file": ""},
        )
        return 0
    try:
        code = execute(step)
    except Exception:  # a bug in ckaudit: show it, and still tell the fail step
        traceback.print_exc()
        print("::error title=ckaudit::ckaudit crashed; the traceback is in the log")
        code = EXIT_INTERNAL
    sarif = str(step.sarif_file) if step.sarif_file is not None and step.sarif_file.is_file() else ""
    html = str(step.html_file) if step.html_file is not None and step.html_file.is_file() else ""
    outputs = {
        "exit-code": str(code),
        "sarif-file": sarif,
        "category": step.category,
        "command": step.command,
    }
    _set_outputs(env, {**outputs, "html-file": html})
    return 0


if __name__ == "__main__":
    sys.exit(main())
