"""Config -> ckaudit.yaml text, deterministic and sorted so registries merge cleanly; written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ckaudit.atomic import write_atomic
from ckaudit.errors import CkauditError
from ckaudit.registry.config import DEFAULT_TIMEOUT, CheckpointEntry, Config, ModelSpec, ScanSettings

HEADER = "# ckaudit registry: which checkpoint must load into which model. See `ckaudit --help`.\n"


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings (build: code) as literal blocks."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def _model_dict(spec: ModelSpec) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if spec.factory:
        fields["factory"] = spec.factory
    if spec.build:
        fields["build"] = spec.build
    if spec.kwargs:
        fields["kwargs"] = dict(sorted(spec.kwargs.items()))
    if spec.sources:
        fields["sources"] = sorted(spec.sources)
    return fields


def _checkpoint_dict(entry: CheckpointEntry) -> dict[str, Any]:
    fields: dict[str, Any] = {"path": entry.as_written}
    optional: list[tuple[str, Any, Any]] = [
        ("model", entry.model, None),
        ("key", entry.key, None),
        ("sha256", entry.sha256, None),
        ("strict", entry.strict, True),
        ("ignore", sorted(entry.ignore), []),
        ("expect", "fails" if entry.expect_fails else None, None),
        ("reason", entry.reason, None),
        ("load", entry.load.as_dict() if entry.load else None, None),
        ("required", entry.required, False),
    ]
    fields.update({name: value for name, value, default in optional if value != default})
    return fields


def config_dict(config: Config) -> dict[str, Any]:
    """The registry as plain data in the order it is written: defaults left out, models and checkpoints
    sorted."""
    data: dict[str, Any] = {"version": 1}
    if config.python:
        data["python"] = config.python
    if config.timeout != DEFAULT_TIMEOUT:
        data["timeout"] = config.timeout
    data["models"] = {name: _model_dict(config.models[name]) for name in sorted(config.models)}
    data["checkpoints"] = [
        _checkpoint_dict(c) for c in sorted(config.checkpoints, key=lambda c: c.as_written)
    ]
    if config.trusted_globals:
        data["trusted_globals"] = sorted(config.trusted_globals)
    if config.scan != ScanSettings():
        data["scan"] = {"include": list(config.scan.include), "exclude": list(config.scan.exclude)}
    return data


def dump_config(config: Config) -> str:
    """The registry as YAML: sorted, no timestamps, so that two branches' registrations merge cleanly."""
    body = yaml.dump(
        config_dict(config), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110
    )
    return HEADER + body


def write_atomically(path: Path, text: str) -> None:
    """Temp file in the same folder, then rename: a reader never sees half a file."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise CkauditError(f"cannot write {path}: {exc}") from None
