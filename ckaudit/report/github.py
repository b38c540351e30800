"""github reporter: built by the reports issue."""

from __future__ import annotations

from ckaudit.findings import Report


def render(report: Report) -> str:
    raise NotImplementedError("github output is not built yet")
