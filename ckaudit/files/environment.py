"""`device` and `torch-version`: what the file asks of the torch that will load it.

`device`: the file checks run without torch, so they cannot know whether this machine has CUDA or MPS:
storages saved anywhere but the CPU are a *warning* there (a plain `torch.load` fails wherever that device
is missing, and `map_location="cpu"` always works). The model side, whose worker has torch, knows which
devices the project's interpreter has; `device_findings(..., available=...)` then makes the absent ones an
error and drops the warning for devices that are present.

`torch-version`: the legacy (pre-1.6) format still loads but is deprecated (a note); a zip archive whose
`version` record is above 10, the highest any torch 2.x reads (`kMaxSupportedFileFormatVersion`), is an error.
The pre-0.4 tar format is refused by torch.load(weights_only=True), the default: `weights-only-blocked`.
A safetensors file under another name is a warning: torch.load reads it as a pickle and fails, but a
project that loads it with the safetensors library is fine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

from ckaudit.files.file_finding import file_finding
from ckaudit.findings import Finding, Rule, Severity, plural
from ckaudit.reader import TAR_FORMAT, CheckpointInfo, torch_load_unpickles

MAX_ARCHIVE_VERSION = 10


def device_findings(
    rel_path: str, info: CheckpointInfo, model: str | None, available: Collection[str] | None = None
) -> list[Finding]:
    """`available`: the device types the loading interpreter has ("cpu", "cuda", "mps", ...), when known."""
    devices = Counter(t.device for t in info.tensors if t.device and not t.device.startswith("cpu"))
    if available is not None:
        devices = Counter({d: n for d, n in devices.items() if _device_type(d) not in available})
    if not devices:
        return []
    names = ", ".join(f"{d} ({plural(n, 'tensor')})" for d, n in sorted(devices.items()))
    if available is None:
        severity, consequence = Severity.WARNING, "where that device is missing a plain torch.load fails"
    else:
        have = ", ".join(sorted(available))
        severity, consequence = (
            Severity.ERROR,
            f"this interpreter has only {have}, so a plain torch.load fails",
        )
    return [
        file_finding(
            Rule.DEVICE,
            rel_path,
            f"{rel_path}: storages were saved on {names}; {consequence}",
            f'Load it with `torch.load("{rel_path}", map_location="cpu")`, or re-save it from CPU tensors',
            {
                "devices": dict(sorted(devices.items())),
                **({} if available is None else {"available": sorted(available)}),
            },
            model=model,
            severity=severity,
        )
    ]


def _device_type(location: str) -> str:
    """torch's location strings: "cuda:0" -> "cuda"; "mps", "xpu:1", "privateuseone:0"."""
    return location.split(":", 1)[0]


def version_findings(rel_path: str, info: CheckpointInfo, model: str | None) -> list[Finding]:
    """What the file's format means for the torch that loads it: the pre-0.4 tar and the pre-1.6 legacy
    formats, and an archive version newer than the newest torch ckaudit knows."""
    if info.format == TAR_FORMAT:
        return [
            file_finding(
                Rule.WEIGHTS_ONLY_BLOCKED,
                rel_path,
                f"{rel_path}: uses torch's pre-0.4 tar format, which torch.load(weights_only=True), the "
                "default, refuses",
                "Load it once with weights_only=False only if you trust where it came from, and re-save it "
                "with a current torch.save (or as safetensors)",
                {"format": info.format},
                model=model,
            )
        ]
    if info.format == "torch-legacy":
        return [
            _finding(
                rel_path,
                model,
                Severity.NOTE,
                "uses torch's legacy (pre-1.6) serialization format, which is deprecated and cannot be "
                "memory-mapped",
                "Re-save it with a current torch.save (the zip format) or as safetensors",
                {"format": info.format},
            )
        ]
    if torch_load_unpickles(rel_path, info.format):
        return [
            _finding(
                rel_path,
                model,
                Severity.WARNING,
                "is a safetensors file, but torch.load sends only paths ending in `.safetensors` to the "
                "safetensors library (torch 2.13): under this name it unpickles the file and fails",
                "Load it with `safetensors.torch.load_file`, or rename it to end in `.safetensors`",
                {"format": info.format},
            )
        ]
    version = _archive_version(info.details)
    if version is not None and version > MAX_ARCHIVE_VERSION:
        return [
            _finding(
                rel_path,
                model,
                Severity.ERROR,
                f"archive format version {version} is newer than any torch 2.x reads "
                f"(at most {MAX_ARCHIVE_VERSION})",
                "Load it with the torch that wrote it and re-save it as safetensors or with an older torch",
                {"archive_version": version, "max_supported": MAX_ARCHIVE_VERSION},
            )
        ]
    return []


def _archive_version(details: Any) -> int | None:
    value = details.get("version") if hasattr(details, "get") else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _finding(
    rel_path: str, model: str | None, severity: Severity, message: str, fix: str, details: dict[str, Any]
) -> Finding:
    return file_finding(
        Rule.TORCH_VERSION, rel_path, f"{rel_path}: {message}", fix, details, model=model, severity=severity
    )
