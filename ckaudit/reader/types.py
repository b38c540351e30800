"""What the reader returns. Plain data, no torch: shapes, dtypes and where the bytes sit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ckaudit.findings import Rule


@dataclass(frozen=True)
class TensorInfo:
    key: str  # dotted path inside the file: "model_state_dict.conv1.weight"
    shape: tuple[int, ...]
    dtype: str  # torch's name without the "torch." prefix: "float32", "bfloat16", "float8_e4m3fn", "qint8"
    stride: tuple[int, ...] = ()
    storage_offset: int = 0  # in elements
    storage: str | None = None  # storage key (zip: the data/ member name; safetensors: None)
    device: str = "cpu"  # the location the storage was saved from: "cpu", "cuda:0", "mps"
    nbytes: int = 0  # bytes of the view: numel * itemsize
    file: str | None = None  # for sharded checkpoints: the shard that holds it


@dataclass(frozen=True)
class StateDictCandidate:
    """A mapping of tensors inside the file that could be what load_state_dict receives."""

    key: str  # "" for the top-level object, else the dotted container key ("model_state_dict", "ema.model")
    # keys relative to the container; each record keeps its full dotted path as its own `key`
    tensors: Mapping[str, TensorInfo]
    metadata: Mapping[str, Mapping[str, Any]] | None = (
        None  # OrderedDict._metadata ({"": {"version": 1}, ...})
    )


@dataclass(frozen=True)
class CheckpointInfo:
    path: str
    # torch-zip (torch.save since 1.6), torch-legacy (pre-1.6 format), torch-tar (torch.save before 0.4),
    # torchscript (torch.jit.save), safetensors, safetensors-index / bin-index (*.index.json of a
    # sharded save), dcp (a torch.distributed.checkpoint folder)
    format: str
    size: int  # bytes on disk (sum of shards/members for directories and indexes)
    tensors: tuple[TensorInfo, ...] = ()
    candidates: tuple[StateDictCandidate, ...] = ()  # best first
    globals: tuple[str, ...] = ()  # every "module.qualname" the pickle(s) reference, sorted, unique
    calls: tuple[str, ...] = ()  # of those, the ones the pickle(s) call or instantiate, sorted, unique
    details: Mapping[str, Any] = field(
        default_factory=dict
    )  # archive name, byteorder, version, storages, ...
    # the hyperparameters the file records, by source ("model_args", "hyper_parameters", "config.json")
    hyperparameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def parameter_count(self) -> int:
        """Elements over all tensors (the number `inspect` shows as parameters)."""
        count = 0
        for tensor in self.tensors:
            numel = 1
            for dim in tensor.shape:
                numel *= dim
            count += numel
        return count


class CheckpointReadError(Exception):
    """Not a loadable checkpoint; `rule` says why (truncated, corrupt, not-a-checkpoint, lfs-pointer)."""

    def __init__(
        self,
        rule: Rule,
        message: str,
        details: Mapping[str, Any] | None = None,
        *,
        globals: Iterable[str] = (),
        calls: Iterable[str] = (),
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.details = dict(details or {})
        self.globals = tuple(sorted(set(globals)))  # named before the failure: still audited for safety
        self.calls = tuple(sorted(set(calls)))
