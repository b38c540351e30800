"""Options every reporting command shares, and the one place a report becomes output and an exit code."""

from __future__ import annotations

import argparse
import enum
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from ckaudit.errors import EXIT_FINDINGS, EXIT_OK, CkauditError
from ckaudit.findings import Report, Severity
from ckaudit.registry import CONFIG_NAME, Config, find_config, load_config
from ckaudit.report import OutputFormat, job_summary, render, render_html


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """--format, --output, --sarif-output, --html-output, --fail-on and --config, as every reporting
    command takes them."""
    add_choice_option(parser, "--format", OutputFormat.TEXT, "output format (default: text)")
    parser.add_argument("--output", type=Path, help="write the report to this file instead of stdout")
    parser.add_argument(
        "--sarif-output",
        type=Path,
        metavar="FILE",
        help="also write the report as SARIF to FILE (for code scanning)",
    )
    parser.add_argument(
        "--html-output",
        type=Path,
        metavar="FILE",
        help="also write the report as one self-contained HTML page to FILE (a CI artifact)",
    )
    add_choice_option(
        parser,
        "--fail-on",
        Severity.ERROR,
        "exit 1 when a finding at or above this severity is found (default: error)",
        order=[Severity.ERROR, Severity.WARNING, Severity.NOTE],
    )
    add_config_option(parser)


def add_choice_option(
    parser: argparse.ArgumentParser,
    flag: str,
    default: enum.Enum,
    help: str,
    order: Sequence[enum.Enum] | None = None,
) -> None:
    """An option taking one member of `default`'s enum, by value: the choices and the `{a,b}` the help
    shows come from the enum (in `order` where the help lists them otherwise), so they cannot drift."""
    kind = type(default)
    shown = order if order is not None else list(kind)
    metavar = "{" + ",".join(str(member.value) for member in shown) + "}"
    parser.add_argument(flag, type=kind, choices=list(kind), default=default, metavar=metavar, help=help)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """--config FILE: the registry, whose folder is then the root (`find_root`)."""
    parser.add_argument("--config", type=Path, help="registry file (default: ckaudit.yaml at the root)")


def find_root(config: Path | None, folder: Path | None = None, *, near: Path | None = None) -> Path:
    """The repository root every command works on — one rule for all of them (docs/decisions.md):

    1. `--config FILE`: FILE's folder (the registry's paths are relative to it); a folder argument naming
       another folder is a usage error;
    2. a folder argument (`scan PATH`, `init PATH`, `register --root`): that folder;
    3. else the nearest folder at or above `near` (default: the current directory; `diagnose`: FILE's
       folder) holding ckaudit.yaml, looking no higher than the git work tree's top; none there: the work
       tree's top (outside git: `near` itself).

    Always absolute: the worker changes directory.
    """
    if config is not None:
        root = config.resolve().parent
        if folder is not None and folder.resolve() != root:
            raise CkauditError(
                f"--config {config} is not in {folder}: the registry's folder is the root; give one of them"
            )
        return root
    if folder is not None:
        return folder.resolve()
    start = (near or Path.cwd()).resolve()
    return _nearest_registry_folder(start)


def _nearest_registry_folder(start: Path) -> Path:
    from ckaudit.vcs import find_repo

    repo = find_repo(start) if start.is_dir() else None
    top = repo.toplevel.resolve() if repo is not None else None
    for candidate in (start, *start.parents):
        if (candidate / CONFIG_NAME).is_file():
            return candidate
        if candidate == top:
            return top
    return start


def resolve_config(root: Path, explicit: Path | None) -> Config:
    """The registry at `explicit`, else ROOT/ckaudit.yaml, else an empty default registry."""
    root = root.resolve()  # the worker changes directory; every root it gets must be absolute
    if explicit is not None:
        if not explicit.is_file():
            raise CkauditError(f"{explicit}: no such config file")
        return load_config(explicit, root)
    found = find_config(root)
    return load_config(found, root) if found else Config(root=root)


def finish(report: Report, args: argparse.Namespace) -> int:
    """Render, write to --output or stdout, and turn the findings into the exit status.

    Also writes the SARIF copy (--sarif-output), the HTML page (--html-output) and, under GitHub Actions
    ($GITHUB_STEP_SUMMARY set), appends the Markdown job summary.
    """
    source_root = os.environ.get("GITHUB_WORKSPACE") or None
    color = args.output is None and color_wanted(args.format, sys.stdout)
    history = getattr(args, "html_history", ())  # blame's JSON, for the HTML page's matrix (scan --history)
    html_output = getattr(args, "html_output", None)
    html = render_html(report, history) if args.format is OutputFormat.HTML or html_output else ""
    output = (
        html
        if args.format is OutputFormat.HTML
        else render(report, args.format, color=color, source_root=source_root)
    )
    emit(output, args.output)
    sarif_output = getattr(args, "sarif_output", None)
    if sarif_output is not None:
        _write(sarif_output, render(report, OutputFormat.SARIF, source_root=source_root))
    if html_output is not None:
        _write(html_output, html)
    write_step_summary(report)
    return EXIT_FINDINGS if report.fails(args.fail_on) else EXIT_OK


def emit(text: str, output: Path | None) -> None:
    """A command's answer, to `output` (--output) or stdout; an unwritable file is a usage error."""
    if output is None:
        sys.stdout.write(text)
    else:
        _write(output, text)


def _write(path: Path, text: str, mode: str = "w") -> None:
    try:
        with open(path, mode, encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise CkauditError(f"cannot write {path}: {exc}") from None


def color_wanted(fmt: OutputFormat, stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colour for text on a terminal, unless NO_COLOR is set (https://no-color.org) or TERM is dumb."""
    env = os.environ if environ is None else environ
    if fmt is not OutputFormat.TEXT or env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def write_step_summary(report: Report, environ: Mapping[str, str] | None = None) -> None:
    """Append the Markdown summary to $GITHUB_STEP_SUMMARY when GitHub Actions provides one."""
    env = os.environ if environ is None else environ
    target = env.get("GITHUB_STEP_SUMMARY")
    if target:
        _write(Path(target), job_summary(report), mode="a")
