"""The one place a checkpoint is dry-run against a model as defined in some tree.

`Evaluator` answers "does this checkpoint load into this model as defined in this tree?" from the
content-keyed cache when it can, else by materialising the tree once and asking the model worker (started
lazily, one process for every tree). The verdict logic that compares two such outcomes lives in
`ckaudit.compare.verdicts`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ckaudit.cache.outcomes import (
    SigCache,
    checkpoint_signature,
    finding_from_dict,
    finding_to_dict,
    make_key,
)
from ckaudit.findings import Finding, Location, Rule, Severity
from ckaudit.model.sources import ModelSources, model_sources
from ckaudit.registry.config import CheckpointEntry, Config, ModelSpec
from ckaudit.vcs.trees import Tree, materialise

if TYPE_CHECKING:
    from ckaudit.model.worker.client import ModelWorker
    from ckaudit.model.worker.results import ModelBuild
    from ckaudit.reader.types import CheckpointInfo


@dataclass(frozen=True)
class Outcome:
    """One checkpoint against one version of the model."""

    loads: bool
    built: bool
    findings: tuple[Finding, ...]
    sources: Mapping[str, str | None]  # files the build imported -> blob id in that tree
    signature: Any = None  # the model's state-dict signature as the worker reported it
    cached: bool = False


def spec_key(spec: ModelSpec) -> dict[str, Any]:
    return {
        "factory": spec.factory,
        "build": spec.build,
        "kwargs": dict(spec.kwargs),
        "sources": list(spec.sources),
    }


def entry_key(entry: CheckpointEntry) -> dict[str, Any]:
    return {
        "path": entry.path,
        "key": entry.key,
        "strict": entry.strict,
        "ignore": list(entry.ignore),
        "expect_fails": entry.expect_fails,
        "reason": entry.reason,
        "load": entry.load.as_dict() if entry.load else None,
    }


def load_info(root: Path, entry: CheckpointEntry) -> CheckpointInfo | Finding:
    """The checkpoint's metadata from the working tree, or why it cannot be read (a warning here: the file
    is not what the code change is judged on; `ckaudit scan` and the `ckaudit-files` hook own it)."""
    from ckaudit.files.content import read

    if not (root / entry.path).exists():
        return Finding(
            Rule.FILE_MISSING,
            Severity.WARNING,
            f"{entry.path} does not exist here",
            checkpoint=entry.path,
            model=entry.model,
            location=Location(entry.path),
        )
    found = read(root, entry.path, model=entry.model)
    return dataclasses.replace(found, severity=Severity.WARNING) if isinstance(found, Finding) else found


class Evaluator:
    """Cached dry runs of checkpoints against models in many trees, through one lazily started worker."""

    def __init__(self, config: Config, cache: SigCache, python: str | None = None) -> None:
        self.config = config
        self.cache = cache
        self._python = python
        self._stack = ExitStack()
        self._roots: dict[int, Path] = {}
        self._worker: ModelWorker | None = None
        self._sources_memo: dict[tuple[int, str], ModelSources] = {}
        self._memo: dict[str, Outcome] = {}

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def python(self) -> str:
        if self._python is None:
            from ckaudit.registry.interpreter import resolve_python

            self._python = resolve_python(self.config)
        return self._python

    def worker(self) -> ModelWorker:
        if self._worker is None:
            from ckaudit.model.worker.client import ModelWorker

            self._worker = self._stack.enter_context(ModelWorker(self.python, timeout=self.config.timeout))
        return self._worker

    def root(self, tree: Tree) -> Path:
        if id(tree) not in self._roots:
            self._roots[id(tree)] = self._stack.enter_context(materialise(tree))
        return self._roots[id(tree)]

    def sources(self, tree: Tree, spec: ModelSpec) -> ModelSources:
        memo = (id(tree), spec.name)
        if memo not in self._sources_memo:
            loaders = [
                e.load.loader
                for e in self.config.checkpoints
                if e.model == spec.name and e.load and e.load.loader
            ]
            self._sources_memo[memo] = model_sources(tree, spec, self.reported_sources(spec), loaders)
        return self._sources_memo[memo]

    def reported_sources(self, spec: ModelSpec) -> list[str]:
        record = self.cache.get("sources", make_key(spec_key(spec)))
        return list(record.get("sources", [])) if record else []

    def outcome_key(self, tree: Tree, spec: ModelSpec, entry: CheckpointEntry, info: CheckpointInfo) -> str:
        from ckaudit.cache.outcomes import torch_version

        files = self.sources(tree, spec).files
        return make_key(
            {
                "spec": spec_key(spec),
                "entry": entry_key(entry),
                "python": self.python,
                "torch": torch_version(self.python),
                "checkpoint": checkpoint_signature(info),
                "files": sorted((p, tree.oid(p)) for p in files),
            }
        )

    def outcome(self, tree: Tree, spec: ModelSpec, entry: CheckpointEntry, info: CheckpointInfo) -> Outcome:
        key = self.outcome_key(tree, spec, entry, info)
        cached = self._memo.get(key) if self._valid(self._memo.get(key), tree) else None
        cached = cached or self._from_cache(key, tree)
        if cached is not None:
            return cached
        from ckaudit.model.check import check_compat

        result = check_compat(entry, spec, info, self.root(tree), self.worker())
        outcome = Outcome(
            loads=result.loads,
            built=result.build.ok,
            findings=tuple(relocate(f, self.root(tree)) for f in result.findings),
            sources={p: tree.oid(p) for p in sorted(result.sources)},
            signature=signature_json(result.build),
        )
        self._store(key, spec, outcome)
        self._memo[key] = outcome
        return outcome

    @staticmethod
    def _valid(outcome: Outcome | None, tree: Tree) -> bool:
        return outcome is not None and all(tree.oid(p) == oid for p, oid in outcome.sources.items())

    def _from_cache(self, key: str, tree: Tree) -> Outcome | None:
        value = self.cache.get("outcome", key)
        if value is None:
            return None
        try:
            outcome = Outcome(
                loads=bool(value["loads"]),
                built=bool(value["built"]),
                findings=tuple(finding_from_dict(f) for f in value["findings"]),
                sources=dict(value["sources"]),
                signature=value.get("signature"),
                cached=True,
            )
        except (KeyError, TypeError, ValueError):
            return None
        # a file the worker imported beyond the static closure may have changed
        return outcome if self._valid(outcome, tree) else None

    def _store(self, key: str, spec: ModelSpec, outcome: Outcome) -> None:
        self.cache.put(
            "outcome",
            key,
            {
                "loads": outcome.loads,
                "built": outcome.built,
                "sources": dict(outcome.sources),
                "findings": [finding_to_dict(f) for f in outcome.findings],
                "signature": outcome.signature,
            },
        )
        if outcome.built and outcome.sources:
            merged = sorted(set(self.reported_sources(spec)) | set(outcome.sources))
            self.cache.put("sources", make_key(spec_key(spec)), {"model": spec.name, "sources": merged})


def signature_json(build: ModelBuild) -> dict[str, Any] | None:
    """The worker's state-dict signature as plain JSON: key -> [shape, dtype, persistent]."""
    if not build.signature:
        return None
    return {k: [list(v.shape), v.dtype, v.persistent] for k, v in build.signature.items()}


def relocate(finding: Finding, root: Path) -> Finding:
    """Locations inside a materialised snapshot become repository paths."""
    loc = finding.location
    if loc is None or not Path(loc.path).is_absolute():
        return finding
    try:
        rel = Path(loc.path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return finding
    return dataclasses.replace(finding, location=dataclasses.replace(loc, path=rel))
