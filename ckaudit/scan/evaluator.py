"""The one place a checkpoint is dry-run against a model as defined in some tree.

`Evaluator` answers "does this checkpoint load into this model as defined in this tree?" from the
content-keyed cache when it can, else by materialising the tree once and asking the model worker (started
lazily, one process for every tree). The verdict logic that compares two such outcomes lives in
`ckaudit.scan.verdicts`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Hashable, Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ckaudit.cache import JsonStore, checkpoint_signature, code_fingerprint, make_key
from ckaudit.compat import Changes, changes, installed_versions
from ckaudit.errors import WorkerDied
from ckaudit.finding_codec import finding_dict, finding_from_dict
from ckaudit.findings import Finding
from ckaudit.registry import CheckpointEntry, Config, ModelSpec
from ckaudit.vcs import Tree, materialise
from ckaudit.walk import name_of, walk_files
from ckaudit.worker import ModelSources, model_sources

if TYPE_CHECKING:
    from ckaudit.reader import CheckpointInfo
    from ckaudit.registry import Signature
    from ckaudit.worker import Incident, Interpreter, ModelBuild, ModelWorker


@dataclass(frozen=True)
class Outcome:
    """One checkpoint against one version of the model."""

    loads: bool
    built: bool
    findings: tuple[Finding, ...]
    sources: Mapping[str, str | None]  # files the build imported -> blob id in that tree
    signature: Any = None  # the model's state-dict signature as the worker reported it
    distributions: Mapping[str, str] = field(default_factory=dict)  # installed packages the build used
    environment: Changes = field(default_factory=dict)  # ckaudit.lock's packages installed in other versions
    cached: bool = False
    complete: bool = True  # every worker request was answered (no timeout): only then is it cached


def spec_key(spec: ModelSpec) -> dict[str, Any]:
    """What of a model spec an outcome depends on (not its name: renaming a model keeps its cache)."""
    return {
        "factory": spec.factory,
        "build": spec.build,
        "kwargs": dict(spec.kwargs),
        "sources": list(spec.sources),
    }


def entry_key(entry: CheckpointEntry) -> dict[str, Any]:
    """What of a registry entry an outcome depends on (its line number and sha256 do not change a dry run)."""
    return {
        "path": entry.path,
        "key": entry.key,
        "strict": entry.strict,
        "ignore": list(entry.ignore),
        "expect_fails": entry.expect_fails,
        "reason": entry.reason,
        "load": entry.load.as_dict() if entry.load else None,
    }


class Evaluator:
    """Cached dry runs of checkpoints against models in many trees, through one lazily started worker."""

    def __init__(self, config: Config, cache: JsonStore, python: str | None = None) -> None:
        self.config = config
        self.cache = cache
        self._python = python
        self._interpreter: Interpreter | None = None
        self._stack = ExitStack()
        self._roots: dict[Hashable, Path] = {}
        self._held: dict[int, Tree] = {}  # trees known by id, kept alive: no other tree gets their id
        self._worker: ModelWorker | None = None
        self._sources_memo: dict[tuple[Hashable, str], ModelSources] = {}
        self._memo: dict[str, Outcome] = {}
        self._here: Tree | None = None
        self._lock: dict[str, Signature] | None = None
        self._checkouts = threading.Lock()  # blame's prefetch thread materialises trees ahead (`prepare`)
        self._prepared: set[str] = set()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def interpreter(self) -> Interpreter:
        """The project's interpreter (found once; an explicit `python` is probed as given)."""
        if self._interpreter is None:
            from ckaudit.worker import Interpreter, find_interpreter, probe

            if self._python is None:
                self._interpreter = find_interpreter(self.config)
            else:
                found = probe(self._python, self.config.root)
                self._interpreter = found or Interpreter(self._python, "unknown", "", ())
        return self._interpreter

    @property
    def python(self) -> str:
        """The path of the project's interpreter (found on first use)."""
        return self.interpreter.path

    def worker(self) -> ModelWorker:
        """The one worker of this evaluator, started on first use (a run that hits only the cache starts none)
        and closed with the evaluator."""
        if self._worker is None:
            from ckaudit.worker import ModelWorker

            worker = ModelWorker(
                self.python, timeout=self.config.timeout, origin=self.config.root, warm=self.interpreter.paths
            )
            self._worker = self._stack.enter_context(worker)
        return self._worker

    def start_worker(self) -> None:
        """Start the worker ahead of the first build, so that torch's import overlaps the caller's reading
        of trees and checkpoints; a failure to start is left to the build that needs the worker to report."""
        with suppress(Exception):
            self.worker()

    def here(self) -> Tree:
        """The working tree under the registry's root, read in place (in git or not)."""
        if self._here is None:
            from ckaudit.errors import GitError
            from ckaudit.vcs import WorkTree, work_tree

            try:
                self._here = work_tree(self.config.root)
            except GitError:  # not a git work tree: its source files, found by walking it
                self._here = WorkTree(self.config.root, _source_files(self.config.root))
        return self._here

    def identity(self, tree: Tree) -> Hashable:
        """What a tree's memos are keyed by: a commit's tree by the commit (blame's walk creates and drops one
        per commit, and a dropped tree's id can be the next one's: seen on nanochat's history, where it
        would have handed a commit another commit's closure), the index and the working tree by the object,
        kept alive for as long as the evaluator."""
        if tree.commit is not None:
            return ("commit", str(tree.repo), tree.commit)
        self._held.setdefault(id(tree), tree)
        return ("object", id(tree))

    def checkout(self, tree: Tree) -> Path:
        """A directory holding `tree`'s files, made once per tree for the evaluator's life (the working tree
        is used in place)."""
        key = self.identity(tree)
        with self._checkouts:
            if key not in self._roots:
                self._roots[key] = self._stack.enter_context(materialise(tree))
            return self._roots[key]

    def sources(self, tree: Tree, spec: ModelSpec) -> ModelSources:
        """The files of `spec`'s model in `tree`: the registry's sources, what earlier builds reported
        importing, and the registered loaders' modules; memoised per tree and model."""
        memo = (self.identity(tree), spec.name)
        if memo not in self._sources_memo:
            self._sources_memo[memo] = self._model_sources(tree, spec)
        return self._sources_memo[memo]

    def _model_sources(self, tree: Tree, spec: ModelSpec) -> ModelSources:
        checkpoints = self.config.checkpoints
        loaders = [e.load.loader for e in checkpoints if e.model == spec.name and e.load and e.load.loader]
        return model_sources(tree, spec, self.reported_sources(spec), loaders)

    def reported_sources(self, spec: ModelSpec) -> list[str]:
        """The files earlier builds of `spec` imported (kept in the cache), so that the outcome key covers
        files no static reading finds."""
        record = self.cache.get("sources", make_key(spec_key(spec)))
        return list(record.get("sources", [])) if record else []

    def outcome_key(self, tree: Tree, spec: ModelSpec, entry: CheckpointEntry, info: CheckpointInfo) -> str:
        """Everything an outcome depends on that is known before building: the installed distributions the
        build uses are only known after it, so they are checked when a cached outcome is read."""
        return self._key(tree, spec, entry, info, self.sources(tree, spec).files)

    def _key(
        self, tree: Tree, spec: ModelSpec, entry: CheckpointEntry, info: CheckpointInfo, files: frozenset[str]
    ) -> str:
        return make_key(
            {
                "spec": spec_key(spec),
                "entry": entry_key(entry),
                "python": self.python,
                "torch": self.interpreter.torch,
                "checkpoint": checkpoint_signature(info),
                "files": sorted((p, tree.oid(p)) for p in files),
                "ckaudit": code_fingerprint(),
            }
        )

    def prepare(self, tree: Tree, spec: ModelSpec, entry: CheckpointEntry, info: CheckpointInfo) -> None:
        """Ahead of `outcome`, from blame's prefetch thread: materialise the tree when, as far as the files
        builds reported so far tell, no outcome of it is known (this run's memo, the cache), so that writing
        it overlaps the worker's build of an earlier commit. Nothing is memoised: `outcome` computes its key
        itself, in order; a wrong guess only costs a directory made for nothing, or made later."""
        key = self._key(tree, spec, entry, info, self._model_sources(tree, spec).files)
        if key in self._memo or key in self._prepared or self.cache.get("outcome", key) is not None:
            return
        self._prepared.add(key)
        self.checkout(tree)

    def outcome(self, tree: Tree, spec: ModelSpec, entry: CheckpointEntry, info: CheckpointInfo) -> Outcome:
        """The outcome, from this run's memo or the cache when still valid, else from the worker. Only a
        complete outcome is stored: one where every request was answered (a timeout is a `model-error`
        finding but is not cached; a dead worker raises `WorkerDied`, exit 3, and nothing is stored)."""
        key = self.outcome_key(tree, spec, entry, info)
        memo = self._memo.get(key)
        if memo is not None and self._valid(memo, tree):
            return memo
        outcome = self._from_cache(key, tree)
        if outcome is None:
            outcome = self._evaluate(tree, spec, entry, info)
            if outcome.complete:
                self._store(key, spec, outcome)
        outcome = self._with_environment(entry, outcome)
        self._memo[key] = outcome
        return outcome

    def _with_environment(self, entry: CheckpointEntry, outcome: Outcome) -> Outcome:
        """A failing build's `environment`: the packages recorded in ckaudit.lock when the checkpoint was
        registered and loaded, whose installed version is another one now — committed data and the
        interpreter's dist-info, never the cache's history, so a cached and an uncached run agree."""
        changed: Changes = {}
        if outcome.built and not outcome.loads:
            recorded = self.recorded_packages(entry)
            if recorded:
                changed = changes(recorded, installed_versions(self.interpreter.paths, recorded))
        return (
            outcome if changed == outcome.environment else dataclasses.replace(outcome, environment=changed)
        )

    def recorded_packages(self, entry: CheckpointEntry) -> Mapping[str, str]:
        """The distributions and versions ckaudit.lock recorded when the checkpoint was registered ({} when it
        has none); the lock is read once."""
        from ckaudit.registry import lock_of

        if self._lock is None:
            self._lock = lock_of(self.config)
        record = self._lock.get(entry.as_written)
        return record.packages if record is not None else {}

    def _evaluate(self, tree: Tree, spec: ModelSpec, entry: CheckpointEntry, info: CheckpointInfo) -> Outcome:
        from ckaudit.compat import check_compat

        worker = self.worker()
        mark = len(worker.incidents)
        result = check_compat(entry, spec, info, self.checkout(tree), worker)
        incidents = worker.incidents[mark:]
        died = next((i for i in incidents if i.kind == "crashed"), None)
        if died is not None:
            raise WorkerDied(died_message(died, spec, entry, self.python))
        return Outcome(
            loads=result.loads,
            built=result.build.ok,
            findings=tuple(relocate(f, self.checkout(tree)) for f in result.findings),
            sources={p: tree.oid(p) for p in sorted(result.sources)},
            signature=signature_json(result.build),
            distributions=dict(result.build.distributions),
            complete=not incidents and not _import_failed(result.build),
        )

    def _valid(self, outcome: Outcome, tree: Tree) -> bool:
        return self._same_files(outcome, tree) and not self._upgraded(outcome)

    @staticmethod
    def _same_files(outcome: Outcome, tree: Tree) -> bool:
        """A file the worker imported beyond the static closure may have changed."""
        return all(tree.oid(p) == oid for p, oid in outcome.sources.items())

    def _upgraded(self, outcome: Outcome) -> bool:
        """A distribution the build used is installed in another version now (or is gone)."""
        if not outcome.distributions:
            return False
        installed = installed_versions(self.interpreter.paths, outcome.distributions)
        return bool(changes(outcome.distributions, installed))

    def _from_cache(self, key: str, tree: Tree) -> Outcome | None:
        """A stored outcome that is still valid: the files the build imported beyond the static closure are
        unchanged, and so are the installed versions of the distributions it used."""
        value = self.cache.get("outcome", key)
        if value is None:
            return None
        try:
            outcome = outcome_from_record(value)
        except (KeyError, TypeError, ValueError):
            return None
        return outcome if self._valid(outcome, tree) else None

    def _store(self, key: str, spec: ModelSpec, outcome: Outcome) -> None:
        self.cache.put("outcome", key, outcome_record(outcome))
        if outcome.built and outcome.sources:
            merged = sorted(set(self.reported_sources(spec)) | set(outcome.sources))
            self.cache.put("sources", make_key(spec_key(spec)), {"model": spec.name, "sources": merged})


