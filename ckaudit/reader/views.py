"""Structural checks shared by the pickle-based formats: every tensor view must fit inside its storage."""

from __future__ import annotations

from ckaudit.reader.dtypes import ITEMSIZE
from ckaudit.reader.errors import corrupt
from ckaudit.reader.types import TensorInfo


def view_extent(tensor: TensorInfo) -> int:
    """Bytes of storage the view reaches: (offset + last element index + 1) * itemsize; 0 for empty views."""
    if 0 in tensor.shape:
        return 0
    last = tensor.storage_offset
    for dim, step in zip(tensor.shape, tensor.stride, strict=True):
        last += (dim - 1) * step
    return (last + 1) * ITEMSIZE.get(tensor.dtype, 1)


def check_views(tensors: list[TensorInfo], storage_bytes: dict[str, int]) -> None:
    """Raise `corrupt` when a tensor's storage is unknown or too small for the view the pickle describes."""
    for tensor in tensors:
        if tensor.storage is None:
            continue
        shape, stride = tensor.shape, tensor.stride
        if len(stride) != len(shape) or tensor.storage_offset < 0 or min(shape + stride, default=0) < 0:
            raise corrupt(
                f"tensor {tensor.key!r} has inconsistent shape {list(shape)} / stride {list(stride)}"
            )
        available = storage_bytes.get(tensor.storage)
        if available is None:
            raise corrupt(f"tensor {tensor.key!r} refers to storage {tensor.storage!r}, which the file lacks")
        needed = view_extent(tensor)
        if needed > available:
            raise corrupt(
                f"tensor {tensor.key!r} needs {needed} bytes of storage {tensor.storage!r}, which has "
                f"{available}"
            )
