"""Does this checkpoint load into this model as the code stands under `root`, and if not, why not?

The verdict is torch's own: the model's real `load_state_dict` on meta tensors, in the worker. Every
explanation that replaces raw key lists (another container key, a prefix, a rename map) is proposed from the
key lists and then verified by one more dry run, so a fix ckaudit proposes is a fix torch accepts.

Which container is "used": `key:` of the registry entry, else the top level of the file, which is what
`model.load_state_dict(torch.load(path))` loads: a training file without `key:` is `wrong-container-key`.
Pickled user classes the code no longer has (`missing-class`) make a full `torch.load` fail, so they turn
`loads` to False too. `expect: fails` is not applied here: `ckaudit.scan.policy` does it, once, for every
command.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from ckaudit.compat import advice
from ckaudit.compat import diagnosis as compat
from ckaudit.compat.asloaded import as_loaded, noting_load_steps, prefix_metadata, rekey, rename_metadata
from ckaudit.compat.devices import device_error, missing_device
from ckaudit.compat.diagnosis import Context, Problems, problems_of
from ckaudit.compat.drift import config_drift, explained_by
from ckaudit.compat.keyfix import explains_most, find_prefix, module_renames, rename_key
from ckaudit.compat.loadadvice import combined, steps_for, verified, with_snippet
from ckaudit.compat.renames import Ambiguity, propose_renames
from ckaudit.errors import CkauditError
from ckaudit.findings import Finding, Rule, Severity
from ckaudit.reader import CheckpointInfo, StateDictCandidate, runs_code
from ckaudit.registry import FACTORY, CheckpointEntry, Config, LoadSteps, ModelSpec
from ckaudit.worker import ModelBuild, ModelError, ModelWorker

# Globals torch, the standard containers and numpy provide; everything else is user code worth resolving.
# Findings about the state dict's keys: what the `load:` steps change, so these say they were applied.
_KEY_RULES = (
    Rule.MISSING_KEYS,
    Rule.UNEXPECTED_KEYS,
    Rule.SHAPE_MISMATCH,
    Rule.KEY_PREFIX,
    Rule.WRONG_CONTAINER_KEY,
    Rule.RENAMED_KEYS,
    Rule.DTYPE_CHANGE,
)
_PROVIDED = ("torch.", "builtins.", "collections.", "numpy.", "_codecs.", "copyreg.", "__builtin__.")


@dataclass(frozen=True)
class CompatResult:
    loads: bool  # as torch would say, honouring strict and the registry's ignore globs
    findings: tuple[Finding, ...]
    sources: tuple[str, ...]  # repository files imported while building (relative to the root)
    build: ModelBuild


def spec_from_cli(model: str, kwargs_json: str | None, config: Config) -> ModelSpec:
    """`--model NAME` from the registry or `--model package.module:callable`, with `--kwargs JSON`."""
    kwargs = _parse_kwargs(kwargs_json)
    if model in config.models:
        spec = config.models[model]
        return spec if kwargs is None else replace(spec, kwargs=kwargs)
    if not FACTORY.match(model):
        known = ", ".join(sorted(config.models)) or "none registered"
        raise CkauditError(
            f"--model {model!r} is neither a registered model ({known}) nor package.module:callable"
        )
    return ModelSpec(name=model, factory=model, kwargs=kwargs or {})


def spec_from_build(code: str) -> ModelSpec:
    """`--build CODE`, or `--build @file.py`: Python that leaves the model in `model` (as `build:`)."""
    if code.startswith("@"):
        try:
            code = Path(code[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CkauditError(f"--build {code}: cannot read: {exc}") from None
    if "model" not in code:
        raise CkauditError("--build: the code must leave the model in a variable named `model`")
    return ModelSpec(name="(--build)", build=code)


def _parse_kwargs(text: str | None) -> dict[str, object] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CkauditError(f"--kwargs is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CkauditError(f"--kwargs must be a JSON object, got {type(value).__name__}")
    return value


def check_compat(
    entry: CheckpointEntry, spec: ModelSpec, info: CheckpointInfo, root: Path, worker: ModelWorker
) -> CompatResult:
    """One checkpoint against one model: the registered loader steps first (`load:`), then a dry run on meta
    and what explains its failures (container key, prefix, renames, unimportable classes, config drift).
    The model's and the checkpoint's faults become findings."""
    loader_sources: tuple[str, ...] = ()
    if entry.load is not None:
        loaded = as_loaded(info, entry.load, entry.key or "", root, worker)
        if loaded.error is not None:
            return _loader_failed(entry, spec, loaded.error, loaded.sources)
        info, loader_sources = loaded.info, loaded.sources
    check = _Check(entry, spec, info, root, worker)
    result = check.run()
    missing = check.missing_classes(result.build)
    if missing:
        result = replace(result, loads=False, findings=result.findings + tuple(missing))
    result = _with_drift(entry, spec, info, result)
    if entry.load is not None:
        steps = entry.load
        said = tuple(noting_load_steps(f, steps) if f.rule in _KEY_RULES else f for f in result.findings)
        sources = tuple(sorted({*result.sources, *loader_sources}))
        result = replace(result, findings=said, sources=sources)
    return result


def _build_failed(ctx: Context, build: ModelBuild, factory: str) -> Finding:
    """model-error, or `device` (environment) when the constructor needs a device this machine lacks."""
    device = missing_device(build)
    return device_error(ctx, build, factory, device) if device else compat.model_error(ctx, build, factory)


def _with_drift(
    entry: CheckpointEntry, spec: ModelSpec, info: CheckpointInfo, result: CompatResult
) -> CompatResult:
    """config-drift first when the checkpoint's saved hyperparameters differ from the build."""
    if not result.build.ok or not info.hyperparameters:
        return result
    ctx = Context(entry.path, spec.name, result.build)
    drift = config_drift(ctx, spec, info.hyperparameters, result.loads)
    if drift is None:
        return result
    if result.loads:
        return replace(result, findings=(*result.findings, drift))
    return replace(result, findings=(drift, *explained_by(result.findings, drift)))


