"""From a dry run's outcome to findings a person can act on: the layer, both shapes, the line, the fix.

Torch-free: it reads LoadOutcome/ModelBuild data only. Which dry runs to make (and to verify a proposed
prefix, rename map or container key) is `modelcheck`'s business; this module only words what they showed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ckaudit.compat.keyfix import PrefixFix, collapse_keys, ignored
from ckaudit.findings import Finding, Location, Rule, Severity
from ckaudit.reader import TensorInfo
from ckaudit.worker import LoadOutcome, ModelBuild

_SHOWN_KEYS = 8  # collapsed key patterns shown in a message; details carry them all
Mismatch = tuple[str, tuple[int, ...], tuple[int, ...]]


@dataclass(frozen=True)
class Problems:
    """What a dry run found, after the registry's `ignore` globs."""

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    size_mismatch: tuple[Mismatch, ...] = ()
    other_errors: tuple[str, ...] = ()

    def fails(self, strict: bool) -> bool:
        """As torch decides: shape mismatches and hook errors always fail; key differences when strict."""
        keys = bool(self.missing or self.unexpected) and strict
        return keys or bool(self.size_mismatch or self.other_errors)

    @property
    def count(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.size_mismatch) + len(self.other_errors)


def problems_of(outcome: LoadOutcome, ignore: Sequence[str] = ()) -> Problems:
    return Problems(
        missing=tuple(k for k in outcome.missing if not ignored(k, ignore)),
        unexpected=tuple(k for k in outcome.unexpected if not ignored(k, ignore)),
        size_mismatch=outcome.size_mismatch,
        other_errors=outcome.other_errors,
    )


@dataclass(frozen=True)
class Context:
    """Who a finding concerns: every finding names the checkpoint, the model and, where known, the layer."""

    checkpoint: str
    model: str
    build: ModelBuild

    def finding(
        self,
        rule: Rule,
        severity: Severity,
        message: str,
        fix: str,
        *,
        layer: str | None = None,
        location: Location | None = None,
        **details: object,
    ) -> Finding:
        """`layer`: a state-dict key whose defining line is the location (when `location` is not given)."""
        if location is None and layer is not None:
            location = self.build.location_of(layer)
        return Finding(
            rule=rule,
            severity=severity,
            message=message,
            checkpoint=self.checkpoint,
            model=self.model,
            location=location,
            fix=fix,
            details=details,
        )


def shown(keys: Sequence[str]) -> str:
    patterns = collapse_keys(keys)
    text = ", ".join(patterns[:_SHOWN_KEYS])
    return text + (f", … ({len(patterns) - _SHOWN_KEYS} more)" if len(patterns) > _SHOWN_KEYS else "")


