"""The registry's scan globs (`scan.include`, `scan.exclude`) applied to root-relative paths.

`**` spans folders, `*` and `?` do not (the same translation as a model's `sources:` globs); a pattern without
a slash matches the file name at any depth, as in `.gitignore`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from functools import lru_cache


def matches(path: str, patterns: Iterable[str]) -> bool:
    """Whether a scan glob matches `path`; a pattern without `/` matches the name in any folder, as
    .gitignore's do."""
    return any(glob_regex(p if "/" in p else "**/" + p).match(path) for p in patterns)


def selected(path: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    """Included and not excluded (the registry's `scan:` globs)."""
    return matches(path, include) and not matches(path, exclude)


def name_patterns(include: Iterable[str]) -> tuple[str, ...]:
    """The file-name part of each include glob (`**/*.pt` -> `*.pt`): what makes a string checkpoint-like."""
    names = {p.rsplit("/", 1)[-1] for p in include}
    return tuple(sorted(n for n in names if n and n != "**"))


def name_matches(name: str, patterns: Iterable[str]) -> bool:
    """fnmatch on a bare name, case-sensitive on every platform."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A `**`-aware glob: `**/` spans directories, `*` and `?` stay inside one path component."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")
