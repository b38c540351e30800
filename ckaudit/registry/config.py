"""ckaudit.yaml -> a frozen Config. Every error names the file and the line."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ckaudit.errors import ConfigError
from ckaudit.findings import Finding, Location, Rule, Severity
from ckaudit.registry.loadsteps import LoadSteps, parse_load
from ckaudit.registry.yamlnodes import NodeReader

CONFIG_NAME = "ckaudit.yaml"
DEFAULT_INCLUDE = ("**/*.pt", "**/*.pth", "**/*.ckpt", "**/*.bin", "**/*.safetensors")
DEFAULT_EXCLUDE = (".venv/**", "**/node_modules/**")
DEFAULT_TIMEOUT = 120.0
FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")  # package.module:callable
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GLOBAL = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: str | None = None  # "package.module:callable"
    build: str | None = None  # Python source that leaves the model in `model`
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    line: int | None = None


@dataclass(frozen=True)
class CheckpointEntry:
    path: str  # relative to the repository root (posix separators), or absolute once `~`/`$VARS` expanded
    model: str | None = None
    key: str | None = None
    sha256: str | None = None
    strict: bool = True
    ignore: tuple[str, ...] = ()
    expect_fails: bool = False
    reason: str | None = None
    line: int | None = None
    load: LoadSteps | None = None  # what the project's loader does before load_state_dict
    written: str | None = None  # the path as the registry writes it, when it had `~` or `$VARS` to expand
    required: bool = False  # the file must be present: its absence fails even where ckaudit.lock has it

    @property
    def as_written(self) -> str:
        """The path as in the registry: what ckaudit.lock and rewritten registries use (machine-free)."""
        return self.written or self.path

    def finding(
        self,
        rule: Rule,
        severity: Severity,
        message: str,
        *,
        location: Location | None = None,
        fix: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> Finding:
        """A finding about this registered checkpoint, naming its path and its model."""
        return Finding(rule, severity, message, self.path, self.model, location, fix, dict(details or {}))


def expand_path(text: str) -> str:
    """`~` and `$VARS` expanded (registry paths may point outside the repository), posix separators."""
    return Path(os.path.expandvars(os.path.expanduser(text))).as_posix()


@dataclass(frozen=True)
class ScanSettings:
    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE


@dataclass(frozen=True)
class Config:
    root: Path
    path: Path | None = None  # None: no ckaudit.yaml, defaults only
    python: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    models: Mapping[str, ModelSpec] = field(default_factory=dict)
    checkpoints: tuple[CheckpointEntry, ...] = ()
    scan: ScanSettings = field(default_factory=ScanSettings)
    trusted_globals: tuple[str, ...] = ()  # "module.qualname" the repository vouches for in its pickles

    def checkpoint(self, path: str) -> CheckpointEntry | None:
        """The entry for `path`, as expanded or as written in the registry."""
        return next((c for c in self.checkpoints if path in (c.path, c.as_written)), None)


def find_config(root: Path) -> Path | None:
    """`ckaudit.yaml` at `root`, if there is one."""
    candidate = root / CONFIG_NAME
    return candidate if candidate.is_file() else None


def load_config(path: Path, root: Path | None = None) -> Config:
    """Read and validate a registry file; `root` defaults to the file's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc}") from None
    return parse_config(text, str(path), root or path.parent)


