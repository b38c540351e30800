"""Broken files: truncated at every byte, flipped throughout, odd paths. Always a CheckpointReadError, never
another exception; with verify, every flipped byte of tensor data in a zip archive is caught by its CRC32."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from ckaudit.findings import Rule
from ckaudit.reader import CheckpointReadError, read_checkpoint, verify_checkpoint
from tests.conftest import requires_torch

BROKEN = {Rule.TRUNCATED, Rule.CORRUPT, Rule.NOT_A_CHECKPOINT}
# A changed byte can turn a pickle into one the walker cannot follow where the C unpickler might go on
# (an opcode use it does not model): that is unsafe-pickle, never a traceback.
MUTATED = BROKEN | {Rule.UNSAFE_PICKLE, None}


def _read_or_rule(path: Path) -> Rule | None:
    try:
        read_checkpoint(path)
    except CheckpointReadError as exc:
        return exc.rule
    return None


@requires_torch
@pytest.mark.slow  # fuzzing: every byte
@pytest.mark.parametrize("name", ["small.pt", "small_legacy.pt", "small.safetensors"])
def test_truncated_at_every_byte(files: dict[str, Path], tmp_path: Path, name: str) -> None:
    data = files[name].read_bytes()
    target = tmp_path / name
    rules = set()
    for cut in range(len(data)):
        target.write_bytes(data[:cut])
        rule = _read_or_rule(target)
        assert rule in BROKEN, f"cut at {cut} of {len(data)}: {rule}"
        rules.add(rule)
    assert Rule.TRUNCATED in rules


def _data_ranges(path: Path) -> list[range]:
    """Byte ranges of the tensor storages inside a stored zip archive."""
    with zipfile.ZipFile(path) as archive, path.open("rb") as handle:
        ranges = []
        for info in archive.infolist():
            if "/data/" in info.filename:
                handle.seek(info.header_offset + 26)
                name_len, extra_len = (
                    int.from_bytes(handle.read(2), "little"),
                    int.from_bytes(handle.read(2), "little"),
                )
                start = info.header_offset + 30 + name_len + extra_len
                ranges.append(range(start, start + info.file_size))
    return ranges


@requires_torch
@pytest.mark.slow  # fuzzing
@pytest.mark.parametrize("name", ["small.pt", "small_legacy.pt", "small.safetensors"])
def test_flipped_bytes(files: dict[str, Path], tmp_path: Path, name: str) -> None:
    data = files[name].read_bytes()
    in_data = (
        {i for r in _data_ranges(files[name]) for i in r}
        if name.endswith(".pt") and "legacy" not in name
        else set()
    )
    target = tmp_path / name
    for position in range(len(data)):
        flipped = bytearray(data)
        flipped[position] ^= 0xFF
        target.write_bytes(bytes(flipped))
        try:
            info = read_checkpoint(target)
        except CheckpointReadError as exc:
            assert exc.rule in MUTATED
            continue
        problems = verify_checkpoint(target, info, sha256=False).problems
        assert all(p.rule in BROKEN for p in problems)
        if position in in_data:
            assert problems, f"flip at {position} inside tensor data went unnoticed"


def test_odd_paths(tmp_path: Path) -> None:
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "page.pt").write_text("<!DOCTYPE html><html><body>Sign in</body></html>")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "folder").mkdir()
    (tmp_path / "link.pt").symlink_to(tmp_path / "gone.pt")
    (tmp_path / "pointer.pt").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "ab" * 32 + "\nsize 1234\n"
    )
    expected = {
        "empty.pt": (Rule.NOT_A_CHECKPOINT, "empty"),
        "page.pt": (Rule.NOT_A_CHECKPOINT, "HTML"),
        "notes.txt": (Rule.NOT_A_CHECKPOINT, "text"),
        "folder": (Rule.NOT_A_CHECKPOINT, "directory"),
        "link.pt": (Rule.NOT_A_CHECKPOINT, "symbolic link"),
        "missing.pt": (Rule.NOT_A_CHECKPOINT, "no such file"),
        "pointer.pt": (Rule.LFS_POINTER, "1234 bytes"),
    }
    for name, (rule, words) in expected.items():
        with pytest.raises(CheckpointReadError) as caught:
            read_checkpoint(tmp_path / name)
        assert caught.value.rule is rule, name
        assert words in caught.value.message, (name, caught.value.message)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.pt"
    path.write_bytes(b"PK\x03\x04")
    path.chmod(0)
    with pytest.raises(CheckpointReadError, match="cannot be read"):
        read_checkpoint(path)


def test_garbage_never_raises_anything_else(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    path = tmp_path / "noise.bin"
    prefixes = [b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x04\x95", b"{", b"\x10\x00\x00\x00\x00\x00\x00\x00{"]
    for i in range(600):
        path.write_bytes(prefixes[i % len(prefixes)] + rng.randbytes(rng.randrange(1, 300)))
        assert _read_or_rule(path) in MUTATED


def _other_formats(root: Path) -> dict[str, bytes]:
    """Small files of the formats read besides torch.save's: tar, plain pickles, numpy object arrays."""
    import io
    import pickle

    import numpy as np

    from tests.reader import streams

    tar = root / "old.tar"
    streams.write_tar_checkpoint(tar, streams.tar_main_pickle({"lr": 0.1}), [1.0, 2.0])
    npy, npz = io.BytesIO(), io.BytesIO()
    np.save(npy, np.array([{"a": 1}, [2]], dtype=object), allow_pickle=True)
    np.savez(npz, a=np.arange(3), b=np.array([(1, 2)], dtype=object))
    return {
        "old.tar": tar.read_bytes(),
        "state.pkl": pickle.dumps({"w": [1.0, 2.0], "n": "x"}, protocol=0),
        "state4.pkl": pickle.dumps({"w": [1.0, 2.0], "n": "x"}, protocol=4),
        "obj.npy": npy.getvalue(),
        "obj.npz": npz.getvalue(),
    }


def test_other_formats_cut_and_flipped(tmp_path: Path) -> None:
    """Every cut and every flipped byte of the other formats: a finding with a rule, never an exception. (A
    tar archive cut only in its zero padding is whole: tarfile, and so torch, read it.)"""
    import io
    import tarfile

    for name, data in _other_formats(tmp_path).items():
        target = tmp_path / f"broken-{name}"
        step = max(1, len(data) // 40)  # sampled: each read costs a few file opens
        whole = len(data)
        if name.endswith(".tar"):
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                whole = max(m.offset_data + m.size for m in tar.getmembers())
        for cut in range(0, whole, step):
            target.write_bytes(data[:cut])
            assert _read_or_rule(target) in BROKEN, (name, cut)
        for position in range(0, len(data), step):
            flipped = bytearray(data)
            flipped[position] ^= 0xFF
            target.write_bytes(bytes(flipped))
            assert _read_or_rule(target) in MUTATED, (name, position)
