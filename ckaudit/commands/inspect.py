"""`ckaudit inspect FILE`: what a checkpoint holds, read without torch and without reading tensor data.

Exit 0 for a readable checkpoint, 1 when the file is broken (its rule and message are printed), 2 when the
path does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ckaudit.errors import CkauditError
from ckaudit.keyranges import collapse_rows
from ckaudit.reader import (
    CheckpointInfo,
    CheckpointReadError,
    allow_line,
    classify_globals,
    read_checkpoint,
    torch_load_unpickles,
)

if TYPE_CHECKING:
    from ckaudit.reader import Integrity

EXIT_OK, EXIT_BROKEN = 0, 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("inspect", help="show what a checkpoint holds (no torch, no tensor data read)")
    parser.add_argument(
        "file", type=Path, help="checkpoint file, *.index.json, or distributed checkpoint dir"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("--verify", action="store_true", help="also check every CRC32 and compute the sha256")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.exists() and not path.is_symlink():
        raise CkauditError(f"{path}: no such file or directory")
    try:
        info = read_checkpoint(path)
    except CheckpointReadError as exc:
        sys.stdout.write(_error_json(path, exc) if args.format == "json" else _error_text(path, exc))
        return EXIT_BROKEN
    integrity = _verified(path, info) if args.verify else None
    problems = integrity.problems if integrity else []
    data = describe(info)
    if integrity is not None:
        data["verify"] = {"sha256": integrity.sha256, "problems": [_problem(p) for p in problems]}
    sys.stdout.write(render_json(data) if args.format == "json" else render_text(data))
    return EXIT_BROKEN if problems else EXIT_OK


def _verified(path: Path, info: CheckpointInfo) -> Integrity:
    from ckaudit.reader import verify_checkpoint  # hashing code: only when asked to verify

    return verify_checkpoint(path, info, sha256=True)


def _problem(exc: CheckpointReadError) -> dict[str, Any]:
    return {
        "rule": exc.rule.value,
        "cause": exc.rule.cause.value,
        "message": exc.message,
        "details": exc.details,
    }


def _error_text(path: Path, exc: CheckpointReadError) -> str:
    seen = f"  pickle globals seen: {', '.join(exc.globals)}\n" if exc.globals else ""
    return f"{path}: {exc.rule.value} ({exc.rule.cause.value}): {exc.message}\n{seen}"


def _error_json(path: Path, exc: CheckpointReadError) -> str:
    error = {**_problem(exc), "globals": list(exc.globals), "calls": list(exc.calls)}
    return json.dumps({"version": 1, "path": str(path), "error": error}, indent=2, default=str) + "\n"


def describe(info: CheckpointInfo) -> dict[str, Any]:
    """The inspect report as plain data (the JSON output; text renders the same)."""
    verdict = classify_globals(info.globals, info.calls)
    return {
        "version": 1,
        "path": info.path,
        "format": info.format,
        "size": info.size,
        "totals": {
            "tensors": len(info.tensors),
            "parameters": info.parameter_count,
            "bytes": sum(t.nbytes for t in info.tensors),
        },
        "tensors": [
            {
                "key": t.key,
                "shape": list(t.shape),
                "dtype": t.dtype,
                "stride": list(t.stride),
                "storage_offset": t.storage_offset,
                "storage": t.storage,
                "device": t.device,
                "bytes": t.nbytes,
                "file": t.file,
            }
            for t in info.tensors
        ],
        "candidates": [
            {"key": c.key, "tensors": len(c.tensors), "metadata": c.metadata is not None}
            for c in info.candidates
        ],
        "globals": list(info.globals),
        "calls": list(info.calls),
        "safety": {
            "blocked": list(verdict.blocked),
            "unsafe": list(verdict.unsafe),
            "fix": allow_line(verdict, info.details.get("opcodes_outside_weights_only") or ()),
        },
        "details": {k: v for k, v in info.details.items()},
    }


def render_json(data: dict[str, Any]) -> str:
    """The report indented, but one tensor a line: a checkpoint of thousands of tensors stays readable, and
    the rows go through json's C encoder (indenting is pure Python, most of inspect's time at 5,000)."""
    encode = _one_line_encoder()
    rows = ",\n    ".join(map(encode, data["tensors"]))
    placeholder = "\0tensors\0"
    document = json.dumps({**data, "tensors": placeholder}, indent=2)
    return document.replace(json.dumps(placeholder), f"[\n    {rows}\n  ]" if rows else "[]") + "\n"


def _one_line_encoder() -> Callable[[Any], str]:
    """`json.dumps` with its defaults, its C encoder made once instead of once a call (half the time of
    5,000 rows)."""
    make = getattr(json.encoder, "c_make_encoder", None)  # not in typeshed; None without the _json module
    if make is None:  # pragma: no cover - CPython builds _json in
        return json.dumps
    default = json.JSONEncoder().default
    encode = make({}, default, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return lambda value: "".join(encode(value, 0))


def human_bytes(count: int) -> str:
    """1024-based sizes, one decimal (`1.5 MB`); bytes as a whole number."""
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover - unreachable


def _tensor_lines(tensors: list[dict[str, Any]]) -> list[str]:
    rows = collapse_rows((t["key"], (tuple(t["shape"]), t["dtype"], t["bytes"])) for t in tensors)
    width = min(max((len(k) + len(f" ×{n}") for k, _v, n in rows), default=10), 70)
    lines = []
    for key, (shape, dtype, nbytes), count in rows:
        label = f"{key} ×{count}" if count > 1 else key
        each = " each" if count > 1 else ""
        lines.append(f"  {label:<{width}}  {list(shape)!s:<16} {dtype:<14} {human_bytes(nbytes)}{each}")
    return lines


def _safety_line(data: dict[str, Any]) -> str:
    safety = data["safety"]
    if safety["unsafe"]:
        return "UNSAFE: can run code on a full load: " + ", ".join(safety["unsafe"])
    if safety["blocked"]:
        return "torch.load(weights_only=True) refuses: " + ", ".join(safety["blocked"])
    if torch_load_unpickles(data["path"], data["format"]):
        return (
            "nothing to run; torch.load reads safetensors only by a `.safetensors` name (fails on this one)"
        )
    return "loads with torch.load(weights_only=True)"


def _detail_lines(details: dict[str, Any]) -> list[str]:
    shown = {k: v for k, v in details.items() if v not in (None, [], {}, "")}
    return [
        f"  {key}: {value if not isinstance(value, list) else ', '.join(map(str, value))}"
        for key, value in shown.items()
    ]


def render_text(data: dict[str, Any]) -> str:
    """The inspect summary as text (format, size, totals, state-dict candidates, tensors), from the JSON
    form."""
    totals = data["totals"]
    candidates = ", ".join(
        f"{c['key'] or '(top level)'} ({c['tensors']} tensors)" for c in data["candidates"]
    )
    lines = [
        f"{data['path']}",
        f"  format:      {data['format']}, {human_bytes(data['size'])} on disk",
        f"  tensors:     {totals['tensors']} ({totals['parameters']:,} parameters, "
        f"{human_bytes(totals['bytes'])})",
        f"  state dicts: {candidates or 'none found'}",
        f"  globals:     {', '.join(data['globals']) or 'none'}",
        f"  safety:      {_safety_line(data)}",
    ]
    if data["safety"]["fix"]:
        lines += ["  allow with:  " + data["safety"]["fix"].replace("\n", "\n               ")]
    if "verify" in data:
        verify = data["verify"]
        lines.append(f"  sha256:      {verify['sha256'] or '(not computed for this format)'}")
        lines += [f"  PROBLEM:     {p['rule']}: {p['message']}" for p in verify["problems"]]
    lines += [
        "",
        "serialization:",
        *_detail_lines(data["details"]),
        "",
        "tensors:",
        *_tensor_lines(data["tensors"]),
    ]
    return "\n".join(lines) + "\n"
