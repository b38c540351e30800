"""`--format html`: one self-contained page (styles and script inline, nothing fetched) drawn from the JSON
model of `scan`/`check` (`report_page`) or of `blame` (`blame_page`) — no second analysis.

`page` is the document shell, `matrix` checkpoints × commits, `tree` the model beside the checkpoint (SVG),
`health` the file badges, `findings` the finding cards every picture links to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ckaudit.faces import lazy_exports

if TYPE_CHECKING:
    from ckaudit.report.html.blame_page import render as render_blame
    from ckaudit.report.html.report_page import render as render_report

__all__ = ["render_blame", "render_report"]

__getattr__ = lazy_exports(__name__, __file__)
