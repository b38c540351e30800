"""A differential oracle: the globals torch.load(weights_only=False) really resolves, with nothing run.

CPython raises the audit event `pickle.find_class` for every global the C or Python unpickler resolves,
torch's wrapper included. One long-lived subprocess loads each file it is sent with an audit hook that
records each (module, name) and raises before any name outside `ALLOWED | INERT_GLOBALS` is returned, so
no payload can run; it answers with the names seen. A mutation fuzzer feeds it mutated zip, tar, legacy
and plain-pickle files made from benign and malicious seeds.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from ckaudit.reader import CheckpointInfo, CheckpointReadError, read_checkpoint
from ckaudit.reader.inert_globals import INERT_GLOBALS
from ckaudit.reader.safety import ALLOWED

_SERVER = r"""
import json, sys
allowed = set(json.loads(sys.stdin.readline()))
seen = []
def hook(event, args):
    if event == "pickle.find_class":
        name = f"{args[0]}.{args[1]}"
        seen.append(name)
        if name not in allowed:
            raise RuntimeError(f"oracle stops at {name}")
sys.addaudithook(hook)
import torch
for line in sys.stdin:
    seen.clear()
    try:
        torch.load(line.strip(), weights_only=False)
    except BaseException:
        pass
    print(json.dumps(seen), flush=True)
"""


class Oracle:
    """One torch subprocess, reused for every file."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._send(json.dumps(sorted(ALLOWED | INERT_GLOBALS)))

    def _send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def globals(self, path: Path) -> list[str]:
        self._send(str(path))
        assert self.process.stdout is not None
        return list(json.loads(self.process.stdout.readline()))

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random mutation: flipped bytes, a cut, inserted or deleted bytes, a duplicated chunk, or an
    opcode byte swapped for another."""
    if not data:
        return data
    kind = rng.randrange(6)
    at = rng.randrange(len(data))
    if kind == 0:
        out = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return bytes(out)
    if kind == 1:
        return data[:at]
    if kind == 2:
        return data[:at] + rng.randbytes(rng.randint(1, 8)) + data[at:]
    if kind == 3:
        return data[:at] + data[at + rng.randint(1, 8) :]
    if kind == 4:
        end = min(len(data), at + rng.randint(1, 64))
        return data[:end] + data[at:end] + data[end:]
    opcodes = b"()0129FGIJKLMNPQRSTUVX]abcdeghijlopqrstu}" + bytes(range(0x80, 0x99))
    out = bytearray(data)
    out[at] = rng.choice(opcodes)
    return bytes(out)


def seen_info(path: Path) -> CheckpointInfo:
    """What ckaudit's reader saw in the file: its answer, or the names seen before it failed."""
    try:
        return read_checkpoint(path)
    except CheckpointReadError as exc:
        return CheckpointInfo(
            path=str(path), format="unreadable", size=0, globals=exc.globals, calls=exc.calls
        )
