"""Progress bars on stderr for long work, shown only where a person is watching.

A bar appears when stderr is a terminal, the output format is text, and no CI is detected (`CI` or
`GITHUB_ACTIONS` set). Machine formats and CI logs stay clean. Callers decide `enabled` once, with
`progress_enabled(fmt)`, and pass it down.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Protocol, TypeVar

T = TypeVar("T")

_CI_VARIABLES = ("CI", "GITHUB_ACTIONS")


def progress_enabled(
    fmt: str, *, stream: IO[str] | None = None, environ: Mapping[str, str] | None = None
) -> bool:
    """Whether a bar may be shown: text output, stderr a TTY, not in CI."""
    env = os.environ if environ is None else environ
    target = sys.stderr if stream is None else stream
    if str(getattr(fmt, "value", fmt)) != "text":
        return False
    if any(env.get(name) for name in _CI_VARIABLES):
        return False
    isatty = getattr(target, "isatty", None)
    return bool(isatty and isatty())


def progress(
    iterable: Iterable[T], *, total: int | None = None, desc: str, unit: str = "it", enabled: bool
) -> Iterator[T]:
    """Iterate, with a bar on stderr when `enabled`; a plain pass-through otherwise."""
    if not enabled:
        yield from iterable
        return
    from tqdm import tqdm

    with tqdm(
        iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True
    ) as bar:
        yield from bar


class ByteProgress(Protocol):
    def update(self, n: int) -> object: ...


class _NoBar:
    def update(self, n: int) -> None:
        return None


@contextmanager
def byte_progress(total: int | None, *, desc: str, enabled: bool) -> Iterator[ByteProgress]:
    """A bar counting bytes (call `.update(n)` per chunk); a no-op object when disabled.

    with byte_progress(size, desc="verify", enabled=on) as bar:
        for chunk in chunks: bar.update(len(chunk))
    """
    if not enabled:
        yield _NoBar()
        return
    from tqdm import tqdm

    with tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    ) as bar:
        yield bar
