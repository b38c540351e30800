"""`ckaudit init`: write a starting ckaudit.yaml from what the repository holds.

Checkpoints are the files the scan globs find: git-tracked ones, and in a repository also the ones git
ignores or does not track (teams keep checkpoints out of git), said once: which were registered, which
skipped and why. Virtualenvs and cache folders are never looked into (they are added to `scan: exclude`).
Models are found by reading the code (nothing imported): `nn.Module`, `LightningModule` and
`PreTrainedModel` subclasses and factory functions; a constructor that needs no arguments is a `factory:`,
and every constructor is also filled from the hyperparameters the checkpoints record (`model_args`,
`hyper_parameters`, a `config.json` or meta JSON beside them) — a config class it takes becomes a `build:`
(`model = GPT(config=GPTConfig(n_layer=2, ...))`), one model per distinct configuration; a `config.json`
naming a transformers class the repository lacks becomes a `build:` of that class. Classes that cannot be
filled are named on stderr with the reason. Unless `--no-match` is given, each checkpoint is registered with
the model it actually loads into: every model is built once on meta, the closest signature is dry-run (also
with a wrapper's prefix stripped, which then becomes the entry's `load:`), only a clean load assigns the
model, and proposals nothing loads into are left out. Checkpoints that match nothing are
registered without a model (so they still get the file checks) and named on stderr. Every entry records the
file's sha256 and its state-dict key.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ckaudit.commands.common import EXIT_OK, find_root
from ckaudit.commands.init_models import propose_models
from ckaudit.commands.register import file_sha256, packages_when_loading
from ckaudit.discovery import SkippedFolders
from ckaudit.errors import CkauditError
from ckaudit.files import checkpoints_outside_git, discovered, open_scope, repository_files
from ckaudit.findings import plural
from ckaudit.reader import CheckpointInfo, CheckpointReadError, read_checkpoint
from ckaudit.registry import (
    CONFIG_NAME,
    DEFAULT_EXCLUDE,
    LOCK_NAME,
    CheckpointEntry,
    Config,
    LoadSteps,
    ModelSpec,
    ScanSettings,
    dump_config,
    signature_of,
    update_lock,
    write_atomically,
)

if TYPE_CHECKING:
    from ckaudit.scan import Evaluator


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
    folders = SkippedFolders(root)
    files = folders.keep(repository_files(scope, config.scan.exclude))
    infos = _readable(root, folders.keep(discovered(config, scope, files)))
    outside = {p: how for p, how in checkpoints_outside_git(config, scope).items() if not folders.skipped(p)}
    skipped = _add_outside(root, infos, outside)
    proposed = propose_models(root, [f for f in files if f.endswith(".py")], infos)
    pairs = _match(config, proposed.models, infos) if args.match and proposed.models and infos else None
    models, renamed = proposed.settle(
        {m for m, _ in pairs.values()} if pairs is not None else set(proposed.models)
    )
    pairs = {p: (renamed.get(m, m), load) for p, (m, load) in (pairs or {}).items()}
    entries = tuple(_entry(root, path, info, pairs.get(path)) for path, info in infos.items())
    scan = _scan_settings(folders)
    written = Config(root=root, path=target, models=models, checkpoints=entries, scan=scan)
    write_atomically(target, dump_config(written))
    signatures = {
        e.as_written: dataclasses.replace(
            signature_of(info, e.key or ""), packages=packages_when_loading(written, e, info)
        )
        for e in entries
        if (info := infos[e.path]) is not None
    }
    update_lock(written, signatures)
    paired = sum(1 for e in entries if e.model)
    print(
        f"wrote {target}: {plural(len(models), 'model')}, {plural(len(entries), 'checkpoint')} "
        f"({paired} paired with a model)",
        file=sys.stderr,
    )
    _say_outside(outside, skipped)
    if folders.found:
        listed = ", ".join(f"{f}/" for f in sorted(folders.found))
        print(f"skipped virtualenv and cache folders: {listed} (also left out of `scan:`)", file=sys.stderr)
    return EXIT_OK


def _scan_settings(folders: SkippedFolders) -> ScanSettings:
    """The scan globs, with the skipped folders that are no default exclusion already."""
    extra = [f"{f}/**" for f in sorted(folders.found)]
    extra = [
        g
        for g in extra
        if not any(fnmatch.fnmatchcase(g, d) for d in DEFAULT_EXCLUDE) and g not in DEFAULT_EXCLUDE
    ]
    return ScanSettings(exclude=(*DEFAULT_EXCLUDE, *extra)) if extra else ScanSettings()


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


def _readable(root: Path, paths: Sequence[str]) -> dict[str, CheckpointInfo | None]:
    """Every found checkpoint; None for the ones that cannot be read (registered for the file checks)."""
    infos: dict[str, CheckpointInfo | None] = {}
    for path in paths:
        try:
            infos[path] = read_checkpoint(root / path)
        except CheckpointReadError:
            infos[path] = None
    return infos


Pair = tuple[str, LoadSteps | None]  # the model a checkpoint loads into, and the `load:` steps it needs


def _entry(root: Path, path: str, info: CheckpointInfo | None, pair: Pair | None) -> CheckpointEntry:
    key = info.candidates[0].key or None if info is not None and info.candidates else None
    sha256 = file_sha256(root / path) if (root / path).is_file() else None
    model, load = pair if pair is not None else (None, None)
    return CheckpointEntry(path=path, model=model, key=key, sha256=sha256, load=load)


def _match(
    config: Config, models: dict[str, ModelSpec], infos: dict[str, CheckpointInfo | None]
) -> dict[str, Pair] | None:
    """checkpoint path -> the model it loads into cleanly (the closest signature, confirmed by a dry run
    through the same Evaluator and cache as every other command), with `load: strip_prefix` when the
    keys carry a wrapper's prefix (`_orig_mod.`, `module.`, `model.`) and only stripping it makes them load.
    None when the models could not be built at all."""
    from ckaudit.cache import JsonStore
    from ckaudit.errors import WorkerError
    from ckaudit.scan import Evaluator
    from ckaudit.worker import InterpreterNotFound

    pairs: dict[str, Pair] = {}
    try:
        with Evaluator(config, JsonStore.for_repo(config.root)) as evaluator:
            builds = {name: evaluator.worker().build(spec, config.root) for name, spec in models.items()}
            shapes = {
                name: {k: s.shape for k, s in b.signature.items()} for name, b in builds.items() if b.ok
            }
            for path, info in infos.items():
                if info is not None and info.candidates:
                    pair = _pair(config, evaluator, models, shapes, path, info)
                    if pair is not None:
                        pairs[path] = pair
    except (WorkerError, InterpreterNotFound) as exc:
        print(f"note: models not paired with checkpoints: {exc}", file=sys.stderr)
        return None
    return pairs


def _pair(
    config: Config,
    evaluator: Evaluator,
    models: dict[str, ModelSpec],
    shapes: dict[str, dict[str, tuple[int, ...]]],
    path: str,
    info: CheckpointInfo,
) -> Pair | None:
    tensors = {k: t.shape for k, t in info.candidates[0].tensors.items()}
    best = max(
        shapes,
        key=lambda name: (_overlap(shapes[name], tensors), -abs(len(shapes[name]) - len(tensors))),
        default=None,
    )
    if best is None or not _overlap(shapes[best], tensors):
        print(f"note: {path}: no model found shares its keys and shapes", file=sys.stderr)
        return None
    loads: list[LoadSteps | None] = [None]
    prefix = _strip_prefix(shapes[best], tensors)
    if prefix is not None:
        loads.append(LoadSteps(strip_prefix=(prefix,)))
    why = "it does not load"
    for load in loads:
        entry = _entry(config.root, path, info, (best, load))
        outcome = evaluator.outcome(evaluator.here(), models[best], entry, info)
        if outcome.loads:
            return best, load
        why = outcome.findings[0].message if outcome.findings else why
    print(f"note: {path}: does not load into the closest model, {best}: {why}", file=sys.stderr)
    return None


def _strip_prefix(model: dict[str, tuple[int, ...]], checkpoint: dict[str, tuple[int, ...]]) -> str | None:
    from ckaudit.compat import find_prefix

    fix = find_prefix([k for k in model if k not in checkpoint], [k for k in checkpoint if k not in model])
    return fix.prefix if fix is not None and fix.mode == "strip" else None


def _overlap(model: dict[str, tuple[int, ...]], checkpoint: dict[str, tuple[int, ...]]) -> int:
    """Keys with the same shape on both sides, directly or behind one consistent prefix (`_orig_mod.`)."""
    from ckaudit.compat import find_prefix

    direct = sum(1 for key, shape in checkpoint.items() if model.get(key) == shape)
    fix = find_prefix([k for k in model if k not in checkpoint], [k for k in checkpoint if k not in model])
    if fix is None:
        return direct
    return max(direct, sum(1 for key, shape in checkpoint.items() if model.get(fix.apply(key)) == shape))
