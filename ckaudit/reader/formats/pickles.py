"""Files that start with a pickle: torch's legacy format, or a plain pickle of any protocol (0 to 5).

torch.load reads any file that is neither a zip nor a tar archive with its legacy loader, which unpickles
the first object in full and only then checks it is torch's magic number. So a plain pickle is no
checkpoint (torch.load ends in "Invalid magic number"), but whatever it calls runs first: it is walked and
reported as the format `pickle`, its names kept for the safety checks.
"""

from __future__ import annotations

import pickletools
from pathlib import Path
from typing import BinaryIO

from ckaudit.findings import Rule
from ckaudit.reader.audit import StreamAudit
from ckaudit.reader.errors import describe, not_a_checkpoint
from ckaudit.reader.formats.legacy import MAGIC_NUMBER, read_legacy
from ckaudit.reader.pickle import unproven_call
from ckaudit.reader.types import CheckpointInfo, CheckpointReadError

PICKLE_FORMAT = "pickle"


def read_pickle_file(path: Path, size: int, head: bytes, audit: StreamAudit) -> CheckpointInfo:
    """A file that starts with a pickle: torch's legacy format when the first object is its magic number;
    else a plain pickle, every stream in it audited and reported as no checkpoint (the first raised
    error carries what it named)."""
    with path.open("rb") as handle:
        try:
            first = audit.walk_stream(handle, size, "the first pickle")
        except CheckpointReadError as exc:
            if head[:1] != b"\x80" and not audit.globals and exc.rule is not Rule.UNSAFE_PICKLE:
                raise not_a_checkpoint(f"no checkpoint format recognised ({describe(head)})") from None
            if exc.rule is Rule.CORRUPT and _well_formed(handle):
                raise _plain_pickle(head, f" (ckaudit follows it only in part: {exc.message})") from None
            raise
        if first.root == MAGIC_NUMBER and type(first.root) is int:
            return read_legacy(path, handle, size, audit)
        _audit_further_pickles(handle, size, audit)
    raise _plain_pickle(head)


def audit_pickle_reading(path: Path, size: int, head: bytes, audit: StreamAudit) -> None:
    """What torch.load's legacy loader would run if handed this file, which was read as another format.

    A valid safetensors file is still unpickled from its first byte by torch.load when its name does not
    end in `.safetensors` (a renamed file, a file object, torch before that dispatch), and bytes can be
    crafted to be both: the header-length bytes a pickle's start, the first key's text its opcodes. Most
    files fail as a pickle within a few bytes; a first pickle that parses is walked with every stream after
    it (its names stay with the audit), and one that is torch's magic number makes the file a legacy
    checkpoint as well: a second reading of the same bytes, which cannot be proven inert.
    """
    with path.open("rb") as handle:
        try:
            audit.walk_stream(handle, size, "the pickle torch.load reads from the first byte")
        except CheckpointReadError:
            return
    try:
        read_pickle_file(path, size, head, audit)
    except CheckpointReadError:
        return  # torch.load stops there too ("Invalid magic number", or a broken legacy stream)
    audit.add((), (unproven_call("the file is also a legacy torch checkpoint that torch.load reads"),))


def _audit_further_pickles(handle: BinaryIO, size: int, audit: StreamAudit) -> None:
    """Pickles after the first: torch.load never reads them, but a second pickle.load on the file runs
    them, so their names count too (fail closed). Stops at the end or at the first thing not a pickle."""
    while handle.tell() < size:
        try:
            audit.walk_stream(handle, size, "a further pickle")
        except CheckpointReadError:
            return


def _plain_pickle(head: bytes, note: str = "") -> CheckpointReadError:
    return not_a_checkpoint(
        f"a plain pickle (protocol {_protocol(head)}), not a torch checkpoint: torch.load unpickles it "
        f"and then refuses it (Invalid magic number){note}",
        format=PICKLE_FORMAT,
        protocol=_protocol(head),
    )


def _well_formed(handle: BinaryIO) -> bool:
    """Whether the file starts with a syntactically complete pickle (the walker may still not follow what
    it builds: tensors pickled with plain pickle, say)."""
    handle.seek(0)
    try:
        for _opcode, _arg, _pos in pickletools.genops(handle):
            pass
    except Exception:  # genops: ValueError and friends on malformed input
        return False
    return True


def _protocol(head: bytes) -> str:
    if head[:1] == b"\x80" and len(head) > 1:
        return str(head[1])
    return "0 or 1"
