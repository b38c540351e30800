"""`ckaudit init` for constructors that need arguments: a model entry filled from the hyperparameters the
checkpoints record (`model_args`, `hyper_parameters`, a `config.json` beside them, …).

A parameter is filled by name from a checkpoint's saved values; a parameter that takes a config dataclass
of the repository (by its annotation, else `<Class>Config`, else the one dataclass of the model's module)
is filled field by field, and the entry becomes `build:` code (`model = GPT(config=GPTConfig(n_layer=2,
…))`); plain parameters alone give `factory:` + `kwargs:`. Without saved values, a config whose fields all
have defaults is built with them. Every class that cannot be proposed says why. (`init` leaves out the
classes another model class builds: blocks and heads are no models of their own.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ckaudit.discovery.models import ConfigClass, ModelClass, Param
from ckaudit.registry import ModelSpec

Saved = Mapping[str, Any]  # one checkpoint's hyperparameters, flat: name -> value


@dataclass(frozen=True)
class Proposal:
    specs: tuple[ModelSpec, ...]  # one per distinct configuration found (names set by the caller)
    reason: str | None = None  # why none could be made


def merged(hyperparameters: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One flat mapping from a checkpoint's sources; the first source that names a value wins."""
    result: dict[str, Any] = {}
    for values in hyperparameters.values():
        for name, value in values.items():
            result.setdefault(name, value)
    return result


def propose(model: ModelClass, configs: Sequence[ConfigClass], saved: Sequence[Saved]) -> Proposal:
    """Registry model specs for `model`: one per distinct configuration the checkpoints saved (its config
    class built from their hyperparameters), or the defaults when none are saved; a reason when none can
    be made."""
    cls = model.factory.partition(":")[2]
    takes = {p.name: _config_for(p, model, configs) for p in model.params}
    specs: dict[str, ModelSpec] = {}
    for values in saved:
        spec = _spec(model, takes, values)
        if spec is not None:
            specs.setdefault(spec.build or repr(sorted(spec.kwargs.items())), spec)
    defaults = _spec(model, takes, {}) if not specs else None  # a config whose every field has a default
    if defaults is not None:
        specs[""] = defaults
    if specs:
        return Proposal(tuple(specs.values()))
    needs = ", ".join(_needed(p, takes[p.name]) for p in model.required)
    where = f"{cls} ({model.path}:{model.line})"
    if not saved:
        return Proposal((), f"{where} needs {needs}; no checkpoint records hyperparameters to fill them")
    return Proposal((), f"{where} needs {needs}; no checkpoint records all of them")


def _needed(param: Param, config: ConfigClass | None) -> str:
    if config is None:
        return f"`{param.name}`"
    required = [f.name for f in config.fields if f.required]
    return f"`{param.name}` ({config.name}{': ' + ', '.join(required) if required else ''})"


def _config_for(param: Param, model: ModelClass, configs: Sequence[ConfigClass]) -> ConfigClass | None:
    by_name = {c.name: c for c in configs}
    if param.annotation in by_name:
        return by_name[param.annotation]
    if param.annotation is not None:
        return None
    if model.config_class in by_name and param.name == "config":  # Hugging Face's `config_class = ...`
        return by_name[model.config_class]
    module, _, cls = model.factory.partition(":")
    if f"{cls}Config" in by_name:
        return by_name[f"{cls}Config"]
    local = [c for c in configs if c.module == module]
    return local[0] if len(local) == 1 and param.name in ("config", "cfg", "conf", "args", "params") else None


def _spec(model: ModelClass, takes: Mapping[str, ConfigClass | None], values: Saved) -> ModelSpec | None:
    """The entry that builds `model` from `values`; None when a required value is missing."""
    module, _, cls = model.factory.partition(":")
    kwargs: dict[str, Any] = {}
    calls: dict[str, tuple[ConfigClass, str]] = {}
    for param in model.params:
        config = takes[param.name]
        if config is not None and (param.required or any(f.name in values for f in config.fields)):
            fields = {f.name: values[f.name] for f in config.fields if f.name in values}
            if any(f.required and f.name not in fields for f in config.fields):
                return None
            calls[param.name] = (config, f"{config.name}({_arguments(fields)})")
        elif param.name in values:
            kwargs[param.name] = values[param.name]
        elif param.required:
            return None
    if not calls:
        return ModelSpec(name=cls, factory=model.factory, kwargs=kwargs)
    imports: dict[str, list[str]] = {module: [cls]}
    for config, _ in calls.values():
        imports.setdefault(config.module, []).append(config.name)
    lines = [f"from {m} import {', '.join(dict.fromkeys(names))}" for m, names in imports.items()]
    arguments = [f"{name}={code}" for name, (_, code) in calls.items()]
    lines.append(f"model = {cls}({', '.join([*arguments, _arguments(kwargs)] if kwargs else arguments)})")
    return ModelSpec(name=cls, build="\n".join(lines) + "\n")


def _arguments(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())
