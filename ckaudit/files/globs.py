"""The registry's scan globs (`scan.include`, `scan.exclude`) applied to root-relative paths.

`**` spans folders, `*` and `?` do not (the same translation as a model's `sources:` globs); a pattern without
a slash matches the file name at any depth, as in `.gitignore`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from ckaudit.model.sources import glob_regex


def matches(path: str, patterns: Iterable[str]) -> bool:
    return any(glob_regex(p if "/" in p else "**/" + p).match(path) for p in patterns)


def selected(path: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    return matches(path, include) and not matches(path, exclude)


def name_patterns(include: Iterable[str]) -> tuple[str, ...]:
    """The file-name part of each include glob (`**/*.pt` -> `*.pt`): what makes a string checkpoint-like."""
    names = {p.rsplit("/", 1)[-1] for p in include}
    return tuple(sorted(n for n in names if n and n != "**"))


def name_matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)
