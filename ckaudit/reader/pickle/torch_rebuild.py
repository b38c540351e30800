"""torch's tensor and storage rebuild functions, interpreted over stubs.

The machine calls `call_known` for every REDUCE: the few callables whose result matters for the tensor tree
return records (`TensorRef`, `StubDict`); everything else stays a `Call` stub.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ckaudit.reader.dtypes import ITEMSIZE, STORAGE_DTYPE, contiguous_stride, dtype_from_global, storage_dtype
from ckaudit.reader.pickle.stubs import Call, Global, PickleError, StorageRef, StubDict, TensorRef


def _ints(value: Any) -> tuple[int, ...]:
    if type(value) is tuple and all(type(v) is int for v in value):
        return value  # the common case, first: torch.save writes sizes and strides as plain tuples
    if isinstance(value, Call) and value.func_name == "torch.Size" and value.args:
        value = value.args[0]
    if not isinstance(value, (tuple, list)) or not all(type(v) is int for v in value):
        raise PickleError(f"tensor size/stride is not a tuple of ints: {value!r:.80}", truncated=False)
    return tuple(value)


def _from_storage(args: tuple[Any, ...], dtype: str | None = None, quantized: bool = False) -> TensorRef:
    storage, offset = args[0], args[1]
    if not isinstance(storage, StorageRef):
        raise PickleError("tensor rebuilt from something that is not a storage", truncated=False)
    if type(offset) is not int:
        raise PickleError("tensor storage offset is not an int", truncated=False)
    shape = _ints(args[2])
    stride = _ints(args[3]) if len(args) > 3 else contiguous_stride(shape)
    return TensorRef(
        dtype or storage.dtype, shape, stride, offset, storage, storage.location, quantized=quantized
    )


def _dtype_arg(value: Any) -> str:
    dtype = dtype_from_global(value.name) if isinstance(value, Global) else None
    if dtype is None:
        raise PickleError(f"not a torch dtype: {value!r:.80}", truncated=False)
    return dtype


def _rebuild_parameter(args: tuple[Any, ...]) -> TensorRef | None:
    data = args[0] if args else None
    if isinstance(data, TensorRef):
        data.parameter = True
        return data
    return None


def _rebuild_from_type(args: tuple[Any, ...]) -> TensorRef | None:
    func, _new_type, inner = args[0], args[1], args[2]
    if isinstance(func, Global) and isinstance(inner, tuple):
        return call_known(func.name, inner)
    return None


def _rebuild_meta(args: tuple[Any, ...]) -> TensorRef:
    dtype, shape = _dtype_arg(args[0]), _ints(args[1])
    return TensorRef(dtype, shape, _ints(args[2]), 0, None, "meta")


def _rebuild_wrapper_subclass(args: tuple[Any, ...]) -> TensorRef:
    dtype, shape, stride, offset = _dtype_arg(args[1]), _ints(args[2]), _ints(args[3]), args[4]
    device = args[6].args[0] if isinstance(args[6], Call) and args[6].args else "cpu"
    return TensorRef(dtype, shape, stride, int(offset), None, str(device))


def _rebuild_on_device(args: tuple[Any, ...]) -> TensorRef | None:
    data = args[0]
    if isinstance(data, TensorRef):
        data.dtype = _dtype_arg(args[1])
        return data
    return None


REBUILDERS: dict[str, Callable[[tuple[Any, ...]], TensorRef | None]] = {
    "torch._utils._rebuild_tensor": _from_storage,
    "torch._utils._rebuild_tensor_v2": _from_storage,
    "torch._utils._rebuild_tensor_v3": lambda a: _from_storage(a, _dtype_arg(a[6])),
    "torch._utils._rebuild_qtensor": lambda a: _from_storage(a, quantized=True),
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch._tensor._rebuild_from_type_v2": _rebuild_from_type,
    "torch._tensor._rebuild_from_type": _rebuild_from_type,
    "torch._utils._rebuild_meta_tensor_no_storage": _rebuild_meta,
    "torch._utils._rebuild_wrapper_subclass": _rebuild_wrapper_subclass,
    "torch._utils._rebuild_device_tensor_from_cpu_tensor": _rebuild_on_device,
}


def call_known(name: str, args: Any) -> Any:
    """Interpret the few callables whose result matters for the tree; None means 'keep a Call stub'."""
    if name == "collections.OrderedDict" and args == ():
        return StubDict(ordered=True)
    rebuild = REBUILDERS.get(name)
    if rebuild is None or not isinstance(args, tuple):
        return None
    try:
        return rebuild(args)
    except IndexError:
        raise PickleError(f"{name} called with too few arguments", truncated=False) from None


@functools.lru_cache(maxsize=256)  # a checkpoint names a handful of storage types, once per tensor
def _storage_type_dtype(type_name: str) -> str | None:
    return storage_dtype(type_name) or _any_module_storage(type_name)


def _any_module_storage(type_name: str) -> str | None:
    """torch.load's find_class returns StorageType(name) for any GLOBAL whose name is a legacy typed
    storage class ("FloatStorage"), whatever its module, and imports nothing."""
    last = type_name.rpartition(".")[2]
    return STORAGE_DTYPE.get(last) if last != "UntypedStorage" else None


def torch_storage(pid: Any) -> StorageRef:
    """Persistent id ('storage', storage type, key, location, numel[, view metadata]) -> StorageRef."""
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise PickleError(f"unknown persistent id {pid!r:.80}", truncated=False)
    storage_type, key, location, numel = pid[1], pid[2], pid[3], pid[4]
    type_name = storage_type.name if isinstance(storage_type, Global) else ""
    dtype = _storage_type_dtype(type_name)
    if dtype is None or not isinstance(key, str) or not isinstance(location, str) or type(numel) is not int:
        raise PickleError(f"malformed storage persistent id {pid!r:.120}", truncated=False)
    return StorageRef(key, dtype, location, numel * ITEMSIZE[dtype], type_name)
