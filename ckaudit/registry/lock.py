"""`ckaudit.lock`: the state-dict signature of every registered checkpoint, committed beside ckaudit.yaml.

Checkpoints often live outside git (ignored, object storage, LFS not pulled). The lock keeps what a dry run
needs of each — format, container key, every state-dict candidate's keys, shapes and dtypes and its
`_metadata` versions, the pickle's globals — so `hook`, `check` and `blame` judge code changes against it
where the file itself is absent, and `scan` notices a file that was replaced.

The file is YAML written line by line: one line per tensor and per `_metadata` entry, every scalar as a JSON
string, checkpoints and keys sorted, no timestamps — so two branches that register different checkpoints,
or re-register one, merge like source code.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ckaudit.errors import ConfigError
from ckaudit.reader import CheckpointInfo, StateDictCandidate, TensorInfo
from ckaudit.registry.config import Config
from ckaudit.registry.writer import write_atomically

LOCK_NAME = "ckaudit.lock"
HEADER = (
    "# ckaudit.lock: the state-dict signature of each registered checkpoint, written by `ckaudit register`\n"
    "# and `ckaudit init`. Commit it: hooks and CI judge code changes against it where a file is absent.\n"
)


@dataclass(frozen=True)
class Signature:
    """What a dry run sees of a checkpoint (never tensor data)."""

    format: str
    container: str  # the state dict's key in the file ("" = the top level), as registered or detected
    candidates: Mapping[str, Mapping[str, Any]]  # key -> {"tensors": {k: [dtype, shape]}, "metadata": ...}
    globals: tuple[str, ...] = ()
    # the installed versions of the packages the model's build imported when the checkpoint was registered
    # and loaded: `package-version` compares them with what is installed now (not part of the file's identity)
    packages: Mapping[str, str] = field(default_factory=dict, compare=False)

    def differences(self, other: Signature) -> list[str]:
        """What changed from `self` (locked) to `other` (the file now), in a few readable items."""
        out = [f"format {self.format} -> {other.format}"] if self.format != other.format else []
        mine, theirs = self.candidates.get(self.container, {}), other.candidates.get(self.container, {})
        if self.container not in other.candidates:
            out.append(f"no state dict under {self.container or 'the top level'} any more")
        old, new = mine.get("tensors") or {}, theirs.get("tensors") or {}
        out += [f"removed {k}" for k in sorted(old.keys() - new.keys())]
        out += [f"added {k}" for k in sorted(new.keys() - old.keys())]
        out += [f"{k}: {old[k]} -> {new[k]}" for k in sorted(old.keys() & new.keys()) if old[k] != new[k]]
        if not out and mine.get("metadata") != theirs.get("metadata"):
            out.append("_metadata versions differ")
        if not out and self != other:
            out.append("another state-dict candidate or pickled global changed")
        return out


def signature_of(info: CheckpointInfo, container: str | None) -> Signature:
    """The lock's record of a checkpoint: keys, shapes, dtypes and metadata of every candidate, never
    tensor data, so a lock diff reads like a code diff."""
    candidates = {
        c.key: {
            "tensors": {k: [t.dtype, list(t.shape)] for k, t in sorted(c.tensors.items())},
            "metadata": _plain(c.metadata),
        }
        for c in info.candidates
    }
    detected = info.candidates[0].key if info.candidates else ""
    return Signature(info.format, container if container is not None else detected, candidates, info.globals)


def _plain(metadata: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
    if metadata is None:
        return None
    return {str(k): {str(a): b for a, b in v.items()} for k, v in sorted(metadata.items())}


def info_from_signature(path: str, signature: Signature) -> CheckpointInfo:
    """A CheckpointInfo that dry-runs like the locked file (sizes and storages unknown: zero)."""
    candidates = []
    for key, candidate in signature.candidates.items():
        by_key = {
            k: TensorInfo(key=f"{key}.{k}" if key else k, shape=tuple(shape), dtype=dtype)
            for k, (dtype, shape) in (candidate.get("tensors") or {}).items()
        }
        candidates.append(StateDictCandidate(key=key, tensors=by_key, metadata=candidate.get("metadata")))
    candidates.sort(key=lambda c: c.key != signature.container)  # the registered one first
    tensors = tuple(t for c in candidates for t in c.tensors.values())
    return CheckpointInfo(
        path=path,
        format=signature.format,
        size=0,
        tensors=tensors,
        candidates=tuple(candidates),
        globals=signature.globals,
        details={"from_lock": True},
    )


def lock_path(config: Config) -> Path:
    """Beside the registry file (the repository root when the registry is not a file here)."""
    if config.path is not None and config.path.is_file():
        return config.path.with_name(LOCK_NAME)
    return config.root / LOCK_NAME


def lock_of(config: Config) -> dict[str, Signature]:
    """The signatures of ckaudit.lock beside the registry ({} when there is none)."""
    return load_lock(lock_path(config))


def update_lock(config: Config, signatures: Mapping[str, Signature]) -> Path:
    """Record `signatures`, keep the other registered checkpoints' records, drop unregistered ones, and
    record every registered checkpoint the lock lacks whose file is here and readable — so a registry
    written by hand gets its lock on the first `register`, `init` or `fix --registry` (or `ckaudit lock`).
    A record the lock has is never refreshed from the file: a replaced file is `signature-changed`."""
    target = lock_path(config)
    registered = {entry.as_written for entry in config.checkpoints}
    merged = {p: s for p, s in load_lock(target).items() if p in registered}
    for path, signature in signatures.items():  # package versions recorded when it loaded are kept
        known = merged.get(path)
        if not signature.packages and known is not None and known.packages and known == signature:
            signature = dataclasses.replace(signature, packages=known.packages)
        merged[path] = signature
    merged.update(missing_signatures(config, merged))
    write_atomically(target, dump_lock(merged))
    return target


def missing_signatures(config: Config, known: Mapping[str, Signature]) -> dict[str, Signature]:
    """Registered checkpoints without a record in `known`, read from their files where they can be."""
    from ckaudit.reader import CheckpointReadError, read_checkpoint

    found = {}
    for entry in config.checkpoints:
        if entry.as_written in known:
            continue
        path = Path(entry.path) if Path(entry.path).is_absolute() else config.root / entry.path
        try:
            info = read_checkpoint(path) if path.exists() else None
        except CheckpointReadError:
            continue  # broken or not a checkpoint: nothing to record; scan reports it
        if info is not None:
            found[entry.as_written] = signature_of(info, entry.key)
    return found


def load_lock(path: Path) -> dict[str, Signature]:
    """Path -> signature; an absent lock is empty, a malformed one a ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc}") from None
    return parse_lock(text, str(path))


