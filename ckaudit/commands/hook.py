"""`ckaudit hook [FILES...]`: the pre-commit check — will the registered checkpoints still load with the
code about to be committed?

The registry and the code come from the index (what will be committed), the "before" side from HEAD
(with HEAD's registry entry for each checkpoint where it has one), checkpoint files from the working tree
(under pre-commit, unstaged changes are stashed, so that is the staged content too), or from their
signature in ckaudit.lock where the file is absent. The registry must be staged as it is: an untracked
`ckaudit.yaml`, or one with unstaged changes, is refused (exit 2) rather than silently checked in a form
that will not be committed.

Which models: those whose files differ between HEAD and the index — judged by blob ids of every path
the model's static import closure (plus `sources:` and the worker's record) names, so a staged deletion
counts although pre-commit never passes deleted files. FILES (what pre-commit passes) are therefore not
trusted as the whole story. Fast path: when no model's files changed, the hook returns after a few git
plumbing calls, without importing the worker client, the reader or torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ckaudit.commands.common import EXIT_OK, add_report_options, find_root, finish, resolve_config
from ckaudit.errors import CkauditError
from ckaudit.findings import CheckpointResult, Finding, Location, Report, Rule, Severity
from ckaudit.registry import CONFIG_NAME, Config, parse_config
from ckaudit.vcs import (
    Tree,
    blob_oid,
    commit_tree,
    hook_index_env,
    index_tree,
    resolve_commit,
    staged_paths,
)

if TYPE_CHECKING:
    from ckaudit.vcs import GitRepo

DEFAULT_LARGE = 10 * 1024 * 1024


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "hook",
        help="pre-commit hook: block staged code that breaks a registered checkpoint",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("files", nargs="*", help="staged files (pre-commit passes them); default: all staged")
    parser.add_argument("--strict", action="store_true", help="checkpoints already failing at HEAD block too")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    parser.add_argument(
        "--files-only",
        action="store_true",
        help="only the file checks on staged checkpoint files (no torch needed)",
    )
    parser.add_argument(
        "--large",
        type=int,
        default=DEFAULT_LARGE,
        metavar="BYTES",
        help="--files-only: a checkpoint this large committed outside Git LFS is an error "
        f"(default: {DEFAULT_LARGE})",
    )
    add_report_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    repo = find_root(args.config)
    if args.files_only:
        return run_files(repo, args)
    index = index_tree(repo, hook_index_env(repo))
    config = staged_registry(repo, index, args.config)
    if config is None or not config.models:
        return EXIT_OK
    return compare_head_index(repo, config, index, args)


def staged_registry(repo: Path, index: Tree, explicit: Path | None) -> Config | None:
    """The registry as staged; refuse one that is untracked or has unstaged changes."""
    if explicit is not None:
        return resolve_config(repo, explicit)
    on_disk = repo / CONFIG_NAME
    staged = index.read_many([CONFIG_NAME]).get(CONFIG_NAME)
    if staged is None:
        if on_disk.is_file():
            raise CkauditError(
                f"{CONFIG_NAME} is not staged: the hook checks what will be committed. "
                f"Run `git add {CONFIG_NAME}` first."
            )
        return None
    if on_disk.is_file() and blob_oid(on_disk.read_bytes()) != index.oid(CONFIG_NAME):
        raise CkauditError(
            f"{CONFIG_NAME} has unstaged changes: stage them (`git add {CONFIG_NAME}`) or stash "
            "them, so that the registry checked is the one committed."
        )
    return parse_config(staged.decode("utf-8", "replace"), f"{CONFIG_NAME} (staged)", repo)


def compare_head_index(repo: Path, config: Config, index: Tree, args: argparse.Namespace) -> int:
    from ckaudit.cache import JsonStore
    from ckaudit.scan import Evaluator, Labels, compare, relevant_models

    head = commit_tree(repo, "HEAD") if resolve_commit(repo, "HEAD") else None
    labels = Labels(before="HEAD", after="the staged code")
    with Evaluator(config, JsonStore.for_repo(repo, enabled=not args.no_cache)) as evaluator:
        models = relevant_models(config, head, index, evaluator)
        if not models:
            return EXIT_OK
        evaluator.start_worker()  # the staged code is new: its build is all but certain
        staged = config if args.config is None else None  # `staged_registry` parsed the index's registry
        report = compare(
            config, head, index, models, evaluator, labels, "hook", strict=args.strict, after_registry=staged
        )
    return finish(report, args)


def run_files(repo: Path, args: argparse.Namespace) -> int:
    """`ckaudit-files`: the file checks on staged checkpoint files, plus large files outside LFS; no torch."""
    from ckaudit.files import check_checkpoints, open_scope

    config = resolve_config(repo, args.config)
    scope = open_scope(config)
    paths = root_relative(args.files, repo) if args.files else staged_paths(repo)
    outcomes = check_checkpoints(config, scope, paths=paths, files=paths)
    results = tuple(with_lfs_check(repo, scope.repo, outcome.result, args.large) for outcome in outcomes)
    return finish(Report(root=str(repo), command="hook", checkpoints=results), args)


def root_relative(files: list[str], root: Path) -> list[str]:
    """FILES as pre-commit passes them (relative to the current directory, the work tree's top) relative to
    the root; files outside the root are not the registry's business."""
    inside = []
    for file in files:
        absolute = Path(os.path.normpath(Path.cwd() / file))
        if absolute.is_relative_to(root):
            inside.append(absolute.relative_to(root).as_posix())
    return inside


def with_lfs_check(
    repo: Path, found: GitRepo | None, result: CheckpointResult, large: int
) -> CheckpointResult:
    extra = large_outside_lfs(repo, found, result.path, result.model, large)
    return dataclasses.replace(result, findings=result.findings + tuple(extra)) if extra else result


def large_outside_lfs(
    repo: Path, found: GitRepo | None, path: str, model: str | None, large: int
) -> list[Finding]:
    from ckaudit.vcs import lfs_tracked

    file = repo / path
    size = file.stat().st_size if file.is_file() else 0
    if size < large or found is None or lfs_tracked(found, path):
        return []
    message = f"{path} is {size / 1e6:.1f} MB and about to be committed outside Git LFS"
    fix = f"Track it with Git LFS: `git lfs track '{path}'`, then `git add .gitattributes {path}`."
    return [
        Finding(
            Rule.LARGE_OUTSIDE_LFS,
            Severity.ERROR,
            message,
            checkpoint=path,
            model=model,
            location=Location(path),
            fix=fix,
            details={"bytes": size, "threshold": large},
        )
    ]
