"""Real checkpoint files for the file-check tests, written by torch and safetensors (import torch once)."""

from __future__ import annotations

import argparse
import hashlib
import os
import zipfile
from pathlib import Path

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 12345\n"
)
HTML = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please sign in</body></html>\n"


class Evil:
    """Pickles as a call to os.system; unpickling it would create the canary file."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.canary}",)


def state_dict() -> dict[str, object]:
    import torch

    torch.manual_seed(0)
    return {
        "conv.weight": torch.randn(8, 3, 3, 3),
        "conv.bias": torch.randn(8),
        "fc.weight": torch.randn(4, 8),
    }


def save_zip(path: Path, obj: object | None = None) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict() if obj is None else obj, path)
    return path


def save_legacy(path: Path) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict(), path, _use_new_zipfile_serialization=False)
    return path


def save_safetensors(path: Path) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state_dict(), str(path))  # type: ignore[arg-type]
    return path


def save_with_namespace(path: Path) -> Path:
    return save_zip(path, {"model": state_dict(), "args": argparse.Namespace(lr=0.1)})


def save_malicious(path: Path, canary: Path) -> Path:
    return save_zip(path, {"model": state_dict(), "hook": Evil(canary)})


def save_on_device(path: Path, device: str = "xpu") -> Path:
    """A zip checkpoint whose storages say they were saved on `device` (3 letters)."""
    source = save_zip(path.with_suffix(".cpu.tmp"))
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x03\x00\x00\x00" + device.encode())
            dst.writestr(info, data)
    source.unlink()
    return path


def truncate(path: Path, keep: float = 0.6) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def flip_tensor_byte(path: Path) -> Path:
    """Flip one byte inside the first tensor data member of a zip checkpoint (structure stays valid)."""
    with zipfile.ZipFile(path) as archive:
        member = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size >= 16)
    with path.open("r+b") as handle:
        handle.seek(member.header_offset + 26)
        name_len, extra_len = (int.from_bytes(handle.read(2), "little") for _ in range(2))
        offset = member.header_offset + 30 + name_len + extra_len + 8
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