def parse_lock(text: str, source: str) -> dict[str, Signature]:
    """ckaudit.lock's text as path -> signature; any malformation a ConfigError naming `source`."""
    try:
        # the safe loader, in C where PyYAML has it: a lock of a large model has thousands of lines
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        if data.get("version", 1) != 1:
            raise ConfigError(source, None, "version must be 1")
        return {
            str(path): Signature(
                format=str(item["format"]),
                container=str(item.get("container") or ""),
                candidates={str(k): dict(v or {}) for k, v in (item.get("candidates") or {}).items()},
                globals=tuple(item.get("globals") or ()),
                packages={str(k): str(v) for k, v in (item.get("packages") or {}).items()},
            )
            for path, item in (data.get("checkpoints") or {}).items()
        }
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(source, mark.line + 1 if mark else None, f"not valid YAML: {exc}") from None
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(source, None, f"not a ckaudit lock file ({exc}); re-run `ckaudit init`") from None


def dump_lock(signatures: Mapping[str, Signature]) -> str:
    """ckaudit.lock's text: entries sorted, one tensor a line, so diffs and merges stay readable."""
    return HEADER + "".join(_lines(signatures))


def _lines(signatures: Mapping[str, Signature]) -> Iterator[str]:
    yield "version: 1\ncheckpoints:\n"
    for path in sorted(signatures):
        signature = signatures[path]
        yield f"  {_j(path)}:\n    format: {_j(signature.format)}\n    container: {_j(signature.container)}\n"
        yield f"    globals: {_j(list(signature.globals))}\n"
        if signature.packages:
            yield f"    packages: {_j(dict(sorted(signature.packages.items())))}\n"
        yield "    candidates:\n"
        for key in sorted(signature.candidates):
            candidate = signature.candidates[key]
            tensors = candidate.get("tensors") or {}
            yield f"      {_j(key)}:\n        tensors:{'' if tensors else ' {}'}\n"
            for name, spec in sorted(tensors.items()):
                yield f"          {_j(name)}: {_j(spec)}\n"
            metadata = candidate.get("metadata")
            if metadata is None:
                yield "        metadata: null\n"
                continue
            yield "        metadata:\n" if metadata else "        metadata: {}\n"
            for prefix, entry in sorted(metadata.items()):
                yield f"          {_j(prefix)}: {_j(entry)}\n"


def _j(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