def dims(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def model_error(ctx: Context, build: ModelBuild, factory: str) -> Finding:
    error = build.error
    message = error.message if error else "the model could not be built"
    where = error.location if error else None
    if error is not None and error.kind == "timeout":
        fix = (
            f"{factory} did not finish in time: look for a loop or a download at import (`timeout:` in "
            "ckaudit.yaml raises the limit)."
        )
    elif where is not None:
        fix = f"Make {factory} build again: the failure is at {where.path}:{where.line}."
    else:
        fix = f"Make {factory} importable and callable from the repository root with the registered kwargs."
    kind = error.kind if error else "raised"
    return ctx.finding(
        Rule.MODEL_ERROR,
        Severity.ERROR,
        f"model {ctx.model} could not be built: {message}",
        fix,
        location=where,
        kind=kind,
        traceback=error.traceback if error else "",
    )


def dtype_changes(ctx: Context, tensors: Mapping[str, TensorInfo], build: ModelBuild) -> list[Finding]:
    """Same key and shape, another dtype: loads with a silent cast (a warning, one per dtype pair)."""
    pairs: dict[tuple[str, str], list[str]] = {}
    for key, spec in build.signature.items():
        tensor = tensors.get(key)
        if (
            tensor is not None
            and tensor.shape == spec.shape
            and tensor.dtype != spec.dtype
            and spec.persistent
        ):
            pairs.setdefault((tensor.dtype, spec.dtype), []).append(key)
    return [
        ctx.finding(
            Rule.DTYPE_CHANGE,
            Severity.WARNING,
            f"{len(keys)} tensor(s) stored as {saved}, cast to {wanted} on load: {shown(keys)}",
            f"Loads with a silent cast from {saved} to {wanted}; if that is intended (e.g. a half-"
            f"precision export) nothing to do, else save the checkpoint in {wanted}.",
            layer=keys[0],
            checkpoint_dtype=saved,
            model_dtype=wanted,
            keys=keys,
        )
        for (saved, wanted), keys in pairs.items()
    ]


def key_prefix(ctx: Context, fix: PrefixFix, severity: Severity) -> Finding:
    """Located at the model's class (the checkpoint was saved from a wrapper of it) or, when the model's
    own keys carry the prefix, at the line that wraps (`self.module = ...`)."""
    p = fix.prefix
    if fix.mode == "strip":
        message = f"the checkpoint's keys carry the prefix `{p}` ({_origin(p)}); the model's do not"
        how = (
            f"Strip it before loading: `torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(sd, "
            f'"{p}")` (next time, save the unwrapped model: `model.{p[:-1]}.state_dict()`).'
        )
    else:
        message = f"the model's keys carry the prefix `{p}` ({_origin(p)}); the checkpoint's do not"
        how = (
            f'Add it before loading: `sd = {{"{p}" + k: v for k, v in sd.items()}}`, or load into the '
            f"wrapped module (e.g. `model.{p.rstrip('.')}.load_state_dict(sd)`)."
        )
    return ctx.finding(
        Rule.KEY_PREFIX,
        severity,
        message,
        how,
        location=ctx.build.location_of(p[:-1]) if fix.mode == "add" else ctx.build.locations.get(""),
        prefix=p,
        mode=fix.mode,
        keys_matched=fix.count,
    )


def _origin(prefix: str) -> str:
    known = {
        "module": "DataParallel/DistributedDataParallel",
        "_orig_mod": "torch.compile",
        "model": "a Lightning module or wrapper",
    }
    origins = [known[part] for part in prefix.rstrip(".").split(".") if part in known]
    return " + ".join(origins) if origins else "a wrapper module"


def wrong_container(ctx: Context, used: str, found: str, known: Sequence[str], loads: bool) -> Finding:
    used_text = f"under `{used}`" if used else "at the top level"
    if loads:
        message = f"the state dict is not {used_text} of the file; it sits under `{found}`"
    else:
        message = f"nothing loadable {used_text} of the file; the closest match is under `{found}`"
    access = "".join(f'["{part}"]' for part in found.split(".")) if found else ""
    key = found or '""'
    fix = (
        f"Load `torch.load(path){access}` and set `key: {key}` for this checkpoint in ckaudit.yaml"
        f" (state-dict candidates in the file: {', '.join(repr(k) for k in known) or 'none'})."
    )
    return ctx.finding(
        Rule.WRONG_CONTAINER_KEY,
        Severity.ERROR,
        message,
        fix,
        location=ctx.build.locations.get(""),
        used=used,
        found=found,
        candidates=list(known),
    )


def no_state_dict(ctx: Context, used: str) -> Finding:
    where = f"under `{used}`" if used else "anywhere"
    return ctx.finding(
        Rule.WRONG_CONTAINER_KEY,
        Severity.ERROR,
        f"no state dict (mapping of tensors) {where} in the file",
        "Point `key:` in ckaudit.yaml at the mapping that holds the model's tensors, "
        "or re-save the checkpoint with `torch.save(model.state_dict(), path)`.",
        used=used,
        candidates=[],
    )


def missing_classes(ctx: Context, unresolved: Mapping[str, str]) -> list[Finding]:
    findings = []
    for name, reason in unresolved.items():
        module, _, attr = name.rpartition(".")
        if module == "__main__":
            fix = (
                f"`{attr}` was pickled from a script's __main__: import or define it in the loading script "
                "before torch.load, or re-save with the class in an importable module (better: save only "
                "state dicts and plain values)."
            )
        else:
            fix = (
                f"Restore `{attr}` in `{module}` (an alias is enough: `{attr} = NewName`), or re-save the "
                "checkpoint without pickled objects (state dicts and plain values only)."
            )
        findings.append(
            ctx.finding(
                Rule.MISSING_CLASS,
                Severity.ERROR,
                f"the file pickles `{name}`, which the current code lacks: {reason}",
                fix,
                location=ctx.build.locations.get(""),
                global_name=name,
                reason=reason,
            )
        )
    return findings
