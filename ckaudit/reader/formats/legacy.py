"""torch's legacy (pre-1.6) format: five pickles, then each storage as an int64 element count and raw bytes.

All five pickles (magic number, protocol version, sys_info, the object, the storage keys) go through the
audit: torch.load unpickles each of them. The pickles come first, so reading stops after them; storage
headers are visited with seeks, never read whole.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

from ckaudit.reader.audit import StreamAudit
from ckaudit.reader.dtypes import ITEMSIZE
from ckaudit.reader.errors import corrupt, truncated
from ckaudit.reader.pickle import StorageRef, torch_storage
from ckaudit.reader.tree import pickled_checkpoint, walk_checkpoint
from ckaudit.reader.types import CheckpointInfo
from ckaudit.reader.views import check_views

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


def _storage_sizes(handle: BinaryIO, size: int, keys: Any, storages: dict[str, StorageRef]) -> dict[str, int]:
    """Seek over each storage record (int64 element count + bytes) in the order of the key list."""
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise corrupt("the storage key list is not a list of strings")
    sizes = {}
    position = handle.tell()
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise corrupt(f"storage {key} is listed but no tensor refers to it")
        handle.seek(position)
        header = handle.read(8)
        if len(header) < 8:
            raise truncated(f"file ends before storage {key} (of {len(keys)})")
        (count,) = struct.unpack("<q", header)
        nbytes = count * ITEMSIZE[storage.dtype]
        if nbytes != storage.nbytes:
            raise corrupt(f"storage {key} holds {nbytes} bytes, the pickle says {storage.nbytes}")
        position += 8 + nbytes
        if position > size:
            raise truncated(f"file ends inside storage {key} ({position - size} bytes missing)")
        sizes[key] = nbytes
    return sizes


def read_legacy(path: Path, handle: BinaryIO, size: int, audit: StreamAudit) -> CheckpointInfo:
    """The rest of a legacy file, its magic-number pickle already walked (the handle is just past it)."""
    protocol = audit.walk_stream(handle, size, "the protocol pickle").root
    sys_info = audit.walk_stream(handle, size, "the sys_info pickle").root
    if protocol != PROTOCOL_VERSION:
        raise corrupt(f"unsupported legacy protocol version {protocol!r}")
    storages: dict[str, StorageRef] = {}

    def persistent_load(pid: Any) -> StorageRef:
        ref = torch_storage(pid)
        storages.setdefault(ref.key, ref)
        return ref

    main = audit.walk_stream(handle, size, "the main pickle", persistent_load=persistent_load)
    keys = audit.walk_stream(handle, size, "the storage key list").root
    tree = walk_checkpoint(main.root)
    check_views(tree.tensors, _storage_sizes(handle, size, keys, storages))
    little = sys_info.get("little_endian") if isinstance(sys_info, dict) else None
    details = {"protocol_version": protocol, "byteorder": "little" if little in (True, None) else "big"}
    return pickled_checkpoint(path, "torch-legacy", size, main, tree, storages.values(), audit, details)