def _loader_failed(
    entry: CheckpointEntry, spec: ModelSpec, error: ModelError, sources: tuple[str, ...]
) -> CompatResult:
    """The project's own loader function raised on the checkpoint: a model-error at its failing line."""
    build = ModelBuild(ok=False, error=error)
    loader = entry.load.loader if entry.load else None
    where = f" (it fails at {error.location.path}:{error.location.line})" if error.location else ""
    finding = compat.model_error(Context(entry.path, spec.name, build), build, f"the loader {loader}")
    finding = replace(
        finding,
        message=f"the loader {loader} failed on this checkpoint: {error.message}",
        fix=f"Make `{loader}` importable from the repository root and callable on a state dict{where}, "
        "or correct `load.loader` of this checkpoint in ckaudit.yaml.",
    )
    return CompatResult(False, (finding,), sources, build)


class _Check:
    """One checkpoint against one model: the first dry run, then the verified explanations."""

    def __init__(
        self, entry: CheckpointEntry, spec: ModelSpec, info: CheckpointInfo, root: Path, worker: ModelWorker
    ) -> None:
        self.entry, self.spec, self.info, self.root, self.worker = entry, spec, info, root, worker
        self.used = entry.key or ""

    def context(self, build: ModelBuild) -> Context:
        return Context(self.entry.path, self.spec.name, build)

    def dry_run(self, candidate: StateDictCandidate) -> tuple[Problems, ModelBuild]:
        outcome = self.worker.dry_run(self.spec, self.root, candidate, strict=self.entry.strict)
        return problems_of(outcome, self.entry.ignore), outcome.build

    def run(self) -> CompatResult:
        candidate = next((c for c in self.info.candidates if c.key == self.used), None)
        if candidate is None:
            return self.container_missing()
        problems, build = self.dry_run(candidate)
        ctx = self.context(build)
        if not build.ok:
            return CompatResult(False, (_build_failed(ctx, build, self.factory),), build.sources, build)
        if not problems.fails(self.entry.strict):
            findings = self.loading_findings(ctx, candidate, problems)
            return CompatResult(True, tuple(findings), build.sources, build)
        moved = self.other_container(ctx, candidate, problems)
        findings = moved if moved is not None else self.explain_keys(ctx, candidate, problems)
        return CompatResult(False, tuple(findings), build.sources, build)

    @property
    def factory(self) -> str:
        return self.spec.factory or f"the build code of model {self.spec.name}"

    def loading_findings(
        self, ctx: Context, candidate: StateDictCandidate, problems: Problems
    ) -> list[Finding]:
        """It loads; say so quietly, unless strict=False hides that (nearly) nothing matched."""
        findings = compat.dtype_changes(ctx, candidate.tensors, ctx.build)
        fix = find_prefix(problems.missing, problems.unexpected)
        if fix is not None and explains_most(fix, problems.missing, problems.unexpected):
            findings.insert(0, compat.key_prefix(ctx, fix, Severity.WARNING))
        return findings

    def other_container(
        self, ctx: Context, candidate: StateDictCandidate, problems: Problems
    ) -> list[Finding] | None:
        """When another state dict in the file fits the model better, that is the finding."""
        model_keys = ctx.build.state_keys()
        others = [c for c in self.info.candidates if c.key != candidate.key]
        best = max(others, key=lambda c: _matched(c, model_keys), default=None)
        if best is None or _matched(best, model_keys) <= _matched(candidate, model_keys):
            return None
        better, _ = self.dry_run(best)
        if better.count >= problems.count:
            return None
        return self.moved_to(ctx, best, better)

    def container_missing(self) -> CompatResult:
        build = self.worker.build(self.spec, self.root)
        ctx = self.context(build)
        if not build.ok:
            return CompatResult(False, (_build_failed(ctx, build, self.factory),), build.sources, build)
        model_keys = build.state_keys()
        # an empty mapping (an optimizer's `state: {}`) is a place to look only for a model without state
        usable = [c for c in self.info.candidates if c.tensors or not model_keys]
        best = max(usable, key=lambda c: _matched(c, model_keys), default=None)
        if best is None:
            return CompatResult(False, (compat.no_state_dict(ctx, self.used),), build.sources, build)
        problems, _ = self.dry_run(best)
        return CompatResult(False, tuple(self.moved_to(ctx, best, problems)), build.sources, build)

    def moved_to(self, ctx: Context, found: StateDictCandidate, problems: Problems) -> list[Finding]:
        known = [c.key for c in self.info.candidates if c.tensors or c is found]  # empty ones: noise
        loads = not problems.fails(self.entry.strict)
        first = compat.wrong_container(ctx, self.used, found.key, known, loads)
        rest = (
            self.loading_findings(ctx, found, problems) if loads else self.explain_keys(ctx, found, problems)
        )
        return [first, *rest]

    def explain_keys(self, ctx: Context, candidate: StateDictCandidate, problems: Problems) -> list[Finding]:
        """A prefix, then a rename map, each kept only if a dry run confirms it; then what is left."""
        findings: list[Finding] = []
        original = candidate
        prefix = find_prefix(problems.missing, problems.unexpected)
        if prefix is not None and explains_most(prefix, problems.missing, problems.unexpected):
            moved = rekey(candidate, prefix.apply, prefix_metadata(prefix))
            after, _ = self.dry_run(moved)
            moved_keys = {prefix.apply(k) for k in problems.unexpected}
            if _verified(problems, after, moved_keys & set(problems.missing), moved_keys):
                severity = Severity.ERROR if problems.fails(self.entry.strict) else Severity.WARNING
                findings.append(compat.key_prefix(ctx, prefix, severity))
                candidate, problems = moved, after
            else:
                prefix = None
        else:
            prefix = None
        renamed = self.rename(ctx, candidate, problems)
        named: dict[str, str] = {k: k for k in original.tensors}
        moves: dict[str, str] = {}
        if renamed is not None:
            finding, candidate, problems, moves = renamed
            findings.append(finding)
            named = {rename_key(moves, k): k for k in original.tensors}
        universe = [*ctx.build.state_keys(), *original.tensors]
        shapes = {k: t.shape for k, t in candidate.tensors.items()}
        findings.extend(advice.key_findings(ctx, problems, self.entry.strict, universe, named, shapes))
        findings.extend(compat.dtype_changes(ctx, candidate.tensors, ctx.build))
        return self.in_registry_words(findings, original, problems, steps_for(prefix, moves))

    def in_registry_words(
        self, findings: list[Finding], original: StateDictCandidate, left: Problems, new: LoadSteps | None
    ) -> list[Finding]:
        """The verified prefix/rename as the entry's `load:` steps, when a dry run of them agrees."""
        steps = combined(self.entry.load, new) if new is not None else None
        if new is None or steps is None or not verified(new, original, left, lambda c: self.dry_run(c)[0]):
            return findings
        return with_snippet(findings, steps)

    def rename(
        self, ctx: Context, candidate: StateDictCandidate, problems: Problems
    ) -> tuple[Finding, StateDictCandidate, Problems, dict[str, str]] | None:
        """The rename map the names decide, verified by a dry run; ambiguous pairs are reported, not used."""
        model_shapes = {k: s.shape for k, s in ctx.build.signature.items()}
        checkpoint_shapes = {k: t.shape for k, t in candidate.tensors.items()}
        resized = [key for key, _, _ in problems.size_mismatch]
        proposal = propose_renames(
            problems.missing, problems.unexpected, model_shapes, checkpoint_shapes, resized
        )
        if proposal is None:
            return None
        renames, moves = dict(proposal.renames), {}
        for _ in range(2):  # a pair the dry run rejects is dropped, and the rest tried once more
            if not renames:
                break
            moves = _module_moves(renames, candidate.tensors)
            moved = rekey(candidate, partial(rename_key, moves), rename_metadata(renames, moves))
            after, _ = self.dry_run(moved)
            rejected = _rejected(after, renames)
            moved_keys = {rename_key(moves, k) for k in problems.unexpected}
            if not rejected and _verified(problems, after, set(renames.values()), moved_keys):
                unsure = _still_open(proposal.ambiguous, after)
                finding = advice.renamed_keys(ctx, renames, moves, unsure, candidate.tensors)
                return finding, moved, _without(after, unsure), moves
            renames = {old: new for old, new in renames.items() if old not in rejected}
        if proposal.ambiguous:
            finding = advice.renamed_keys(ctx, {}, {}, proposal.ambiguous, candidate.tensors)
            return finding, candidate, _without(problems, proposal.ambiguous), {}
        return None

    def missing_classes(self, build: ModelBuild) -> list[Finding]:
        # never import what an untrusted pickle names when the name is known to run code (import-time side
        # effects included: antigravity, idlelib, any __main__): those are unsafe-pickle already
        names = [g for g in self.info.globals if not g.startswith(_PROVIDED) and not runs_code(g)]
        if not names or not build.ok:
            return []
        unresolved = self.worker.resolve_globals(self.root, names)
        return compat.missing_classes(self.context(build), unresolved)


