"""A valid safetensors file is also the pickle torch.load unpickles when the name does not say safetensors.

torch.load hands a path ending in `.safetensors` to the safetensors library; any other name (a renamed
file, `pytorch_model.bin`), a file object, or a torch from before that dispatch takes the legacy loader,
which unpickles the file from its first byte. The attack below is designed against that code path: the
header-length bytes start a protocol-4 pickle, and the first tensor name's text holds its opcodes, so the
file loads as one tensor with the safetensors library and runs a command under torch.load.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ckaudit.cli import main
from ckaudit.files.safety import safety_findings
from ckaudit.findings import Rule
from ckaudit.reader import read_checkpoint
from ckaudit.reader.audit import StreamAudit
from ckaudit.reader.formats.pickles import audit_pickle_reading
from ckaudit.reader.pickle.stubs import UNPROVEN
from tests.conftest import requires_torch
from tests.reader import oracle

pytestmark = requires_torch

# byte 0: PROTO 4 (dotted global names resolve); byte 2: BINFLOAT, whose 8-byte argument swallows the rest
# of the length, the JSON's `{"` and the key's first character; the length is what those bytes say.
_HEADER_LENGTH = 0x80 | 0x04 << 8 | ord("G") << 16


def _text(value: str) -> bytes:
    """SHORT_BINUNICODE, preceded by BINPUT's argument 0xC2: 0xC2 0x8C is one UTF-8 character, and the
    length byte must be printable (32..126, not a quote or backslash) to sit inside a JSON string."""
    data = value.encode()
    assert 32 <= len(data) <= 126 and len(data) not in (ord('"'), ord("\\"))
    return b"q\xc2\x8c" + bytes([len(data)]) + data


def write_polyglot(path: Path, command: str) -> None:
    """A safetensors file of one float32 tensor whose legacy-pickle reading calls os.system(command)."""
    command = command.ljust(32)
    if len(command) in (ord('"'), ord("\\")):
        command += " "
    module = "multiprocessing.popen_spawn_posix"  # 33 characters, and it imports os
    name = "os.path.os.path.os.path.os.system"  # a dotted path, resolved under protocol 4
    opcodes = b"K\xc2" + _text(module)[2:] + _text(name) + b"q\xc2\x93" + _text(command) + b"q\xc2\x85R."
    key = "k" + opcodes.decode("utf-8")  # "k": the key's first character, inside BINFLOAT's argument
    entry = {key: {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    header = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()
    padded = header.ljust(_HEADER_LENGTH)  # safetensors allows trailing spaces in the header
    path.write_bytes(struct.pack("<Q", _HEADER_LENGTH) + padded + struct.pack("<f", 1.0))


@pytest.fixture(scope="module")
def torch_oracle() -> Iterator[oracle.Oracle]:
    running = oracle.Oracle()
    yield running
    running.close()


def test_the_polyglot_is_reported_unsafe(tmp_path: Path, torch_oracle: oracle.Oracle) -> None:
    from safetensors.torch import load_file

    marker = tmp_path / "ran"
    polyglot = tmp_path / "model.bin"
    write_polyglot(polyglot, f"touch {marker}")
    assert load_file(polyglot)[next(iter(load_file(polyglot)))].tolist() == [1.0]  # a real safetensors file
    resolved = torch_oracle.globals(polyglot)
    assert resolved == ["multiprocessing.popen_spawn_posix.os.path.os.path.os.path.os.system"]
    before = polyglot.read_bytes()

    info = read_checkpoint(polyglot)
    assert info.format == "safetensors" and len(info.tensors) == 1
    assert set(resolved) <= set(info.globals) and set(resolved) <= set(info.calls)
    assert Rule.UNSAFE_PICKLE in {f.rule for f in safety_findings(polyglot.name, info, None)}
    assert main(["inspect", str(polyglot), "--format", "json"]) == 0
    assert not marker.exists() and polyglot.read_bytes() == before  # nothing ran, nothing written

    # and the payload is real: torch.load(weights_only=False) runs it (then fails on the magic number)
    load = f"import torch; torch.load({str(polyglot)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", load], capture_output=True, cwd=tmp_path, timeout=120)
    assert marker.exists()


def test_the_polyglot_named_safetensors_is_reported_too(tmp_path: Path) -> None:
    """By path, torch.load hands `.safetensors` to the library; a rename or a file object does not."""
    polyglot = tmp_path / "model.safetensors"
    write_polyglot(polyglot, "true")
    info = read_checkpoint(polyglot)
    assert Rule.UNSAFE_PICKLE in {f.rule for f in safety_findings(polyglot.name, info, None)}


def _padded(path: Path, length: int) -> None:
    """One float32 tensor, the header padded with spaces to exactly `length` bytes."""
    entry = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    header = json.dumps(entry, separators=(",", ":")).encode()
    path.write_bytes(struct.pack("<Q", length) + header.ljust(length) + struct.pack("<2f", 1.0, 2.0))


def test_benign_files_stay_inert(tmp_path: Path, torch_oracle: oracle.Oracle) -> None:
    """Real files of the safetensors library (headers padded to 8 bytes), and files whose header lengths
    sweep every first byte or make the first bytes a complete pickle (`N.`, `).`): the legacy reading
    names nothing, in torch or in ckaudit, and the library loads every one."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = {"w": torch.ones(2, 3), "b": torch.zeros(3, dtype=torch.bfloat16)}
    files = []
    for pad in range(0, 320, 8):
        files.append(tmp_path / f"lib{pad}.bin")
        save_file(tensors, files[-1], metadata={"pad": "x" * pad})
    complete_pickles = [0x2E4E, 0x2E29, 0x2E7D, 0x2E5D]  # NONE, EMPTY_TUPLE, EMPTY_DICT, EMPTY_LIST; STOP
    for length in [*range(256, 512), *complete_pickles]:
        files.append(tmp_path / f"h{length}.bin")
        _padded(files[-1], length)
    for path in files:
        assert load_file(path)
        assert torch_oracle.globals(path) == [], path.name
        info = read_checkpoint(path)
        length = struct.unpack("<Q", path.read_bytes()[:8])[0]
        # EXT1/EXT2/EXT4 look up a copyreg extension code, which the walker reports whatever the registry
        # holds (fail closed, as in any pickle); the library pads headers to 8 bytes, so never writes them
        named = ("<copyreg-extension>.1",) if length & 0xFF in (0x82, 0x83, 0x84) else ()
        assert (info.format, info.globals, info.calls) == ("safetensors", named, ()), path.name
        assert not named or not path.name.startswith("lib")


