"""`ckaudit explain [FILE|-]`: which cause, rule and fix an error text points to (ckaudit.explain)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ckaudit.commands.common import EXIT_FINDINGS, EXIT_OK, emit
from ckaudit.errors import CkauditError
from ckaudit.explain import Explanation, explain_text
from ckaudit.findings import Severity
from ckaudit.report import finding_dict


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "explain",
        help="say which cause, rule and fix an error message points to",
        description="Read a traceback or error text (a CI log, a bug report) and say which "
        "cause (code, repository, environment) and rule it points to, with the fix. "
        "Exit 1 when a cause was found, 0 when the text matched nothing known.",
    )
    parser.add_argument("file", nargs="?", default="-", help="file with the error text (default: stdin, `-`)")
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    parser.add_argument("--output", type=Path, help="write the explanation to this file instead of stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    text = _read(args.file)
    explanation = explain_text(text, Path.cwd())
    output = render_json(explanation) if args.format == "json" else render_text(explanation)
    emit(output, args.output)
    return EXIT_FINDINGS if any(f.severity is Severity.ERROR for f in explanation.findings) else EXIT_OK


def _read(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CkauditError(f"cannot read {name}: {exc.strerror or exc}") from None


def render_json(explanation: Explanation) -> str:
    """The explanation as JSON, its findings in the report's finding shape."""
    body = {
        "version": 1,
        "verdict": explanation.verdict,
        "findings": [finding_dict(f) for f in explanation.findings],
    }
    return json.dumps(body, indent=2, default=str) + "\n"


def render_text(explanation: Explanation) -> str:
    """The verdict and each finding with its fix; a hint to diagnose the file itself when nothing matched."""
    if not explanation.findings:
        return (
            "verdict: unknown — nothing in this text matches a known checkpoint-loading failure.\n"
            "Try `ckaudit diagnose CHECKPOINT --model module:callable` on the file itself.\n"
        )
    lines = [f"verdict: {explanation.verdict}"]
    for finding in explanation.findings:
        lines.append(
            f"\n{finding.severity.value} [{finding.rule.value}] ({finding.cause.value}) {finding.message}"
        )
        if finding.checkpoint:
            lines.append(f"  checkpoint: {finding.checkpoint}")
        if finding.location is not None and finding.location.line is not None:
            lines.append(f"  at: {finding.location.path}:{finding.location.line}")
        lines.append(f"  fix: {finding.fix}")
    return "\n".join(lines) + "\n"
