"""`ckaudit init`: write a starting ckaudit.yaml from what the repository holds.

Checkpoints are the files the scan globs find: git-tracked ones, and in a repository also the ones git
ignores or does not track (teams keep checkpoints out of git), said once: which were registered, which
skipped and why. Models are the `nn.Module` subclasses found by reading the code (nothing imported): a
constructor that needs no arguments is a `factory:`; one that needs arguments is filled from the
hyperparameters the checkpoints record (`model_args`, `hyper_parameters`, a `config.json` beside them) — a
config dataclass it takes becomes a `build:` (`model = GPT(config=GPTConfig(n_layer=2, ...))`), one model
per distinct configuration; classes that cannot be filled are named on stderr with the reason. Unless
`--no-match` is given, each checkpoint is registered with the model it actually loads into: every model is
built once on meta, the closest signature is dry-run, and only a clean load assigns the model. Checkpoints
that match nothing are registered without a model (so they still get the file checks) and named on stderr.
Every entry records the file's sha256 and its state-dict key.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from ckaudit.commands.common import EXIT_OK, find_root
from ckaudit.commands.register import file_sha256, snake_case
from ckaudit.discovery import find_classes, merged, propose
from ckaudit.errors import CkauditError
from ckaudit.files import checkpoints_outside_git, discovered, open_scope, repository_files
from ckaudit.reader import CheckpointInfo, CheckpointReadError, read_checkpoint
from ckaudit.registry import (
    CONFIG_NAME,
    LOCK_NAME,
    CheckpointEntry,
    Config,
    ModelSpec,
    dump_config,
    signature_of,
    update_lock,
    write_atomically,
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "init",
        help="write a starting ckaudit.yaml from the checkpoints and models found in the repository",
        description=(__doc__ or "").split("\n\n", 1)[1].strip(),
    )
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="repository root (default: the nearest folder with a ckaudit.yaml, "
        "else the git work tree's top)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing ckaudit.yaml")
    parser.add_argument(
        "--no-match",
        dest="match",
        action="store_false",
        help="do not build models to pair them with checkpoints",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.path is not None and not args.path.is_dir():
        raise CkauditError(f"{args.path}: not a directory")
    root = find_root(None, args.path)
    target = root / CONFIG_NAME
    if target.exists() and not args.force:
        raise CkauditError(f"{target} already exists (use --force to overwrite, or `ckaudit register`)")
    config = Config(root=root)
    scope = open_scope(config)
    files = repository_files(scope, config.scan.exclude)
    infos = _readable(root, discovered(config, scope, files))
    outside = checkpoints_outside_git(config, scope)
    skipped = _add_outside(root, infos, outside)
    models = _models(root, [f for f in files if f.endswith(".py")], infos)
    pairs = _match(config, models, infos) if args.match and models and infos else {}
    entries = tuple(_entry(root, path, info, pairs.get(path)) for path, info in infos.items())
    written = Config(root=root, path=target, models=models, checkpoints=entries)
    write_atomically(target, dump_config(written))
    signatures = {
        e.as_written: signature_of(info, e.key or "") for e in entries if (info := infos[e.path]) is not None
    }
    update_lock(written, signatures)
    paired = sum(1 for e in entries if e.model)
    print(
        f"wrote {target}: {len(models)} models, {len(entries)} checkpoints ({paired} paired with a model)",
        file=sys.stderr,
    )
    _say_outside(outside, skipped)
    return EXIT_OK


def _add_outside(
    root: Path, infos: dict[str, CheckpointInfo | None], outside: dict[str, str]
) -> dict[str, str]:
    """Readable checkpoints outside git join `infos`; the rest are skipped: path -> why."""
    skipped = {}
    for path in sorted(outside):
        try:
            infos[path] = read_checkpoint(root / path)
        except CheckpointReadError as exc:
            skipped[path] = f"{exc.rule.value}: {exc.message}"
    return skipped


def _say_outside(outside: dict[str, str], skipped: dict[str, str]) -> None:
    """Checkpoints outside git, said once: which were registered (and why that is enough) and which not."""
    registered = sorted(p for p in outside if p not in skipped)
    if registered:
        groups = {how: [p for p in registered if outside[p] == how] for how in ("ignored", "untracked")}
        listed = "; ".join(f"{how} by git: {', '.join(paths)}" for how, paths in groups.items() if paths)
        print(
            f"registered {len(registered)} checkpoint(s) that are not in git ({listed}). Their signatures "
            f"are in {LOCK_NAME}: commit it with {CONFIG_NAME}, and the hook and CI judge code changes "
            "against them where the files are absent.",
            file=sys.stderr,
        )
    for path, why in sorted(skipped.items()):
        print(f"skipped {path} ({outside[path]} by git): not a readable checkpoint ({why})", file=sys.stderr)


def _models(
    root: Path, python_files: Sequence[str], infos: dict[str, CheckpointInfo | None]
) -> dict[str, ModelSpec]:
    found = find_classes(root, python_files)
    saved = [merged(i.hyperparameters) for i in infos.values() if i is not None and i.hyperparameters]
    models: dict[str, ModelSpec] = {}
    components = found.components()
    for model in found.models:
        name = snake_case(model.factory.rsplit(":", 1)[1])
        if not model.required:
            if name in models:  # the same class name in two modules: qualify the second
                name = snake_case(model.factory.replace(":", "_").replace(".", "_"))
            models[name] = ModelSpec(name=name, factory=model.factory)
            continue
        if name in {snake_case(c) for c in components}:
            continue  # a block another model builds, not a model of its own
        proposal = propose(model, found.configs, saved)
        if proposal.reason:
            print(f"note: not registered: {proposal.reason}; add it under models: by hand", file=sys.stderr)
        for spec in proposal.specs:
            _add(models, name, spec)
    return models


def _add(models: dict[str, ModelSpec], name: str, spec: ModelSpec) -> None:
    """Under `name`, or `name_2`, `name_3`… when taken (one model per configuration found)."""
    unique, number = name, 1
    while unique in models:
        number += 1
        unique = f"{name}_{number}"
    models[unique] = dataclasses.replace(spec, name=unique)


def _readable(root: Path, paths: Sequence[str]) -> dict[str, CheckpointInfo | None]:
    """Every found checkpoint; None for the ones that cannot be read (registered for the file checks)."""
    infos: dict[str, CheckpointInfo | None] = {}
    for path in paths:
        try:
            infos[path] = read_checkpoint(root / path)
        except CheckpointReadError:
            infos[path] = None
    return infos


def _entry(root: Path, path: str, info: CheckpointInfo | None, model: str | None) -> CheckpointEntry:
    key = info.candidates[0].key or None if info is not None and info.candidates else None
    sha256 = file_sha256(root / path) if (root / path).is_file() else None
    return CheckpointEntry(path=path, model=model, key=key, sha256=sha256)


def _match(
    config: Config, models: dict[str, ModelSpec], infos: dict[str, CheckpointInfo | None]
) -> dict[str, str]:
    """checkpoint path -> the model it loads into cleanly (the closest signature, confirmed by a dry run
    through the same Evaluator and cache as every other command)."""
    from ckaudit.cache import JsonStore
    from ckaudit.errors import WorkerError
    from ckaudit.scan import Evaluator
    from ckaudit.worker import InterpreterNotFound

    pairs: dict[str, str] = {}
    try:
        with Evaluator(config, JsonStore.for_repo(config.root)) as evaluator:
            builds = {name: evaluator.worker().build(spec, config.root) for name, spec in models.items()}
            shapes = {
                name: {k: s.shape for k, s in b.signature.items()} for name, b in builds.items() if b.ok
            }
            for path, info in infos.items():
                if info is None or not info.candidates:
                    continue
                tensors = {k: t.shape for k, t in info.candidates[0].tensors.items()}
                best = max(shapes, key=lambda name: _overlap(shapes[name], tensors), default=None)
                if best is None or not _overlap(shapes[best], tensors):
                    print(f"note: {path}: no model found shares its keys and shapes", file=sys.stderr)
                    continue
                entry = _entry(config.root, path, info, best)
                outcome = evaluator.outcome(evaluator.here(), models[best], entry, info)
                if outcome.loads:
                    pairs[path] = best
                else:
                    why = outcome.findings[0].message if outcome.findings else "it does not load"
                    print(
                        f"note: {path}: does not load into the closest model, {best}: {why}", file=sys.stderr
                    )
    except (WorkerError, InterpreterNotFound) as exc:
        print(f"note: models not paired with checkpoints: {exc}", file=sys.stderr)
    return pairs


def _overlap(model: dict[str, tuple[int, ...]], checkpoint: dict[str, tuple[int, ...]]) -> int:
    """Keys with the same shape on both sides, directly or behind one consistent prefix (`_orig_mod.`)."""
    from ckaudit.compat import find_prefix

    direct = sum(1 for key, shape in checkpoint.items() if model.get(key) == shape)
    fix = find_prefix([k for k in model if k not in checkpoint], [k for k in checkpoint if k not in model])
    if fix is None:
        return direct
    return max(direct, sum(1 for key, shape in checkpoint.items() if model.get(fix.apply(key)) == shape))
