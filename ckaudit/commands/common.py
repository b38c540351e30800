"""Options every reporting command shares, and the one place a report becomes output and an exit code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ckaudit.config import Config, find_config, load_config
from ckaudit.errors import CkauditError
from ckaudit.findings import Report, Severity
from ckaudit.report import OutputFormat, render

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", type=OutputFormat, choices=list(OutputFormat), default=OutputFormat.TEXT,
                        metavar="{text,json,sarif,github}", help="output format (default: text)")
    parser.add_argument("--output", type=Path, help="write the report to this file instead of stdout")
    parser.add_argument("--fail-on", type=Severity, choices=list(Severity), default=Severity.ERROR,
                        metavar="{error,warning,note}", help="exit 1 when a finding at or above this severity "
                        "is found (default: error)")
    add_config_option(parser)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="registry file (default: ckaudit.yaml at the root)")


def resolve_config(root: Path, explicit: Path | None) -> Config:
    """The registry at `explicit`, else ROOT/ckaudit.yaml, else an empty default registry."""
    if explicit is not None:
        if not explicit.is_file():
            raise CkauditError(f"{explicit}: no such config file")
        return load_config(explicit, root)
    found = find_config(root)
    return load_config(found, root) if found else Config(root=root)


def finish(report: Report, args: argparse.Namespace) -> int:
    """Render, write to --output or stdout, and turn the findings into the exit status."""
    output = render(report, args.format)
    if args.output is not None:
        try:
            args.output.write_text(output, encoding="utf-8")
        except OSError as exc:
            raise CkauditError(f"cannot write {args.output}: {exc}") from None
    else:
        sys.stdout.write(output)
    return EXIT_FINDINGS if report.fails(args.fail_on) else EXIT_OK