def test_a_file_that_is_also_a_legacy_checkpoint_cannot_be_proven_inert(tmp_path: Path) -> None:
    """The second reading that parses through to a legacy checkpoint: torch would read other tensors
    from the same bytes, so the audit marks the file as unproven."""
    import torch

    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    audit = StreamAudit()
    audit_pickle_reading(legacy, legacy.stat().st_size, legacy.read_bytes()[:4096], audit)
    assert any(call.startswith(UNPROVEN) for call in audit.calls)
    benign = tmp_path / "plain.safetensors"
    shutil.copy(legacy, benign)
    benign.write_bytes(struct.pack("<Q", 2) + b"{}")
    clean = StreamAudit()
    audit_pickle_reading(benign, benign.stat().st_size, benign.read_bytes(), clean)
    assert not clean.calls and not clean.globals


def test_a_header_length_that_starts_a_text_opcode_does_not_read_the_file_whole(tmp_path: Path) -> None:
    """Byte 0x50 is PERSID, whose argument is a line: in a file of zeros there is no newline to end it.
    The walker reads at most 64 MiB of such a line (C would read it all, then fail), so a 400 MB file costs
    no 400 MB of memory, and the failure is a proven one: nothing is reported."""
    import tracemalloc

    entry = {"w": {"dtype": "F32", "shape": [100 * 1024 * 1024], "data_offsets": [0, 400 * 1024 * 1024]}}
    header = json.dumps(entry, separators=(",", ":")).encode()
    length = 0x150
    path = tmp_path / "zeros.bin"
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", length) + header.ljust(length))
        handle.truncate(8 + length + 400 * 1024 * 1024)  # sparse zeros
    tracemalloc.start()
    try:
        info = read_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (info.format, info.globals, info.calls) == ("safetensors", (), ())
    assert peak < 200 * 1024 * 1024  # a line read whole would be 400 MB


def test_an_overlong_string_line_cannot_be_proven() -> None:
    """A protocol-0 STRING parses at any length, so a line past the cap is unproven (unsafe), while an INT
    line that long fails in C as well (at most 4,300 digits)."""
    from ckaudit.reader.pickle import PickleError, walk_bytes

    long = b"1" * (64 * 1024 * 1024 + 2)
    with pytest.raises(PickleError) as string:
        walk_bytes(b"S'" + long + b"'\n.")
    assert string.value.unproven
    with pytest.raises(PickleError) as integer:
        walk_bytes(b"I" + long + b"\n.")
    assert not integer.value.unproven
