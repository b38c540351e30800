"""The dry run inside the worker: a model's state-dict signature, meta tensors shaped like a checkpoint's, and
the model's own `load_state_dict` on them, with torch's message parsed into key lists.

Loaded by path from server.py (this folder is no import root): standard library and torch only.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

_SIZE_MISMATCH = re.compile(
    r"size mismatch for (.+?): copying a param with shape torch\.Size\(\[([\d, ]*)\]\) from checkpoint, "
    r"the shape in current model is torch\.Size\(\[([\d, ]*)\]\)"
)


def signature(model: Any) -> dict[str, list[Any]]:
    """key -> [shape, dtype, persistent, is a buffer] (buffers hint at `persistent=False` when missing)."""
    import torch

    signature: dict[str, list[Any]] = {}
    for key, value in model.state_dict(keep_vars=True).items():
        if hasattr(value, "shape"):
            buffer = not isinstance(value, torch.nn.Parameter)
            signature[key] = [list(value.shape), str(value.dtype).removeprefix("torch."), True, buffer]
    for key, buffer in model.named_buffers():
        if key not in signature and buffer is not None:
            signature[key] = [list(buffer.shape), str(buffer.dtype).removeprefix("torch."), False, True]
    return signature


def meta_state_dict(request: dict[str, Any]) -> OrderedDict[str, Any]:
    """The checkpoint as the reader saw it, rebuilt from shapes and dtypes as meta tensors (no data is
    read), with its `_metadata` so version-aware load hooks run as for the real file."""
    import torch

    state: OrderedDict[str, Any] = OrderedDict()
    for key, shape, dtype in request["tensors"]:
        torch_dtype = getattr(torch, dtype, None)
        try:
            state[key] = torch.empty(shape, dtype=torch_dtype, device="meta")
        except Exception:
            state[key] = torch.empty(shape, dtype=torch.uint8, device="meta")
    if request.get("metadata") is not None:
        state._metadata = OrderedDict(request["metadata"])  # type: ignore[attr-defined]
    return state


def load(model: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The model's own load_state_dict on meta tensors; torch's message and key lists, verbatim."""
    lists: dict[str, Any] = {}

    def keep_lists(module: Any, incompatible: Any) -> None:
        lists["missing"], lists["unexpected"] = incompatible.missing_keys, incompatible.unexpected_keys

    model.register_load_state_dict_post_hook(keep_lists)
    error_text = None
    try:
        model.load_state_dict(meta_state_dict(request), strict=bool(request.get("strict", True)), assign=True)
    except Exception as exc:
        error_text = str(exc) if isinstance(exc, RuntimeError) else f"{type(exc).__name__}: {exc}"
    mismatches, others = _parse_errors(error_text)
    return {
        "error_text": error_text,
        "missing": list(lists.get("missing", [])),
        "unexpected": list(lists.get("unexpected", [])),
        "size_mismatch": mismatches,
        "other_errors": others,
    }


def _parse_errors(error_text: str | None) -> tuple[list[Any], list[str]]:
    if error_text is None:
        return [], []
    if not error_text.startswith("Error(s) in loading state_dict"):
        return [], [error_text]
    mismatches, others = [], []
    for message in error_text.split("\n\t")[1:]:
        match = _SIZE_MISMATCH.match(message)
        if match:
            mismatches.append([match.group(1), _dims(match.group(2)), _dims(match.group(3))])
        elif not message.startswith(("Missing key(s) in state_dict", "Unexpected key(s) in state_dict")):
            others.append(message)
    return mismatches, others


def _dims(text: str) -> list[int]:
    return [int(d) for d in text.replace(" ", "").split(",") if d]
