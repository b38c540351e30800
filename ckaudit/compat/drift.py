"""config-drift: the checkpoint says how its model was configured, and the registry builds another one.

Saved hyperparameters come from the reader (`CheckpointInfo.hyperparameters`: `model_args`,
`hyper_parameters`, a sidecar `config.json`, …); built ones from the worker (`ModelBuild.hyperparameters`:
the factory's bound arguments and the configuration objects the model keeps). Only names present on both
sides are compared. When the checkpoint then fails to load, the key findings are the drift's consequence:
their fix points at the configuration instead of advising to drop or ignore keys.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ckaudit.compat.diagnosis import Context
from ckaudit.findings import Finding, Location, Rule, Severity
from ckaudit.registry import CONFIG_NAME, ModelSpec

# Bookkeeping that says nothing about the architecture (transformers writes these into config.json).
_IGNORED = {"transformers_version", "architectures", "torch_dtype", "dtype", "use_cache", "return_dict"}
_CONSEQUENCES = (Rule.MISSING_KEYS, Rule.UNEXPECTED_KEYS, Rule.SHAPE_MISMATCH)  # what a config resizes

Difference = tuple[str, Any, Any]  # name, saved, built


def differences(saved: Mapping[str, Any], built: Mapping[str, Any]) -> list[Difference]:
    """(name, saved, built) for the hyperparameters present on both sides that differ; private names and
    bookkeeping (transformers_version, …) are not the architecture."""
    return [
        (name, value, built[name])
        for name, value in saved.items()
        if name in built and not name.startswith("_") and name not in _IGNORED and value != built[name]
    ]


def _values(diffs: Sequence[Difference], side: int) -> str:
    return ", ".join(
        f"{d[0]}={d[side]!r}" if isinstance(d[side], str) else f"{d[0]}={d[side]}" for d in diffs
    )


def config_drift(
    ctx: Context, spec: ModelSpec, saved: Mapping[str, Mapping[str, Any]], loads: bool
) -> Finding | None:
    """One finding naming every drifted value, from the first source that has any."""
    built = ctx.build.hyperparameters
    for source, values in saved.items():
        diffs = differences(values, built)
        if diffs:
            return _finding(ctx, spec, source, diffs, loads)
    return None


def _finding(ctx: Context, spec: ModelSpec, source: str, diffs: list[Difference], loads: bool) -> Finding:
    drift = f"saved with {_values(diffs, 1)}, built with {_values(diffs, 2)}"
    wanted = "{" + ", ".join(f"{d[0]}: {d[1]!r}" for d in diffs) + "}"
    if spec.line is None:  # --model / --build on the command line
        how = f"pass `--kwargs '{json.dumps(dict((d[0], d[1]) for d in diffs))}'`" if spec.factory else ""
        how = how or f"build it with {_values(diffs, 1)}"
    elif spec.factory:
        how = f"set `kwargs: {wanted}` for models.{spec.name} in ckaudit.yaml"
    else:
        how = f"build it with {_values(diffs, 1)} in the `build:` code of models.{spec.name}"
    if loads:
        message = f"loads, but the hyperparameters it records ({source}) differ from the build: {drift}"
        fix = f"If the model should be built as it was saved, {how}; if the difference is intended (e.g. no "
        fix += "dropout at inference), nothing to do."
    else:
        message = f"the hyperparameters the checkpoint records ({source}) differ from the build: {drift}"
        fix = f"Build the model as it was saved: {how}. If the new configuration is intended, re-save the "
        fix += "checkpoint from it, or mark it `expect: fails` with a `reason:`."
    location = Location(CONFIG_NAME, spec.line) if spec.line else None
    return ctx.finding(
        Rule.CONFIG_DRIFT,
        Severity.NOTE if loads else Severity.ERROR,
        message,
        fix,
        location=location,
        source=source,
        saved={d[0]: d[1] for d in diffs},
        built={d[0]: d[2] for d in diffs},
    )


def explained_by(findings: Sequence[Finding], drift: Finding) -> list[Finding]:
    """The key findings as consequences of the drift: same evidence, the drift's fix (no key dropping)."""
    fix = f"Likely a consequence of the config drift ({drift.message.split(': ', 1)[-1]}): {drift.fix}"
    return [
        dataclasses.replace(f, fix=fix, details={**f.details, "explained_by": Rule.CONFIG_DRIFT.value})
        if f.rule in _CONSEQUENCES
        else f
        for f in findings
    ]
