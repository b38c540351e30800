"""Generators of files that hide a pickle payload wherever torch (or numpy) would unpickle it.

Every payload is a canary: `os.system("touch <canary>")`, so a test can prove that ckaudit ran nothing and
that torch.load (in a throwaway subprocess) does run it. The archives are written byte by byte where
Python's zipfile would refuse to write them (duplicate names, NUL bytes, wrong CRCs, odd local headers).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.reader.reader_fixtures import Exploit

MAGIC = 0x1950A86A20F9469CFC6C


def payload(canary: Path) -> Exploit:
    return Exploit(os.system, f"touch {canary}")


def raw_pickle(canary: Path, protocol: int) -> bytes:
    return pickle.dumps({"weights": [1.0, 2.0], "payload": payload(canary)}, protocol=protocol)


# -- torch's legacy format, payload in each of its five pickles -------------------------------------------


def legacy_parts(canary: Path, where: str) -> bytes:
    bad = payload(canary)
    parts = {
        "magic": MAGIC,
        "protocol": 1001,
        "sys_info": {"protocol_version": 1001, "little_endian": True, "type_sizes": {}},
        "main": {"w": 1},
        "keys": [],
    }
    parts[where] = {"payload": bad} if where in ("sys_info", "main") else (bad, parts[where])
    return b"".join(pickle.dumps(value, protocol=2) for value in parts.values())


# -- zip archives written entry by entry --------------------------------------------------------------------


@dataclass
class Entry:
    name: bytes
    data: bytes
    local_name: bytes | None = None  # None: the same as the central directory's
    crc: int | None = None  # None: the right CRC-32
    method: int = 0  # 0 stored, 8 deflate
    flags: int = 0  # general purpose bits: 0x800 says the name is UTF-8


def write_zip(path: Path, entries: list[Entry]) -> None:
    """A zip archive with exactly these entries, in this order; sizes and CRCs as given or computed."""
    out, directory = io.BytesIO(), io.BytesIO()
    for entry in entries:
        offset = out.tell()
        stored = entry.data if entry.method == 0 else _deflate(entry.data)
        crc = zlib.crc32(entry.data) if entry.crc is None else entry.crc
        local = entry.name if entry.local_name is None else entry.local_name
        sizes = (crc, len(stored), len(entry.data))
        out.write(
            struct.pack(
                "<IHHHHHIIIHH", 0x04034B50, 20, entry.flags, entry.method, 0, 0, *sizes, len(local), 0
            )
        )
        out.write(local + stored)
        fields = (
            0x02014B50,
            20,
            20,
            entry.flags,
            entry.method,
            0,
            0,
            *sizes,
            len(entry.name),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        directory.write(struct.pack("<IHHHHHHIIIHHHHHII", *fields))
        directory.write(entry.name)
    start, table = out.tell(), directory.getvalue()
    out.write(table)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(table), start, 0))
    path.write_bytes(out.getvalue())


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def torch_entries(saved: Path) -> list[Entry]:
    """The entries of a real torch.save archive, in its order."""
    import zipfile

    with zipfile.ZipFile(saved) as archive:
        return [Entry(info.filename.encode(), archive.read(info)) for info in archive.infolist()]


def with_data_pkl(entries: list[Entry], replace: Callable[[Entry], list[Entry]]) -> list[Entry]:
    out: list[Entry] = []
    for entry in entries:
        out.extend(replace(entry) if entry.name.endswith(b"/data.pkl") else [entry])
    return out


def data_pkl_payload(canary: Path) -> bytes:
    """A data.pkl torch.load(weights_only=False) runs: the payload beside a plain value."""
    return pickle.dumps({"w": 1, "payload": payload(canary)}, protocol=2)


# -- torch's oldest format: a tar archive ------------------------------------------------------------------


def _triple(first: int, second: int | str, module: str, name: str) -> bytes:
    """pickle of (first, second, module.name) with the class as a GLOBAL, written without importing it."""
    items = b"".join(pickle.dumps(v, protocol=2)[2:-1] for v in (first, second))  # no PROTO, no STOP
    return b"\x80\x02" + items + f"c{module}\n{name}\n".encode() + b"\x87."


def write_tar_checkpoint(path: Path, main: bytes, values: list[float], shadowed: bytes | None = None) -> None:
    """torch.save before 0.4, as torch.serialization._legacy_load's tar branch reads it. Members: sys_info;
    storages (a count, then per storage its (key, location, type) pickle, an int64 element count and the
    bytes, then the list of views); tensors (a count, then per tensor its (key, storage key, type) pickle,
    int32 ndim, 4 bytes, int64 sizes, strides and offset); pickle (the object, tensors as persistent ids).
    `shadowed`: an earlier copy of the pickle member, which torch never reads."""
    count = len(values)
    storages = pickle.dumps(1, protocol=2) + _triple(0, "cpu", "torch", "FloatStorage")
    storages += struct.pack("<q", count) + struct.pack(f"<{count}f", *values) + pickle.dumps([], protocol=2)
    tensors = pickle.dumps(1, protocol=2) + _triple(1, 0, "torch", "FloatTensor")
    tensors += struct.pack("<ii", 1, 0) + struct.pack("<qqq", count, 1, 0)
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}
    members = [
        ("sys_info", pickle.dumps(sys_info, protocol=2)),
        ("storages", storages),
        ("tensors", tensors),
        ("pickle", main),
    ]
    if shadowed is not None:  # an earlier member named "pickle": tarfile (so torch) reads the last one
        members.insert(0, ("pickle", shadowed))
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


TENSOR = object()  # stands for the tensor with key 1 in tar_main_pickle


def tar_main_pickle(extra: object | None = None) -> bytes:
    """The object pickle of a tar checkpoint: {"w": tensor 1} (and "payload": extra), the tensor a
    persistent id as torch < 0.4 wrote it."""

    class Persistent(pickle.Pickler):
        def persistent_id(self, obj: object) -> str | None:
            return "1" if obj is TENSOR else None

    out = io.BytesIO()
    value: dict[str, object] = {"w": TENSOR}
    if extra is not None:
        value["payload"] = extra
    Persistent(out, protocol=2).dump(value)
    return out.getvalue()


# -- the oracle ---------------------------------------------------------------------------------------------

_LOADER = """
import json, sys, warnings
warnings.filterwarnings("ignore")
import torch
results = {}
for path in sys.argv[1:]:
    try:
        torch.load(path, weights_only=False, map_location="cpu")
        results[path] = "loaded"
    except BaseException as exc:
        results[path] = f"{type(exc).__name__}: {exc}"[:300]
print(json.dumps(results))
"""


def torch_load_all(paths: list[Path], cwd: Path) -> dict[str, str]:
    """torch.load(weights_only=False) of each file in one throwaway subprocess: path -> outcome."""
    done = subprocess.run(
        [sys.executable, "-c", _LOADER, *map(str, paths)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))
