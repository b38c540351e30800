"""`ckaudit register FILE [--model NAME]`: add or update a registry entry, with its sha256 and key.

Every registry write also writes the lock: the file's signature, and the signature of every other
registered checkpoint the lock lacks (a registry written by hand gets its lock here)."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

from ckaudit import reader
from ckaudit.commands.common import EXIT_OK, add_config_option, find_root, resolve_config
from ckaudit.errors import CkauditError
from ckaudit.reader import CheckpointInfo, CheckpointReadError, read_checkpoint
from ckaudit.registry import (
    CONFIG_NAME,
    CheckpointEntry,
    Config,
    ModelSpec,
    dump_config,
    expand_path,
    signature_of,
    update_lock,
    write_atomically,
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "register",
        help="add a checkpoint to ckaudit.yaml (with its sha256 and state-dict key)",
        description="Add FILE to the registry, or update its entry: the model it must load into, the sha256 "
        "of its content and the key its state dict sits under (detected unless --key is given). The "
        "registry is rewritten sorted and without timestamps, so it merges cleanly. The file's state-dict "
        "signature goes to ckaudit.lock beside it (commit both).",
    )
    parser.add_argument("file", type=Path, help="the checkpoint file")
    parser.add_argument(
        "--model",
        help="a model NAME from the registry, or module:callable (default: the entry's model, for a "
        "checkpoint already registered)",
    )
    parser.add_argument("--key", help="where the state dict sits in the file (dotted); default: detected")
    parser.add_argument(
        "--root",
        type=Path,
        help="repository root (default: the folder of --config, else the nearest with a "
        "ckaudit.yaml, else the git work tree's top)",
    )
    parser.add_argument("--no-sha256", action="store_true", help="do not record the content hash")
    add_config_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    root = find_root(args.config, args.root)
    config = resolve_config(root, args.config)
    rel_path = _relative_path(args.file, root)
    previous = config.checkpoint(rel_path)
    model_name, config = _ensure_model(config, args.model or _remembered(previous, rel_path))
    entry, info = _entry_for(root / expand_path(rel_path), rel_path, model_name, args.key, not args.no_sha256)
    if previous is not None:  # keep what the user set by hand (strict, ignore, expect)
        entry = dataclasses.replace(previous, model=entry.model, key=entry.key, sha256=entry.sha256)
    target, lock = write_entry(config, root, entry, info, replaces=rel_path)
    verb = "updated" if previous else "registered"
    print(
        f"{verb} {rel_path} (model {model_name}, key {entry.key or '<top level>'}) in {target}; "
        f"its signature in {lock.name}",
        file=sys.stderr,
    )
    return EXIT_OK


def write_entry(
    config: Config, root: Path, entry: CheckpointEntry, info: CheckpointInfo, *, replaces: str
) -> tuple[Path, Path]:
    """Every registry write (`register`, `fix --registry`, `fix --repoint`): `entry` in place of the entry
    written `replaces` (or added), the file rewritten sorted (a note when its comments go), and the entry's
    signature — with the packages it loads with here — in ckaudit.lock. Returns both paths."""
    others = tuple(c for c in config.checkpoints if c.as_written != replaces)
    updated = dataclasses.replace(config, checkpoints=(*others, entry))
    target = config.path or root / CONFIG_NAME
    written = dataclasses.replace(updated, path=target)
    packages = packages_when_loading(written, entry, info)  # before writing: a dead worker changes nothing
    _warn_if_comments_dropped(target)
    write_atomically(target, dump_config(updated))
    signature = dataclasses.replace(signature_of(info, entry.key or ""), packages=packages)
    return target, update_lock(written, {entry.as_written: signature})


def _remembered(previous: CheckpointEntry | None, rel_path: str) -> str:
    """Re-registering an entry (a re-saved file) keeps its model; a new one needs --model."""
    if previous is not None and previous.model:
        return previous.model
    raise CkauditError(f"{rel_path} is not registered with a model yet: give --model NAME or module:callable")


def _relative_path(file: Path, root: Path) -> str:
    """Root-relative inside the repository; outside it (a checkpoint under ~/.cache, on a data disk), the
    absolute path with the home folder written `~`, so the entry reads the same on a teammate's machine."""
    absolute = (file if file.is_absolute() else Path.cwd() / file).resolve()
    if absolute.is_relative_to(root):
        return absolute.relative_to(root).as_posix()
    home = Path.home().resolve()
    return (
        f"~/{absolute.relative_to(home).as_posix()}" if absolute.is_relative_to(home) else absolute.as_posix()
    )


