"""One reporter per format, each a pure function of a Report. Only the CLI writes.

`render(report, fmt, color=..., source_root=...)` is the dispatcher: `color` matters only to text (the
caller decides it from the terminal and NO_COLOR), `source_root` only to the formats GitHub reads (sarif,
github), whose paths must be relative to the repository checkout even when the scan root is a subfolder.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ckaudit.faces import lazy_exports
from ckaudit.findings import Report

if TYPE_CHECKING:
    from ckaudit.report.blame import render_text as render_blame_text
    from ckaudit.report.github import escape_data
    from ckaudit.report.html.blame_page import render as render_blame_html
    from ckaudit.report.json_format import finding_dict
    from ckaudit.report.summary import render as job_summary

__all__ = [
    "OutputFormat",
    "escape_data",
    "finding_dict",
    "job_summary",
    "render",
    "render_blame_html",
    "render_blame_text",
    "render_html",
]

__getattr__ = lazy_exports(__name__, __file__)


class OutputFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"
    HTML = "html"

    def reporter(self) -> Callable[..., str]:
        return _REPORTERS[self]()


def _text() -> Callable[..., str]:
    from ckaudit.report import text

    return lambda report, *, color=False, source_root=None: text.render(report, color=color)


def _json() -> Callable[..., str]:
    from ckaudit.report import json_format

    return lambda report, *, color=False, source_root=None: json_format.render(report)


def _sarif() -> Callable[..., str]:
    from ckaudit.report import sarif

    return lambda report, *, color=False, source_root=None: sarif.render(report, source_root)


def _github() -> Callable[..., str]:
    from ckaudit.report import github

    return lambda report, *, color=False, source_root=None: github.render(report, source_root)


def _html() -> Callable[..., str]:
    return lambda report, *, color=False, source_root=None: render_html(report)


_REPORTERS: dict[OutputFormat, Callable[[], Callable[..., str]]] = {
    OutputFormat.TEXT: _text,
    OutputFormat.JSON: _json,
    OutputFormat.SARIF: _sarif,
    OutputFormat.GITHUB: _github,
    OutputFormat.HTML: _html,
}


def render(report: Report, fmt: OutputFormat, *, color: bool = False, source_root: str | None = None) -> str:
    return fmt.reporter()(report, color=color, source_root=source_root)


def render_html(report: Report, history: Sequence[Mapping[str, Any]] = ()) -> str:
    """The HTML page, with blame's JSON for the checkpoints × commits matrix when there is history."""
    from ckaudit.report.html import report_page
    from ckaudit.report.json_format import report_dict

    return report_page.render(report_dict(report), history)
