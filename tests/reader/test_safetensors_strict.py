"""safetensors files are judged as the safetensors library judges them: every file the library refuses is
`corrupt` or `truncated` for ckaudit (never "text" or not-a-checkpoint), every file it accepts reads."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from safetensors import deserialize

from ckaudit.findings import Rule
from ckaudit.reader import CheckpointReadError, read_checkpoint


def _file(header: Any, data: bytes = b"", *, raw: bytes | None = None, length: int | None = None) -> bytes:
    text = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def _f32(begin: int, end: int, shape: list[int]) -> dict[str, Any]:
    return {"dtype": "F32", "shape": shape, "data_offsets": [begin, end]}


def _one(dtype: str, nbytes: int, shape: list[int] | None = None) -> bytes:
    """A file of one tensor `a` of `dtype` spanning `nbytes`."""
    return _file({"a": {"dtype": dtype, "shape": shape or [1], "data_offsets": [0, nbytes]}}, b"\0" * nbytes)


U8_ENTRY = b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'


VARIANTS: dict[str, bytes] = {
    "valid": _file({"a": _f32(0, 8, [2]), "b": _f32(8, 12, [1])}, b"\0" * 12),
    "valid_metadata": _file({"__metadata__": {"format": "pt"}, "a": _f32(0, 4, [])}, b"\0" * 4),
    "valid_empty": _file({}),
    "valid_padding_spaces": _file(None, raw=b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}   ')
    + b"\0",
    "valid_leading_space": _file(None, raw=b' {"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}') + b"\0",
    "valid_zero_sized": _file({"a": _f32(0, 0, [0, 3]), "b": _f32(0, 4, [1])}, b"\0" * 4),
    "valid_unknown_field": _file({"a": {**_f32(0, 4, [1]), "note": 1}}, b"\0" * 4),
    "valid_metadata_null": _file({"__metadata__": None}),
    "valid_f4": _one("F4", 2, [4]),
    "overlap": _file({"a": _f32(0, 4, [1]), "b": _f32(0, 4, [1])}, b"\0" * 4),
    "overlap_partial": _file({"a": _f32(0, 8, [2]), "b": _f32(4, 12, [2])}, b"\0" * 12),
    "gap": _file({"a": _f32(4, 8, [1])}, b"\0" * 8),
    "reversed_offsets": _file({"a": _f32(4, 0, [1])}, b"\0" * 4),
    "shape_mismatch": _file({"a": _f32(0, 8, [3])}, b"\0" * 8),
    "trailing_bytes": _file({"a": _f32(0, 4, [1])}, b"\0" * 8),
    "data_cut": _file({"a": _f32(0, 8, [2])}, b"\0" * 4),
    "header_longer_than_file": _file({"a": _f32(0, 4, [1])}, b"\0" * 4, length=10_000),
    "header_over_limit": _file({}, length=100_000_001),
    "header_huge": _file({}, length=2**63),
    "not_json": _file(None, raw=b"{not json}"),
    "json_list": _file(None, raw=b"[]"),
    "bad_utf8": _file(None, raw=b'{"\xff": 1}'),
    "nan": _file(None, raw=b'{"__metadata__": {"a": NaN}}'),
    "unknown_dtype": _file({"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, b"\0" * 16),
    "c128_unknown_to_library": _file(
        {"a": {"dtype": "C128", "shape": [1], "data_offsets": [0, 16]}}, b"\0" * 16
    ),
    "lowercase_dtype": _file({"a": {"dtype": "f32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
    "field_twice": _file(None, raw=b'{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}')
    + b"\0" * 4,
    "metadata_not_strings": _file({"__metadata__": {"epoch": 3}}),
    "negative_dim": _file({"a": _f32(0, 4, [-1])}, b"\0" * 4),
    "float_dim": _file(None, raw=b'{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}') + b"\0" * 4,
    "three_offsets": _file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 4]}}, b"\0" * 4),
    "missing_shape": _file({"a": {"dtype": "F32", "data_offsets": [0, 4]}}, b"\0" * 4),
    "entry_not_object": _file({"a": [1, 2]}),
    "f4_half_byte": _file({"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, b"\0" * 2),
    "huge_dim": _file(None, raw=b'{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}')
    + b"\0" * 4,
}


def _library_accepts(data: bytes) -> bool:
    try:
        deserialize(data)
    except Exception:
        return False
    return True


def _ckaudit_verdict(path: Path) -> Rule | None:
    try:
        info = read_checkpoint(path)
    except CheckpointReadError as exc:
        return exc.rule
    assert info.format == "safetensors"
    return None


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_agrees_with_the_safetensors_library(tmp_path: Path, name: str) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(VARIANTS[name])
    accepted = _library_accepts(VARIANTS[name])
    assert accepted == name.startswith("valid"), "the case is labelled wrongly"
    verdict = _ckaudit_verdict(path)
    if accepted:
        assert verdict is None
    else:
        assert verdict in (Rule.CORRUPT, Rule.TRUNCATED)


def test_cut_files_and_long_headers_are_truncated(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    for name in ("data_cut", "header_longer_than_file"):
        path.write_bytes(VARIANTS[name])
        assert _ckaudit_verdict(path) is Rule.TRUNCATED, name


def test_mutated_headers_agree_with_the_library(tmp_path: Path) -> None:
    """Random edits of a valid header's offsets, shapes and dtypes, and of the data length."""
    rng = random.Random(3)
    path = tmp_path / "model.safetensors"
    dtypes = ["F32", "F16", "BF16", "I64", "U8", "BOOL", "F8_E4M3", "C64", "F64", "X"]
    for _ in range(300):
        header = {
            "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
            "b": {"dtype": "F16", "shape": [3], "data_offsets": [16, 22]},
        }
        entry = header[rng.choice("ab")]
        field = rng.choice(["offset", "shape", "dtype", "data"])
        extra = 0
        if field == "offset":
            entry["data_offsets"][rng.randrange(2)] += rng.choice([-4, -2, -1, 1, 2, 4])
        elif field == "shape":
            entry["shape"][rng.randrange(len(entry["shape"]))] += rng.choice([-1, 1])
        elif field == "dtype":
            entry["dtype"] = rng.choice(dtypes)
        else:
            extra = rng.choice([-3, -1, 1, 5])
        data = _file(header, b"\0" * (22 + extra))
        path.write_bytes(data)
        verdict = _ckaudit_verdict(path)
        assert (verdict is None) == _library_accepts(data), (header, extra, verdict)
        assert verdict in (None, Rule.CORRUPT, Rule.TRUNCATED)
