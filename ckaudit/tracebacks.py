"""Frames of a Python traceback or a faulthandler dump, as text: the worker's crash reports and `explain`'s
pasted logs read them the same way."""

from __future__ import annotations

import re

_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def frames(text: str) -> list[tuple[str, int]]:
    """(path, line) of every frame in `text`, innermost last (a faulthandler dump, "most recent call
    first", is reversed); pseudo-files such as <string> and <stdin> are left out."""
    found = [(path, int(line)) for path, line in _FRAME.findall(text) if not path.startswith("<")]
    return found[::-1] if "most recent call first" in text else found