def _verified(before: Problems, after: Problems, fixed: set[str], moved: set[str]) -> bool:
    """The step paired the keys it claims (`fixed`: no longer missing or unexpected; they may still be
    resized) and broke nothing: every problem left was there before, under its old name or, for a key the
    step renamed, under its new one (`moved`)."""
    left = {*after.missing, *after.unexpected, *(k for k, _, _ in after.size_mismatch)}
    known = {*before.missing, *before.unexpected, *(k for k, _, _ in before.size_mismatch), *moved}
    return (
        after.count < before.count
        and not {*after.missing, *after.unexpected} & fixed
        and left <= known
        and len(after.other_errors) <= len(before.other_errors)
    )


def _rejected(after: Problems, renames: Mapping[str, str]) -> set[str]:
    """Renamed checkpoint keys whose new name the dry run still objects to."""
    bad = {*after.unexpected, *(k for k, _, _ in after.size_mismatch)}
    return {old for old, new in renames.items() if new in bad}


def _still_open(groups: tuple[Ambiguity, ...], after: Problems) -> tuple[Ambiguity, ...]:
    return tuple(
        g for g in groups if set(g.checkpoint) & set(after.unexpected) or set(g.model) & set(after.missing)
    )


def _without(problems: Problems, groups: Iterable[Ambiguity]) -> Problems:
    """Keys an ambiguous rename finding already names are not listed again as plain missing/unexpected."""
    named = {k for g in groups for k in (*g.checkpoint, *g.model)}
    return replace(
        problems,
        missing=tuple(k for k in problems.missing if k not in named),
        unexpected=tuple(k for k in problems.unexpected if k not in named),
    )


def _matched(candidate: StateDictCandidate, model_keys: list[str]) -> int:
    """How many model keys a candidate provides, directly or behind one consistent prefix."""
    keys = set(candidate.tensors)
    direct = len(keys.intersection(model_keys))
    missing = [k for k in model_keys if k not in keys]
    fix = find_prefix(missing, [k for k in candidate.tensors if k not in set(model_keys)])
    return direct + (fix.count if fix is not None else 0)


def _module_moves(renames: Mapping[str, str], keys: Iterable[str]) -> dict[str, str]:
    """The highest module moves for `renames`; the per-key map itself if they would rename any key of the
    checkpoint otherwise than `renames` does."""
    moves = module_renames(renames, keys)
    if any(rename_key(moves, key) != renames.get(key, key) for key in [*renames, *keys]):
        return dict(renames)
    return moves
