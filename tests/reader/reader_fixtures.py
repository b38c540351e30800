"""Real checkpoints for the reader tests, written by torch itself (one torch import per test session)."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

ALL_DTYPES = [
    "float64",
    "float32",
    "float16",
    "bfloat16",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "complex128",
    "complex64",
    "complex32",
    "bool",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint64",
    "uint32",
    "uint16",
    "uint8",
]


def tricky_state() -> dict[str, Any]:
    """Tensors sharing a storage, views at offsets, a transposed view, a parameter, every dtype, quantized."""
    import torch

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state: dict[str, Any] = {
        "base": base,
        "row_view": base[2],  # offset 12 into the same storage
        "transposed": base.t(),  # non-contiguous
        "strided": base[:, ::2],
        "param": torch.nn.Parameter(torch.ones(3, 2)),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
        "quantized": torch.quantize_per_tensor(torch.ones(4), 0.1, 0, torch.qint8),
    }
    for name in ALL_DTYPES:
        state[f"dtype.{name}"] = torch.zeros(2, 3).to(getattr(torch, name))
    return state


LEGACY_DTYPES = {
    *("float64", "float32", "float16", "bfloat16", "complex128", "complex64", "bool"),
    *("int64", "int32", "int16", "int8", "uint8"),
}


def legacy_state() -> dict[str, Any]:
    """torch.load cannot read legacy files holding dtypes without a typed storage (float8, uint16, ...)."""
    return {k: v for k, v in tricky_state().items() if not k.startswith("dtype.") or k[6:] in LEGACY_DTYPES}


def training_checkpoint() -> dict[str, Any]:
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    optim = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 1, 5, 5)).sum().backward()
    optim.step()
    return {"epoch": 3, "model_state_dict": model.state_dict(), "optimizer_state_dict": optim.state_dict()}


def replace_data_pkl(archive: Path, payload: bytes, out: Path) -> None:
    """Copy a real torch zip archive with data.pkl replaced (how a tampered checkpoint looks)."""
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = payload if info.filename.endswith("/data.pkl") else src.read(info)
            dst.writestr(info.filename, data)


def legacy_with_main(payload: bytes, out: Path) -> None:
    """A legacy-format file whose main pickle is `payload` (no storages)."""
    parts = [
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps({"protocol_version": 1001, "little_endian": True, "type_sizes": {}}, protocol=2),
        payload,
        pickle.dumps([], protocol=2),
    ]
    out.write_bytes(b"".join(parts))


def stack_global_through_memo(module: str, name: str, arg: str) -> bytes:
    """module.name(arg) with the names memoised, popped, and fetched back by BINGET before STACK_GLOBAL."""
    out = io.BytesIO()
    out.write(b"\x80\x04")
    for i, text in enumerate((module, name)):
        raw = text.encode()
        out.write(
            b"\x8c" + bytes([len(raw)]) + raw + b"q" + bytes([i]) + b"0"
        )  # SHORT_BINUNICODE, BINPUT, POP
    out.write(b"h\x00h\x01\x93")  # BINGET 0, BINGET 1, STACK_GLOBAL
    raw = arg.encode()
    out.write(b"X" + struct.pack("<I", len(raw)) + raw + b"\x85R.")  # BINUNICODE, TUPLE1, REDUCE, STOP
    return out.getvalue()


class Exploit:
    """Pickles as a call of `func(*args)`; a full load would run it."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.func, self.args


class UserThing:
    """A plain user class: weights_only refuses it, but it runs no code."""

    def __init__(self) -> None:
        self.lr = 0.1
