"""The reader against torch: keys, shapes, dtypes, strides, offsets and shared storages match torch.load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ckaudit.findings import Rule
from ckaudit.reader import CheckpointInfo, CheckpointReadError, read_checkpoint, verify_checkpoint
from tests.conftest import requires_torch

pytestmark = requires_torch


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    import torch

    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else []
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _assert_matches_torch(info: CheckpointInfo, loaded: Any) -> None:
    expected = _flatten(loaded)
    ours = {t.key: t for t in info.tensors}
    assert list(ours) == list(expected)
    for key, tensor in expected.items():
        mine = ours[key]
        assert mine.shape == tuple(tensor.shape), key
        assert mine.dtype == str(tensor.dtype).removeprefix("torch."), key
        assert mine.stride == tuple(tensor.stride()), key
        assert mine.storage_offset == tensor.storage_offset(), key
        assert mine.nbytes == tensor.numel() * tensor.element_size(), key
    if info.format in ("torch-zip", "torch-legacy"):
        _assert_same_storages(ours, expected)


def _assert_same_storages(ours: dict[str, Any], expected: dict[str, Any]) -> None:
    # tensors share a storage key exactly when torch gives them the same storage
    by_ptr: dict[int, set[str | None]] = {}
    for key, tensor in expected.items():
        if not tensor.is_quantized:
            by_ptr.setdefault(tensor.untyped_storage().data_ptr(), set()).add(ours[key].storage)
    assert all(len(keys) == 1 for keys in by_ptr.values())
    assert len({next(iter(k)) for k in by_ptr.values()}) == len(by_ptr)


@pytest.mark.parametrize("name", ["zip.pt", "legacy.pt"])
def test_torch_save_formats_match_torch_load(files: dict[str, Path], name: str) -> None:
    import torch

    info = read_checkpoint(files[name])
    assert info.format == ("torch-zip" if name == "zip.pt" else "torch-legacy")
    _assert_matches_torch(info, torch.load(files[name], weights_only=True))
    assert info.candidates[0].key == ""
    assert "torch._utils._rebuild_qtensor" in info.globals
    assert info.details["locations"] == ["cpu"]
    assert verify_checkpoint(files[name], info, sha256=True).problems == []


def test_zip_details(files: dict[str, Path]) -> None:
    info = read_checkpoint(files["small.pt"])
    assert info.details["archive"] == "small"
    assert info.details["byteorder"] == "little"
    assert info.details["storages"] == 2
    assert info.parameter_count == 8
    assert info.details["opcodes_outside_weights_only"] == []


def test_training_checkpoint_candidates(files: dict[str, Path]) -> None:
    import torch

    info = read_checkpoint(files["train.pt"])
    _assert_matches_torch(info, torch.load(files["train.pt"], weights_only=True))
    best = info.candidates[0]
    assert best.key == "model_state_dict"
    assert set(best.tensors) == set(torch.load(files["train.pt"])["model_state_dict"])
    assert best.metadata is not None and best.metadata["1"] == {"version": 2}  # BatchNorm's version
    assert all("optim" in c.key for c in info.candidates[1:])


def test_safetensors_match_library(files: dict[str, Path]) -> None:
    from safetensors.torch import load_file

    info = read_checkpoint(files["small.safetensors"])
    assert info.format == "safetensors"
    assert info.details["metadata"] == {"format": "pt"}
    _assert_matches_torch(info, load_file(files["small.safetensors"]))


def test_every_safetensors_dtype(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from tests.reader.reader_fixtures import tricky_state

    unsupported = ("complex32", "complex128", "float8_e8m0fnu")  # the safetensors library cannot load them
    state = {k: v for k, v in tricky_state().items() if k.startswith("dtype.") and k[6:] not in unsupported}
    path = tmp_path / "all.safetensors"
    save_file(state, path)
    _assert_matches_torch(read_checkpoint(path), load_file(path))
    assert torch.float64 in {v.dtype for v in state.values()}


def _shard(tmp_path: Path, kind: str) -> Path:
    import torch
    from safetensors.torch import save_file

    parts = [{"a.weight": torch.ones(2, 3)}, {"b.weight": torch.zeros(4, dtype=torch.bfloat16)}]
    weight_map = {}
    for i, part in enumerate(parts):
        name = f"model-{i + 1:05d}-of-00002.{'safetensors' if kind == 'safetensors' else 'bin'}"
        if kind == "safetensors":
            save_file(part, tmp_path / name)
        else:
            torch.save(part, tmp_path / name)
        weight_map.update(dict.fromkeys(part, name))
    index = tmp_path / f"model.{kind}.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": 28}, "weight_map": weight_map}))
    return index


@pytest.mark.parametrize("kind", ["safetensors", "bin"])
def test_sharded_index(tmp_path: Path, kind: str) -> None:
    index = _shard(tmp_path, kind)
    info = read_checkpoint(index)
    assert info.format == ("safetensors-index" if kind == "safetensors" else "bin-index")
    assert [(t.key, t.shape, t.dtype) for t in info.tensors] == [
        ("a.weight", (2, 3), "float32"),
        ("b.weight", (4,), "bfloat16"),
    ]
    assert info.tensors[1].file and info.tensors[1].file.startswith("model-00002")
    assert verify_checkpoint(index, info, sha256=True).problems == []
    shard = tmp_path / info.details["shards"][1]
    shard.unlink()
    with pytest.raises(CheckpointReadError) as caught:
        read_checkpoint(index)
    assert caught.value.rule is Rule.FILE_MISSING  # not `truncated`: the index itself is whole
    assert caught.value.details == {"shard": shard.name}


def test_distributed_checkpoint(tmp_path: Path) -> None:
    import warnings

    import torch
    import torch.distributed.checkpoint as dcp

    state = {"w": torch.ones(2, 3), "half": torch.zeros(5, dtype=torch.float16), "step": 7}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save(state, checkpoint_id=tmp_path / "ckpt")
    info = read_checkpoint(tmp_path / "ckpt")
    assert info.format == "dcp"
    assert {(t.key, t.shape, t.dtype) for t in info.tensors} == {
        ("w", (2, 3), "float32"),
        ("half", (5,), "float16"),
    }
    assert info.details["non_tensor_entries"] == 1
    for data_file in info.details["data_files"]:
        (tmp_path / "ckpt" / data_file).write_bytes(b"")
    with pytest.raises(CheckpointReadError, match="data file") as raised:
        read_checkpoint(tmp_path / "ckpt")
    assert raised.value.rule is Rule.TRUNCATED


def test_torchscript_archive(files: dict[str, Path]) -> None:
    import torch

    info = read_checkpoint(files["jit.pt"])
    assert info.format == "torchscript"
    state = torch.jit.load(files["jit.pt"]).state_dict()
    assert {t.key: t.shape for t in info.tensors} == {k: tuple(v.shape) for k, v in state.items()}
    assert verify_checkpoint(files["jit.pt"], info, sha256=False).problems == []
