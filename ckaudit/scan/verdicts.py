"""Before/after verdicts shared by `hook` and `check`: every registered checkpoint against two versions of
the code (before: HEAD or a base commit; after: the index, a head commit or the working tree).

Each side's outcome comes from `ckaudit.scan.evaluator.Evaluator`; `ckaudit.scan.policy.judge` turns a
before/after pair into findings (the one policy every command shares).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ckaudit.errors import ConfigError
from ckaudit.findings import CheckpointResult, Finding, Report
from ckaudit.registry import CONFIG_NAME, CheckpointEntry, Config, ModelSpec, parse_config
from ckaudit.scan.causes import name_changed_lines
from ckaudit.scan.evaluator import Evaluator
from ckaudit.scan.keylists import key_lists
from ckaudit.scan.loadinfo import load_info
from ckaudit.scan.policy import Labels, judge
from ckaudit.vcs import Tree

if TYPE_CHECKING:
    from ckaudit.reader import CheckpointInfo


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
    after_registry: Config | None = None,
) -> Report:
    """Every registered checkpoint of `models`, judged before/after, each side with its own registry entry
    (checkpoint files: the working tree, else their signature in ckaudit.lock). `after_registry`: the after
    tree's registry when the caller has parsed it already (the hook's staged one), so it is parsed once."""
    sides = (registry_at(before, config), after_registry or registry_at(after, config))
    results = []
    for spec in models:
        for entry in (e for e in config.checkpoints if e.model == spec.name):
            info = load_info(config, entry)
            if isinstance(info, Finding):
                result = CheckpointResult(entry.path, spec.name, None, None, None, (info,), loads=False)
                results.append(result)
                continue
            old = evaluator.outcome(before, *entry_at(sides[0], config, entry), info) if before else None
            new = evaluator.outcome(after, *entry_at(sides[1], config, entry), info)
            judged = judge(entry, new, old, labels, strict)
            if old is not None and before is not None and not new.loads:
                judged = name_changed_lines(judged, old.sources, new.sources, before, after)
            findings = [*judged, *_from_lock(entry, info)]
            results.append(
                CheckpointResult(
                    entry.path,
                    spec.name,
                    info.format,
                    len(info.tensors),
                    info.size or None,
                    tuple(findings),
                    loads=new.loads,
                    **key_lists(new, entry, info),
                )
            )
    return Report(root=str(config.root), command=command, checkpoints=tuple(results))


def registry_at(tree: Tree | None, today: Config) -> Config:
    """The registry as committed in `tree`; today's where the tree has none or one that fails to parse."""
    if tree is None:
        return today
    data = tree.read_many([CONFIG_NAME]).get(CONFIG_NAME)
    if data is None:
        return today
    try:
        return parse_config(data.decode("utf-8", "replace"), f"{CONFIG_NAME} ({tree.label})", today.root)
    except ConfigError:
        return today


def entry_at(registry: Config, today: Config, entry: CheckpointEntry) -> tuple[ModelSpec, CheckpointEntry]:
    """This version's model and entry for the checkpoint (same path), else today's."""
    then = registry.checkpoint(entry.path)
    if then is not None and then.model is not None and then.model in registry.models:
        return registry.models[then.model], then
    return today.models[entry.model or ""], entry


def _from_lock(entry: CheckpointEntry, info: CheckpointInfo) -> list[Finding]:
    from ckaudit.files import judged_from_lock

    return [judged_from_lock(entry)] if info.details.get("from_lock") else []
