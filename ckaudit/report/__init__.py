"""One reporter per format, each a pure function of a Report. Only the CLI writes.

`render(report, fmt, color=..., source_root=...)` is the dispatcher: `color` matters only to text (the
caller decides it from the terminal and NO_COLOR), `source_root` only to the formats GitHub reads (sarif,
github), whose paths must be relative to the repository checkout even when the scan root is a subfolder.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports
from ckaudit.findings import Report

if TYPE_CHECKING:
    from ckaudit.report.github import escape_data
    from ckaudit.report.json_format import finding_dict
    from ckaudit.report.summary import render as job_summary

__all__ = ["OutputFormat", "escape_data", "finding_dict", "job_summary", "render"]

__getattr__ = lazy_exports(__name__, __file__)


class OutputFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"

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


_REPORTERS: dict[OutputFormat, Callable[[], Callable[..., str]]] = {
    OutputFormat.TEXT: _text,
    OutputFormat.JSON: _json,
    OutputFormat.SARIF: _sarif,
    OutputFormat.GITHUB: _github,
}


def render(report: Report, fmt: OutputFormat, *, color: bool = False, source_root: str | None = None) -> str:
    return fmt.reporter()(report, color=color, source_root=source_root)
