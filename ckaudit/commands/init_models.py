"""`init`'s model proposals: which entries to write under `models:`, and which of them to keep once the
checkpoints have been paired.

Every class, factory function and library class found yields one entry per configuration found (its
defaults; each distinct set of hyperparameters a checkpoint records; a `config.json`'s library class).
Those are guesses until a checkpoint loads into them: after pairing, an entry no checkpoint loads into is
dropped — except that a class of the repository keeps its first entry when none of its entries pairs (the
user still sees the class, to fill by hand). Surviving entries get the plainest name free (`gpt`, not
`gpt_2`, when the first guess was dropped).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ckaudit.commands.register import snake_case
from ckaudit.discovery import ConfigClass, ModelClass, find_classes, library_model, merged, propose
from ckaudit.reader import CheckpointInfo
from ckaudit.registry import ModelSpec


@dataclass
class Proposed:
    models: dict[str, ModelSpec] = field(default_factory=dict)
    group: dict[str, str] = field(default_factory=dict)  # entry name -> what it builds (class, function)
    base: dict[str, str] = field(default_factory=dict)  # entry name -> the name it was proposed under
    keep_one: set[str] = field(default_factory=set)  # groups of the repository's classes

    def add(self, name: str, spec: ModelSpec, group: str) -> None:
        """Under `name`, or `name_2`, `name_3`… when taken (one model per configuration found)."""
        unique, number = name, 1
        while unique in self.models:
            number += 1
            unique = f"{name}_{number}"
        self.models[unique] = dataclasses.replace(spec, name=unique)
        self.group[unique] = group
        self.base[unique] = name

    def settle(self, paired: set[str]) -> tuple[dict[str, ModelSpec], dict[str, str]]:
        """The entries to write after pairing, and old name -> new name for the ones renamed."""
        keep = [n for n in self.models if n in paired]
        for group in self.keep_one:
            names = [n for n, g in self.group.items() if g == group]
            if names and not any(n in keep for n in names):
                keep.append(names[0])
        renames: dict[str, str] = {}
        taken: set[str] = set()
        for name in sorted(keep, key=list(self.models).index):
            base = self.base[name]
            new = base if base not in taken and (base == name or base not in keep) else name
            taken.add(new)
            if new != name:
                renames[name] = new
        models = {
            renames.get(n, n): dataclasses.replace(self.models[n], name=renames.get(n, n)) for n in keep
        }
        return dict(sorted(models.items())), renames


def propose_models(
    root: Path, python_files: Sequence[str], infos: Mapping[str, CheckpointInfo | None]
) -> Proposed:
    """The models `init` writes: classes found in the Python files (not those another found model builds as
    a block), configured from the checkpoints' saved hyperparameters, plus the library class a
    `config.json` beside a checkpoint names."""
    found = find_classes(root, python_files)
    saved = [merged(i.hyperparameters) for i in infos.values() if i is not None and i.hyperparameters]
    proposed = Proposed()
    components = {snake_case(c) for c in found.components()}
    for model in found.models:
        name = snake_case(model.factory.rsplit(":", 1)[1])
        if (model.required or model.function) and name in components:
            continue  # a block another model builds, not a model of its own
        if any(m.factory == model.factory for m in proposed.models.values()):
            continue
        if name in proposed.models and proposed.group.get(name) != model.factory:
            name = snake_case(model.factory.replace(":", "_").replace(".", "_"))  # same name, two modules
        if not model.function:
            proposed.keep_one.add(model.factory)
        _propose_one(proposed, model, name, found.configs, saved)
    classes = {m.factory.rsplit(":", 1)[1] for m in found.models}
    for path in sorted(infos):
        library = library_model(root / path, classes)
        if library is not None and library.build not in {m.build for m in proposed.models.values()}:
            proposed.add(snake_case(library.name), library, f"transformers:{library.name}")
    return proposed


def _propose_one(
    proposed: Proposed,
    model: ModelClass,
    name: str,
    configs: Sequence[ConfigClass],
    saved: Sequence[Mapping[str, Any]],
) -> None:
    if not model.required:
        proposed.add(name, ModelSpec(name=name, factory=model.factory), model.factory)
    proposal = propose(model, configs, saved)
    if proposal.reason and model.required and not model.function:
        print(f"note: not registered: {proposal.reason}; add it under models: by hand", file=sys.stderr)
    for spec in proposal.specs:
        if spec.kwargs or spec.build or model.required:
            proposed.add(name, spec, model.factory)