def _ensure_model(config: Config, model: str) -> tuple[str, Config]:
    """A registry name is used as is; module:callable adds a model named after the callable."""
    if model in config.models:
        return model, config
    if ":" not in model:
        known = ", ".join(sorted(config.models)) or "none defined"
        raise CkauditError(f"unknown model {model!r} (models: {known}); give NAME or module:callable")
    name = snake_case(model.rsplit(":", 1)[1].rsplit(".", 1)[-1])
    existing = config.models.get(name)
    if existing is not None and existing.factory != model:
        raise CkauditError(f"a model named {name!r} already exists with factory {existing.factory!r}")
    models = {**config.models, name: ModelSpec(name=name, factory=model)}
    return name, dataclasses.replace(config, models=models)


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _entry_for(
    path: Path, rel_path: str, model: str, key: str | None, with_sha256: bool
) -> tuple[CheckpointEntry, CheckpointInfo]:
    if not path.exists():
        raise CkauditError(f"{rel_path}: no such file")
    try:
        info = read_checkpoint(path)
    except CheckpointReadError as exc:
        raise CkauditError(
            f"{rel_path} is not a loadable checkpoint ({exc.rule.value}): {exc.message}"
        ) from None
    if key is None and info.candidates:
        key = info.candidates[0].key or None
    sha256 = file_sha256(path) if with_sha256 and path.is_file() else None
    return CheckpointEntry(path=rel_path, model=model, key=key, sha256=sha256), info


def file_sha256(path: Path) -> str:
    """The reader's sha256 of the file (one implementation for `register`, `init` and `--verify`)."""
    try:
        return reader.file_sha256(path)
    except OSError as exc:
        raise CkauditError(f"cannot read {path}: {exc}") from None


def _warn_if_comments_dropped(target: Path) -> None:
    try:
        text = target.read_text(encoding="utf-8")
    except OSError:
        return
    if any(
        line.lstrip().startswith("#") and not line.startswith("# ckaudit registry")
        for line in text.splitlines()
    ):
        print(f"note: {target} is rewritten in canonical order; its comments are not kept", file=sys.stderr)


def packages_when_loading(config: Config, entry: CheckpointEntry, info: CheckpointInfo) -> dict[str, str]:
    """The installed versions of the packages the model's build imports, when the checkpoint loads into it
    here and now — what ckaudit.lock records so that a later break that comes with another version is said
    to be `package-version` from committed data. Empty when it does not load (the lock keeps the versions it
    last loaded with) or when no interpreter here can build the model (registering stays torch-free)."""
    from ckaudit.cache import JsonStore
    from ckaudit.errors import WorkerDied, WorkerError
    from ckaudit.scan import Evaluator
    from ckaudit.worker import InterpreterNotFound

    if entry.model is None or entry.model not in config.models:
        return {}
    try:
        with Evaluator(config, JsonStore.for_repo(config.root)) as evaluator:
            outcome = evaluator.outcome(evaluator.here(), config.models[entry.model], entry, info)
    except WorkerDied:
        raise
    except (WorkerError, InterpreterNotFound) as exc:
        print(f"(package versions not recorded: {exc})".splitlines()[0], file=sys.stderr)
        return {}
    return dict(sorted(outcome.distributions.items())) if outcome.loads else {}