def parse_config(text: str, source: str, root: Path) -> Config:
    """The registry text as a Config; every error a ConfigError naming `source` and the line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(source, line, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    finally:
        loader.dispose()
    if node is None:
        return Config(root=root, path=Path(source))
    return _Parser(source, loader).config(node, root)


class _Parser(NodeReader):
    """The registry's own fields, read with every error naming its line."""

    def config(self, node: yaml.Node, root: Path) -> Config:
        top = self.mapping(
            node,
            "ckaudit.yaml",
            {"version", "python", "timeout", "models", "checkpoints", "scan", "trusted_globals"},
        )
        if "version" in top and self.value(top["version"], "version", int) != 1:
            raise self.error(top["version"], "version must be 1")
        models = {}
        if "models" in top:
            for name, model_node in self.mapping(top["models"], "models", set()).items():
                models[name] = self.model(name, model_node)
        checkpoints = []
        if "checkpoints" in top:
            if not isinstance(top["checkpoints"], yaml.SequenceNode):
                raise self.error(top["checkpoints"], "checkpoints must be a list")
            checkpoints = [self.checkpoint(item, models) for item in top["checkpoints"].value]
        self.reject_duplicate_paths(top.get("checkpoints"), checkpoints)
        return Config(
            root=root,
            path=Path(self.source),
            python=self.value(top["python"], "python", str) if "python" in top else None,
            timeout=float(self.value(top["timeout"], "timeout", (int, float)))
            if "timeout" in top
            else DEFAULT_TIMEOUT,
            models=models,
            checkpoints=tuple(checkpoints),
            scan=self.scan(top["scan"]) if "scan" in top else ScanSettings(),
            trusted_globals=self.trusted_globals(top["trusted_globals"]) if "trusted_globals" in top else (),
        )

    def trusted_globals(self, node: yaml.Node) -> tuple[str, ...]:
        """Dotted `module.qualname` names; never one ckaudit knows to run code (a registry cannot vouch
        for os.system)."""
        from ckaudit.reader import runs_code  # here: the reader package is slow to import

        names = self.strings(node, "trusted_globals")
        for name in names:
            if not _GLOBAL.match(name):
                raise self.error(node, f"trusted_globals: {name!r} is not a module.qualname name")
            if runs_code(name):
                raise self.error(
                    node, f"trusted_globals: {name!r} runs code or reaches the system; it cannot be trusted"
                )
        return tuple(sorted(set(names)))

    def model(self, name: str, node: yaml.Node) -> ModelSpec:
        what = f"models.{name}"
        fields = self.mapping(node, what, {"factory", "build", "kwargs", "sources"})
        factory = self.value(fields["factory"], f"{what}.factory", str) if "factory" in fields else None
        build = self.value(fields["build"], f"{what}.build", str) if "build" in fields else None
        if (factory is None) == (build is None):
            raise self.error(
                node, f"{what} needs exactly one of factory (module:callable) or build (Python code)"
            )
        if factory is not None and not FACTORY.match(factory):
            raise self.error(
                fields["factory"], f"{what}.factory must look like package.module:callable, got {factory!r}"
            )
        kwargs = self.value(fields["kwargs"], f"{what}.kwargs", dict) if "kwargs" in fields else {}
        sources = self.strings(fields["sources"], f"{what}.sources") if "sources" in fields else ()
        line = node.start_mark.line + 1
        return ModelSpec(name=name, factory=factory, build=build, kwargs=kwargs, sources=sources, line=line)

    def checkpoint(self, node: yaml.Node, models: Mapping[str, ModelSpec]) -> CheckpointEntry:
        allowed = {
            "path",
            "model",
            "key",
            "sha256",
            "strict",
            "ignore",
            "expect",
            "reason",
            "load",
            "required",
        }
        fields = self.mapping(node, "checkpoint", allowed)
        if "path" not in fields:
            raise self.error(node, "checkpoint entry needs a path")
        path = self.value(fields["path"], "checkpoint path", str).strip()
        what = f"checkpoint {path}"
        model = self.value(fields["model"], f"{what}: model", str) if "model" in fields else None
        if model is not None and model not in models:
            known = ", ".join(sorted(models)) or "none defined"
            raise self.error(fields["model"], f"{what}: unknown model {model!r} (models: {known})")
        sha256 = self.value(fields["sha256"], f"{what}: sha256", str).lower() if "sha256" in fields else None
        if sha256 is not None and not _SHA256.match(sha256):
            raise self.error(fields["sha256"], f"{what}: sha256 must be 64 hex digits")
        expect = self.value(fields["expect"], f"{what}: expect", str) if "expect" in fields else None
        if expect not in (None, "fails", "loads"):
            raise self.error(fields["expect"], f"{what}: expect must be 'fails' or 'loads'")
        strict = self.value(fields["strict"], f"{what}: strict", bool) if "strict" in fields else True
        load, load_strict = parse_load(self, fields["load"], what) if "load" in fields else (None, None)
        if load_strict is not None and "strict" in fields and load_strict != strict:
            raise self.error(fields["load"], f"{what}: strict and load.strict disagree")
        written = Path(path).as_posix()
        return CheckpointEntry(
            path=expand_path(written),
            written=written if expand_path(written) != written else None,
            model=model,
            key=self.value(fields["key"], f"{what}: key", str) if "key" in fields else None,
            sha256=sha256,
            strict=strict if load_strict is None else load_strict,
            ignore=self.strings(fields["ignore"], f"{what}: ignore") if "ignore" in fields else (),
            expect_fails=expect == "fails",
            reason=self.value(fields["reason"], f"{what}: reason", str) if "reason" in fields else None,
            line=node.start_mark.line + 1,
            load=load if load is not None and load.as_dict() else None,
            required=self.value(fields["required"], f"{what}: required", bool)
            if "required" in fields
            else False,
        )

    def reject_duplicate_paths(self, node: yaml.Node | None, checkpoints: list[CheckpointEntry]) -> None:
        seen: set[str] = set()
        for entry, item in zip(checkpoints, node.value if node is not None else [], strict=True):
            if entry.path in seen:
                raise self.error(item, f"checkpoint {entry.path} is registered twice")
            seen.add(entry.path)

    def scan(self, node: yaml.Node) -> ScanSettings:
        fields = self.mapping(node, "scan", {"include", "exclude"})
        defaults = ScanSettings()
        return ScanSettings(
            include=self.strings(fields["include"], "scan.include")
            if "include" in fields
            else defaults.include,
            exclude=self.strings(fields["exclude"], "scan.exclude")
            if "exclude" in fields
            else defaults.exclude,
        )
