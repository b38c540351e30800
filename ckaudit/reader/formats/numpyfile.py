"""numpy `.npy` files and `.npz` archives: no torch checkpoints, but an object array in them is a pickle.

`np.save` writes an array whose dtype holds Python objects as a pickle after the `.npy` header, and
`np.load(..., allow_pickle=True)` unpickles it. So such arrays are walked like any pickle (their names
feed the safety checks) and the file is reported as `not-a-checkpoint` with the format `numpy`.
"""

from __future__ import annotations

import ast
import struct
import zipfile
from pathlib import Path
from typing import IO, Any, NoReturn

from ckaudit.reader.audit import StreamAudit
from ckaudit.reader.errors import corrupt, not_a_checkpoint, truncated

NPY_MAGIC = b"\x93NUMPY"
NUMPY_FORMAT = "numpy"
_MAX_HEADER = 1 << 20


def _header(stream: IO[bytes], where: str) -> dict[str, Any]:
    """The `.npy` header dict; the stream is left where the array data starts."""
    prefix = stream.read(8)
    if len(prefix) < 8:
        raise truncated(f"{where} ends inside its .npy header")
    major = prefix[6]
    width = 2 if major == 1 else 4
    raw_length = stream.read(width)
    if len(raw_length) < width:
        raise truncated(f"{where} ends inside its .npy header")
    (length,) = struct.unpack("<H" if width == 2 else "<I", raw_length)
    if length > _MAX_HEADER:
        raise corrupt(f"{where}: .npy header of {length} bytes")
    text = stream.read(length)
    if len(text) < length:
        raise truncated(f"{where} ends inside its .npy header")
    try:
        header = ast.literal_eval(text.decode("latin-1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise corrupt(f"{where}: the .npy header is not a Python literal ({exc})") from None
    if not isinstance(header, dict) or "descr" not in header:
        raise corrupt(f"{where}: the .npy header has no descr")
    return header


def _holds_objects(descr: Any) -> bool:
    """Whether a dtype description (a type string, or a list of (name, dtype[, shape]) fields) has objects."""
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list):
        return any(isinstance(f, tuple) and len(f) >= 2 and _holds_objects(f[1]) for f in descr)
    return False


def _audit_array(stream: IO[bytes], end: int, where: str, audit: StreamAudit) -> bool:
    """Walk the pickle of an object array; whether there was one."""
    if not _holds_objects(_header(stream, where).get("descr")):
        return False
    audit.walk_stream(stream, end, f"{where}: its object array")  # type: ignore[arg-type]
    return True


def read_npy(path: Path, size: int, audit: StreamAudit) -> NoReturn:
    """A .npy file is never a checkpoint: its object arrays' pickles are audited, then it is reported as
    not a checkpoint (saying what it holds)."""
    with path.open("rb") as handle:
        objects = _audit_array(handle, size, path.name, audit)
    raise not_a_checkpoint(_what("a numpy array file (.npy)", objects), format=NUMPY_FORMAT)


def audit_npy_members(archive: zipfile.ZipFile, audit: StreamAudit) -> tuple[int, bool]:
    """Walk the object arrays among the `.npy` members (read as numpy reads them, through zipfile):
    (how many `.npy` members, whether any held objects)."""
    count, objects = 0, False
    for info in archive.infolist():
        if not info.filename.lower().endswith(".npy"):
            continue
        count += 1
        try:
            with archive.open(info) as member:
                objects |= _audit_array(member, info.file_size, info.filename, audit)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise corrupt(f"zip member {info.filename} cannot be read: {exc}") from None
    return count, objects


def npz_error(objects: bool) -> NoReturn:
    raise not_a_checkpoint(_what("a numpy archive (.npz)", objects), format=NUMPY_FORMAT)


def _what(kind: str, objects: bool) -> str:
    held = " (its object arrays are pickles, which np.load(allow_pickle=True) runs)" if objects else ""
    return f"{kind}, not a torch checkpoint{held}"
