"""The restricted pickle machine reads streams as CPython's C unpickler (the one torch.load uses) does:
FRAMEs, protocols, errors after a payload, bytes after STOP; both decoders agree."""

from __future__ import annotations

import io
import pickle
import struct

import pytest

from ckaudit.reader.pickle import PickleError, PickleResult, walk_bytes, walk_pickle
from tests.reader import attacks


def _call_ops(module: str, name: str) -> list[bytes]:
    """module.name("true") one opcode per item (SHORT_BINUNICODE, STACK_GLOBAL, TUPLE1, REDUCE, STOP)."""
    texts = [bytes([0x8C, len(t)]) + t.encode() for t in (module, name)]
    return [*texts, b"\x93", b"\x8c\x04true", b"\x85", b"R", b"."]


PAYLOAD_OPS = _call_ops("posix", "system")
HARMLESS_OPS = _call_ops("builtins", "len")  # the same shape, safe to hand to CPython here


def _frame(body: bytes, length: int | None = None) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body) if length is None else length) + body


def _both(data: bytes) -> tuple[PickleResult, PickleResult]:
    return walk_bytes(data), walk_pickle(io.BytesIO(data), len(data))


def test_frames_are_transparent_like_cpython() -> None:
    """One FRAME per opcode: CPython runs it; both decoders see the call."""
    assert pickle.loads(b"\x80\x04" + b"".join(_frame(op) for op in HARMLESS_OPS)) == 4
    data = b"\x80\x04" + b"".join(_frame(op) for op in PAYLOAD_OPS)
    for result in _both(data):
        assert result.calls == {"posix.system"}


def test_frame_longer_than_the_file_is_truncated_and_keeps_what_came_before() -> None:
    data = b"\x80\x04" + b"".join(PAYLOAD_OPS[:-1]) + b"0" + _frame(b"N.", length=1000)
    with pytest.raises(pickle.UnpicklingError, match="truncated"):
        pickle.loads(
            data.replace(b"posix\x8c\x06system", b"posix\x8c\x06getcwd").replace(b"\x8c\x04true\x85", b")")
        )
    for walk in (walk_bytes, lambda d: walk_pickle(io.BytesIO(d), len(d))):
        with pytest.raises(PickleError) as caught:
            walk(data)
        assert caught.value.truncated and caught.value.calls == {"posix.system"}


def test_unknown_protocol_is_refused_like_cpython() -> None:
    data = b"\x80\x06N."
    with pytest.raises(ValueError, match="unsupported pickle protocol"):
        pickle.loads(data)
    with pytest.raises(PickleError, match="protocol 6"):
        walk_bytes(data)


def test_names_after_stop_are_audited() -> None:
    data = pickle.dumps({"a": 1}) + pickle.dumps(attacks.Call(attacks.os.system, "true")) + b"\xff"
    result = walk_bytes(data)
    assert result.root == {"a": 1} and result.end == len(pickle.dumps({"a": 1}))
    assert result.calls == {"posix.system"}


@pytest.mark.torch  # its pickles are written by torch
def test_build_on_a_global_is_a_call_nothing_allows() -> None:
    data = attacks.attack_pickles(attacks.Path("/c"))["build_patches_setstate"]
    for result in _both(data):
        assert "argparse.Namespace.__setstate__" in result.calls


@pytest.mark.torch  # its pickles are written by torch
def test_allowed_callables_that_call_their_arguments() -> None:
    import torch

    data = pickle.dumps(
        attacks.Call(torch._tensor._rebuild_from_type_v2, attacks.os.system, torch.Tensor, ("true",), {}), 2
    )
    for result in _both(data):
        assert {"torch._tensor._rebuild_from_type_v2", "posix.system", "torch.Tensor"} <= result.calls


@pytest.mark.torch  # its pickles are written by torch
def test_both_decoders_agree_on_every_attack() -> None:
    def outcome(walk: object, data: bytes) -> tuple[frozenset[str], frozenset[str]]:
        try:
            result = walk(data)  # type: ignore[operator]
            return frozenset(result.globals), frozenset(result.calls)
        except PickleError as exc:
            return exc.globals, exc.calls

    for name, data in attacks.attack_pickles(attacks.Path("/c")).items():
        if name == "payload_after_stop":  # only walk_bytes reads past STOP (the stream decoder stops there)
            continue
        fast = outcome(walk_bytes, data)
        stream = outcome(lambda d: walk_pickle(io.BytesIO(d), len(d)), data)
        assert fast == stream, name
        assert fast[1], name
