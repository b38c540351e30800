"""The C pass (reader/pickle/cpass.py) against the walker it stands in for.

Where the C pass answers, its result must equal the walker's, value for value and alias for alias; where it
cannot vouch for a stream it must decline. Checked on torch.save's own data.pkl for real models and
training checkpoints, on the attack corpus, and on mutants of both (a fixed seed, bounded count).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import pickletools
import random
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest

from ckaudit.reader.pickle import Call, Global, PickleError, PickleResult, StorageRef, StubDict, TensorRef
from ckaudit.reader.pickle.cpass import c_pass
from ckaudit.reader.pickle.decoders import walk_bytes, walk_bytes_exactly
from ckaudit.reader.pickle.torch_rebuild import torch_storage
from tests.conftest import requires_torch
from tests.reader import oracle
from tests.reader.attacks import attack_pickles

MUTANTS = int(os.environ.get("CKAUDIT_CPASS_MUTANTS", "3000"))


def _data_pkl(obj: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))


def _state_dicts() -> dict[str, bytes]:
    """Streams torch.save writes for what people save: a model's state_dict, a training checkpoint without
    optimizer lists, parameters, every dtype family, shared storages and views."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 2))
    base = torch.arange(12.0)
    dtypes = [torch.float16, torch.bfloat16, torch.int8, torch.bool, torch.complex64, torch.float8_e4m3fn]
    return {
        "state_dict": _data_pkl(model.state_dict()),
        "training": _data_pkl({"model_state_dict": model.state_dict(), "epoch": 3, "loss": 0.25, "ok": True}),
        "parameters": _data_pkl({"w": nn.Parameter(torch.ones(2, 3)), "b": nn.Parameter(torch.zeros(2))}),
        "dtypes": _data_pkl({str(d): torch.zeros(2, dtype=d) for d in dtypes}),
        "views": _data_pkl({"a": base, "b": base[2:8].view(2, 3), "c": base.t() if base.dim() > 1 else base}),
        "nested": _data_pkl(OrderedDict(enc={"l": torch.ones(1)}, meta=("v", 1, None, 2**70, -1.5))),
        "empty": _data_pkl({}),
        "scalar": _data_pkl({"t": torch.tensor(3.0), "step": torch.tensor(7)}),
    }


def _shape(result: PickleResult) -> Any:
    """A comparable picture of a result: every value by content, and shared values as references."""
    order: dict[int, int] = {}

    def picture(value: Any) -> Any:
        if isinstance(value, (str, int, float, bool, type(None), bytes)):
            return (type(value).__name__, value)
        if id(value) in order:
            return ("ref", order[id(value)])
        order[id(value)] = len(order)
        if isinstance(value, StubDict):
            items = [(picture(k), picture(v)) for k, v in value.items()]
            return ("dict", value.ordered, items, picture(value.metadata))
        if isinstance(value, (tuple, list)):
            return (type(value).__name__, [picture(v) for v in value])
        if isinstance(value, TensorRef):
            fields = (value.dtype, value.shape, value.stride, value.offset, value.device)
            return ("tensor", fields, value.parameter, value.quantized, picture(value.storage))
        if isinstance(value, StorageRef):
            return ("storage", value.key, value.dtype, value.location, value.nbytes, value.type_name)
        if isinstance(value, Global):
            return ("global", type(value) is Global, value.name)
        if isinstance(value, Call):
            return ("call", picture(value.func), picture(value.args))
        return ("other", type(value).__name__)

    return (
        picture(result.root),
        sorted(result.globals),
        result.end,
        sorted(result.refused),
        sorted(result.calls),
    )


def _walker(data: bytes) -> PickleResult | None:
    try:
        return walk_bytes_exactly(data, persistent_load=torch_storage)
    except PickleError:
        return None


def _agrees(data: bytes) -> bool | None:
    """True when the C pass answered and equals the walker, None when it declined; a wrong answer fails."""
    fast = c_pass(data, torch_storage)
    if fast is None:
        return None
    exact = _walker(data)
    assert exact is not None, "the C pass answered where the walker finds an error"
    assert _shape(fast) == _shape(exact)
    return True


@requires_torch
def test_answers_for_what_torch_save_writes_and_equals_the_walker() -> None:
    for name, data in _state_dicts().items():
        assert _agrees(data), f"{name}: the C pass declined a plain torch.save stream"
        assert walk_bytes(data, persistent_load=torch_storage).end == len(data)