def _source_files(root: Path) -> list[str]:
    from ckaudit.vcs import MATERIAL_SUFFIXES

    return [path for path in walk_files(root, _enter) if path.endswith(MATERIAL_SUFFIXES)]


def _enter(folder: str) -> bool:
    name = name_of(folder)
    return not name.startswith(".") and name not in ("node_modules", "__pycache__")


def outcome_record(outcome: Outcome) -> dict[str, Any]:
    """An outcome as the outcome cache stores it (findings through the shared finding codec)."""
    return {
        "loads": outcome.loads,
        "built": outcome.built,
        "sources": dict(outcome.sources),
        "findings": [finding_dict(f) for f in outcome.findings],
        "signature": outcome.signature,
        "distributions": dict(outcome.distributions),
    }


def outcome_from_record(value: Mapping[str, Any]) -> Outcome:
    """The outcome a cache record holds, marked `cached`."""
    return Outcome(
        loads=bool(value["loads"]),
        built=bool(value["built"]),
        findings=tuple(finding_from_dict(f) for f in value["findings"]),
        sources=dict(value["sources"]),
        signature=value.get("signature"),
        distributions=dict(value.get("distributions") or {}),
        cached=True,
    )


def died_message(died: Incident, spec: ModelSpec, entry: CheckpointEntry, python: str) -> str:
    """What died, how, and what to try: the worker's death is no verdict about the code."""
    tail = "".join(died.stderr.splitlines(keepends=True)[-12:]).rstrip()
    return (
        f"the model worker ({python}) died without an answer while checking {entry.path} against model "
        f"{spec.name} (request {died.op}): {died.message}. This is not a verdict about the code, and nothing "
        "of it was cached. SIGKILL is what the out-of-memory killer sends: free memory (or build a smaller "
        "model through `kwargs:`) and rerun; a segfault or an exit status points at a native library or at "
        "code calling os._exit." + (f"\nThe worker's last output:\n{tail}" if tail else "")
    )


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


def _import_failed(build: ModelBuild) -> bool:
    """A build that could not import a module depends on what is installed, not only on the trees and the
    packages it did import (installing the project editable, or a missing dependency, changes it): such an
    outcome is answered but never cached, so a later run after `pip install` builds again."""
    message = build.error.message if build.error is not None else ""
    return not build.ok and message.startswith(("ModuleNotFoundError:", "ImportError:"))
