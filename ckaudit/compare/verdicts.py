"""The comparison engine shared by `hook` and `check`: every registered checkpoint against two versions of
the code (before: HEAD or a base commit; after: the index, a head commit or the working tree).

`Evaluator` answers "does this checkpoint load into this model as defined in this tree?" from the
content-keyed cache when it can, else by materialising the tree once and asking the model worker (started
lazily, one process for every tree). `judge` turns a before/after pair into findings: a checkpoint that
loaded before and fails after blocks; one failing on both sides is a warning (an error with `strict`);
one the change fixes is a note; `expect: fails` turns failures into notes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
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
from ckaudit.findings import CheckpointResult, Finding, Location, Report, Rule, Severity
from ckaudit.model.sources import ModelSources, model_sources
from ckaudit.registry.config import CONFIG_NAME, CheckpointEntry, Config, ModelSpec
from ckaudit.vcs.trees import Tree, materialise

if TYPE_CHECKING:
    from ckaudit.model.worker.client import ModelWorker
    from ckaudit.model.worker.results import ModelBuild
    from ckaudit.reader.types import CheckpointInfo

WAYS_FORWARD = (
    "Ways forward: re-save or convert {path} for the new code; or mark it `expect: fails` with a `reason:` "
    "in ckaudit.yaml if the break is deliberate; or remove it from the registry."
)


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
            self._sources_memo[memo] = model_sources(tree, spec, self.reported_sources(spec))
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


@dataclass(frozen=True)
class Labels:
    before: str  # "HEAD", "base (abc1234)"
    after: str  # "the staged code", "head (def5678)"


def judge(
    entry: CheckpointEntry, before: Outcome | None, after: Outcome, labels: Labels, strict: bool = False
) -> list[Finding]:
    """Findings for one checkpoint from its outcome before and after a change."""
    if after.loads:
        return _loads_after(entry, before, labels)
    errors = [f for f in after.findings if f.severity is Severity.ERROR]
    others = _new_non_errors(before, after)
    if entry.expect_fails:  # modelcheck words these ("expected failure (reason): ..."); they stay notes
        return [dataclasses.replace(f, severity=Severity.NOTE) for f in after.findings]
    if before is None:
        return [
            _restate(f, Severity.ERROR, f"fails with {labels.after}: ", _ways(entry)) for f in errors
        ] + others
    if before.loads:
        prefix = f"loads at {labels.before} but not with {labels.after}: "
        return [_restate(f, Severity.ERROR, prefix, _ways(entry)) for f in errors] + others
    if strict:
        return [_restate(f, Severity.ERROR, f"already fails at {labels.before}: ") for f in errors] + others
    return _already_failing(entry, before, errors, labels) + others


def _already_failing(
    entry: CheckpointEntry, before: Outcome, errors: list[Finding], labels: Labels
) -> list[Finding]:
    """A failure this change did not cause: its new problems as warnings, else one line saying so."""
    known = {(f.rule, f.message) for f in before.findings}
    changed = [f for f in errors if (f.rule, f.message) not in known]
    if changed:
        return [
            _restate(f, Severity.WARNING, f"already fails at {labels.before}, and differently now: ")
            for f in changed
        ]
    first = errors[0] if errors else None
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return [
        Finding(
            first.rule if first else Rule.MISSING_KEYS,
            Severity.WARNING,
            f"already fails at {labels.before}, unchanged by this change: "
            f"{first.message if first else 'does not load'}{more}",
            checkpoint=entry.path,
            model=entry.model,
            location=first.location if first else None,
            fix=f"`ckaudit diagnose {entry.path}` shows every problem and its fix.",
            details={},
        )
    ]


def _loads_after(entry: CheckpointEntry, before: Outcome | None, labels: Labels) -> list[Finding]:
    if entry.expect_fails:
        message = f"{entry.path} is registered `expect: fails` but loads with {labels.after}"
        rule, fix = Rule.STALE_EXPECTATION, "Remove `expect: fails` (and its reason) from its registry entry."
    elif before is not None and not before.loads:
        message = f"{entry.path} fails at {labels.before} and loads with {labels.after}: fixed by this change"
        # the note speaks of the problem that went away, under that problem's rule
        rule = next((f.rule for f in before.findings if f.severity is Severity.ERROR), Rule.MISSING_KEYS)
        fix = ""
    else:
        return []
    return [
        Finding(
            rule,
            Severity.NOTE,
            message,
            checkpoint=entry.path,
            model=entry.model,
            fix=fix,
            details={"transition": "fixed"},
        )
    ]


def _new_non_errors(before: Outcome | None, after: Outcome) -> list[Finding]:
    seen = {(f.rule, f.message) for f in before.findings} if before else set()
    return [f for f in after.findings if f.severity is not Severity.ERROR and (f.rule, f.message) not in seen]


def _ways(entry: CheckpointEntry) -> str:
    return WAYS_FORWARD.format(path=entry.path)


def _restate(finding: Finding, severity: Severity, prefix: str, extra_fix: str = "") -> Finding:
    if extra_fix and "expect: fails" in finding.fix:  # the model side already named the other ways
        extra_fix = "If the checkpoint is obsolete, remove it from the registry."
    fix = " ".join(part for part in (finding.fix, extra_fix) if part)
    return dataclasses.replace(finding, severity=severity, message=prefix + finding.message, fix=fix)


def relevant_models(
    config: Config, before: Tree | None, after: Tree, evaluator: Evaluator
) -> list[ModelSpec]:
    """Models whose definition differs between the trees (all of them when the registry itself changed, or
    when there is no "before"). A path counts when its blob id differs, including appearing or vanishing."""
    if before is None or before.oid(CONFIG_NAME) != after.oid(CONFIG_NAME):
        return list(config.models.values())
    return [spec for spec in config.models.values() if _changed(spec, before, after, evaluator)]


def _changed(spec: ModelSpec, before: Tree, after: Tree, evaluator: Evaluator) -> bool:
    """If every path the "before" closure read or looked for is the same after, the "after" closure is the
    same walk over the same bytes: no need to compute it (only `sources:` globs can see new files)."""
    paths = set(evaluator.sources(before, spec).candidates)
    if spec.sources:
        paths |= evaluator.sources(after, spec).candidates
    return any(before.oid(p) != after.oid(p) for p in sorted(paths))


def compare(
    config: Config,
    before: Tree | None,
    after: Tree,
    models: Sequence[ModelSpec],
    evaluator: Evaluator,
    labels: Labels,
    command: str,
    strict: bool = False,
) -> Report:
    """Every registered checkpoint of `models`, judged before/after (checkpoint files: the working tree)."""
    results = []
    for spec in models:
        for entry in (e for e in config.checkpoints if e.model == spec.name):
            results.append(_compare_one(config, spec, entry, before, after, evaluator, labels, strict))
    return Report(root=str(config.root), command=command, checkpoints=tuple(results))


def _compare_one(
    config: Config,
    spec: ModelSpec,
    entry: CheckpointEntry,
    before: Tree | None,
    after: Tree,
    evaluator: Evaluator,
    labels: Labels,
    strict: bool,
) -> CheckpointResult:
    info = load_info(config.root, entry)
    if isinstance(info, Finding):
        return CheckpointResult(entry.path, spec.name, None, None, None, (info,))
    old = evaluator.outcome(before, spec, entry, info) if before is not None else None
    new = evaluator.outcome(after, spec, entry, info)
    findings = judge(entry, old, new, labels, strict)
    return CheckpointResult(entry.path, spec.name, info.format, len(info.tensors), info.size, tuple(findings))