@requires_torch
def test_declines_what_it_does_not_model() -> None:
    import torch

    optimizer_state = _data_pkl({"param_groups": [{"params": [0, 1], "lr": 0.1}]})  # lists
    trailing = _data_pkl({"w": torch.ones(1)}) + b"\x80\x02N."
    for data in (optimizer_state, trailing):
        assert c_pass(data, torch_storage) is None
    assert c_pass(_data_pkl({"w": torch.ones(1)}), None) is None  # no persistent_load: the walker's stub


def test_declines_every_attack(tmp_path: Path) -> None:
    for name, data in attack_pickles(tmp_path / "canary").items():
        assert c_pass(data, torch_storage) is None, name
    assert not (tmp_path / "canary").exists()


def _tokens(data: bytes) -> list[bytes]:
    """The stream cut at opcode boundaries (an unparsable tail stays one token)."""
    starts: list[int] = []
    with contextlib.suppress(Exception):  # the tail genops cannot parse stays one token
        for _op, _arg, pos in pickletools.genops(data):
            starts.append(pos or 0)
    cuts = [*starts, len(data)] if starts else [0, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(cuts)]


_SAME_WIDTH = {
    width: bytes(
        op.code.encode("latin-1")[0] for op in pickletools.opcodes if (op.arg.n if op.arg else 0) == width
    )
    for width in (0, 1, 2, 4, 8)
}


def _structural_mutant(data: bytes, rng: random.Random) -> bytes:
    """A mutant that keeps the opcode grammar: a token dropped, repeated or swapped with its neighbour, an
    opcode exchanged for another with an argument as wide (POP for MARK, BINGET for BININT1, ...), or an
    argument byte changed (a memo index, a size)."""
    tokens = _tokens(data)
    if not tokens:
        return data
    at = rng.randrange(len(tokens))
    kind = rng.randrange(4)
    if kind == 0:
        del tokens[at]
    elif kind == 1:
        tokens.insert(at, tokens[at])
    elif kind == 2 and at + 1 < len(tokens):
        tokens[at], tokens[at + 1] = tokens[at + 1], tokens[at]
    else:
        token = bytearray(tokens[at])
        family = _SAME_WIDTH.get(len(token) - 1, b"")
        if token and token[0] in family and rng.random() < 0.5:
            token[0] = rng.choice(family)
        elif len(token) > 1:
            token[rng.randrange(1, len(token))] = rng.randrange(256)
        tokens[at] = bytes(token)
    return b"".join(tokens)


@requires_torch
def test_mutants_either_decline_or_equal_the_walker(tmp_path: Path) -> None:
    state_dicts = list(_state_dicts().values())
    attacks = list(attack_pickles(tmp_path / "canary").values())
    rng = random.Random(20)
    answered = 0
    for i in range(MUTANTS):
        data = rng.choice(attacks if i % 5 == 0 else state_dicts)
        for _ in range(rng.choice((1, 1, 2, 3))):
            data = _structural_mutant(data, rng) if i % 4 else oracle.mutate(data, rng)
        answered += bool(_agrees(data))
    assert not (tmp_path / "canary").exists()
    assert answered > MUTANTS // 10  # the mutants reach the C pass's answers, not only its refusals


@pytest.mark.parametrize(
    "stream",
    [
        b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01r\x00\x00\x00\x40u.",  # LONG_BINPUT 2**30: C's memo size
        b"\x80\x02cbuiltins\nprint\nq\x00)R.",  # a global outside the C pass's names
        b"\x80\x02ctorch._utils\n_rebuild_parameter\nq\x00K\x01\x85R.",  # a call the walker keeps as a stub
        b"\x80\x02ctorch\nFloatStorage\nq\x00}b.",  # BUILD on a global: the walker records a call
    ],
)
def test_declines_streams_at_its_edges(stream: bytes) -> None:
    assert c_pass(stream, torch_storage) is None
    assert _walker(stream) is not None  # each is a pickle the walker does read


def test_build_on_an_ordered_dict_equals_the_walker() -> None:
    stream = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01}X\t\x00\x00\x00_metadataK\x07sb."
    assert _agrees(stream)
    assert c_pass(stream, torch_storage).root.metadata == 7  # type: ignore[union-attr]
