"""One reporter per format, each a pure function Report -> str. Only the CLI writes."""

from __future__ import annotations

import enum
from collections.abc import Callable

from ckaudit.findings import Report


class OutputFormat(str, enum.Enum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"

    def reporter(self) -> Callable[[Report], str]:
        from ckaudit.report import github, json_format, sarif, text

        return {
            OutputFormat.TEXT: text.render,
            OutputFormat.JSON: json_format.render,
            OutputFormat.SARIF: sarif.render,
            OutputFormat.GITHUB: github.render,
        }[self]


def render(report: Report, fmt: OutputFormat) -> str:
    return fmt.reporter()(report)
