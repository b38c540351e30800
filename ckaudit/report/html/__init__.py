"""`--format html`: one self-contained page (styles and script inline, nothing fetched) drawn from the JSON
model of `scan`/`check` (`report_page`) or of `blame` (`blame_page`) — no second analysis.

`page` is the document shell, `matrix` checkpoints × commits, `tree` the model beside the checkpoint (SVG),
`health` the file badges, `findings` the finding cards every picture links to.
"""
