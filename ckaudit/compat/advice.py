"""Findings about keys: missing, unexpected, resized, renamed — with advice that has been checked.

Every `ignore:` glob printed here matches exactly the keys it names among all keys of the model and the
file (`exact_globs`), so following the advice never silences a key that loads fine. Resized tensors are one
finding per module group (`blocks.{0..11}`), not one per key; the JSON details keep every key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from ckaudit.compat.diagnosis import Context, Mismatch, Problems, dims, shown
from ckaudit.compat.fixcode import collapsed_moves, rename_code
from ckaudit.compat.keyfix import collapsed_renames, exact_globs
from ckaudit.compat.renames import Ambiguity
from ckaudit.compat.ways import EXPECT_FAILS
from ckaudit.findings import Finding, Rule, Severity
from ckaudit.keyranges import collapse_keys, collapse_rows

_SEPARATE_GROUPS = 2  # more resized module groups than this read as one change: one finding for all
_SHOWN_PAIRS = 6
_SHOWN_PER_MODULE = 3  # a layer with at most this many resized tensors is worded in one line


def key_findings(
    ctx: Context,
    problems: Problems,
    strict: bool,
    universe: Iterable[str],
    named: Mapping[str, str],
    shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> list[Finding]:
    """missing-keys, unexpected-keys, shape-mismatch and hook errors for what is left after the explained.

    `named` maps a key as the dry run saw it back to its name in the file (after a proposed rename);
    `shapes` are the checkpoint's tensors' shapes (by the names the dry run saw): `missing_keys` needs
    them to tell keys the checkpoint may hold under another name.
    """
    findings: list[Finding] = []
    severity = Severity.ERROR if strict else Severity.NOTE
    every = list(universe)
    if problems.missing:
        known = shapes or {}
        unused = {tuple(known[k]) for k in problems.unexpected if k in known}
        findings.append(missing_keys(ctx, problems.missing, severity, every, unused))
    if problems.unexpected:
        in_file = [named.get(k, k) for k in problems.unexpected]
        findings.append(unexpected_keys(ctx, in_file, severity, every))
    findings.extend(shape_mismatches(ctx, problems.size_mismatch))
    findings.extend(
        ctx.finding(
            Rule.MODEL_ERROR,
            Severity.ERROR,
            f"load_state_dict failed in the model's own load code: {text.splitlines()[0] if text else text}",
            "Fix the model's load hook "
            "(_load_from_state_dict / load_state_dict pre-hooks) or the checkpoint it rejects.",
            location=ctx.build.locations.get(""),
            error=text,
        )
        for text in problems.other_errors
    )
    return findings


def missing_keys(
    ctx: Context,
    keys: Sequence[str],
    severity: Severity,
    universe: Sequence[str],
    unused_shapes: Iterable[tuple[int, ...]] = (),
) -> Finding:
    """`ignore:` is advised only for keys the checkpoint cannot hold under another name: a missing key
    whose shape an unused tensor of the file has would start from fresh initialisation if ignored, while
    its weights may be right there (a rename nothing could pair by name)."""
    unused = set(unused_shapes)
    shadowed = [k for k in keys if k in ctx.build.signature and tuple(ctx.build.signature[k].shape) in unused]
    if shadowed:
        fix, globs = _shadowed_fix(keys, shadowed, universe)
    else:
        globs = exact_globs(keys, universe)
        fix = _missing_fix(ctx, keys, globs)
    finding = ctx.finding(
        Rule.MISSING_KEYS,
        severity,
        f"{len(keys)} key(s) missing from the checkpoint: {shown(keys)}",
        fix,
        layer=keys[0],
        keys=list(keys),
        collapsed=collapse_keys(keys),
        ignore=globs,
    )
    if not shadowed:
        return finding
    return replace(finding, details={**finding.details, "same_shape_in_checkpoint": shadowed})


def _missing_fix(ctx: Context, keys: Sequence[str], globs: Sequence[str]) -> str:
    if all(ctx.build.signature[k].buffer for k in keys if k in ctx.build.signature):
        return (
            "The model registers these buffers but the checkpoint lacks them. If they are computed in "
            "__init__ (a mask, a position table), register them with `persistent=False` so state dicts "
            f"leave them out; else allow them with `ignore: {_yaml_list(globs)}`, or {EXPECT_FAILS}."
        )
    return (
        "The model defines these but the checkpoint lacks them. If they may start from their initial "
        f"values, load with strict=False (registry: `ignore: {_yaml_list(globs)}`); otherwise re-save "
        f"the checkpoint from the new code, or {EXPECT_FAILS}."
    )


def _shadowed_fix(
    keys: Sequence[str], shadowed: Sequence[str], universe: Sequence[str]
) -> tuple[str, list[str]]:
    """The advice when some missing keys may be in the file under other names; globs for the rest only."""
    rest = [k for k in keys if k not in set(shadowed)]
    globs = exact_globs(rest, universe) if rest else []
    only = f" Only the others may start fresh: `ignore: {_yaml_list(globs)}`." if globs else ""
    fix = (
        f"{len(shadowed)} of these ({shown(shadowed)}) have the shape of tensors the checkpoint holds under "
        "names the model does not use: they may be the same weights renamed. Do not ignore them (they would "
        "be initialised fresh); map the checkpoint's names to them with `load: {rename: {OLD: NEW}}` in "
        f"ckaudit.yaml, or re-save the checkpoint from the new code, or {EXPECT_FAILS}.{only}"
    )
    return fix, globs


def unexpected_keys(
    ctx: Context, keys: Sequence[str], severity: Severity, universe: Sequence[str]
) -> Finding:
    globs = exact_globs(keys, universe)
    fix = (
        "The checkpoint has entries the model no longer defines. Drop them before loading "
        f"(`sd = {{k: v for k, v in sd.items() if k not in UNUSED}}`), allow them with "
        f"`ignore: {_yaml_list(globs)}`, or {EXPECT_FAILS}."
    )
    return ctx.finding(
        Rule.UNEXPECTED_KEYS,
        severity,
        f"{len(keys)} unexpected key(s) in the checkpoint: {shown(keys)}",
        fix,
        layer=keys[0],
        keys=list(keys),
        collapsed=collapse_keys(keys),
        ignore=globs,
    )


def _yaml_list(globs: Sequence[str]) -> str:
    shown_globs = globs[:4]
    more = f", … {len(globs) - 4} more" if len(globs) > 4 else ""
    return "[" + ", ".join(f'"{g}"' for g in shown_globs) + more + "]"


def shape_mismatches(ctx: Context, mismatches: Sequence[Mismatch]) -> list[Finding]:
    """One finding per resized module group; everything in one when many groups changed (a width)."""
    if not mismatches:
        return []
    groups: dict[str, list[Mismatch]] = {}
    for pattern, rows in _by_group(mismatches):
        groups.setdefault(pattern, []).extend(rows)
    if len(groups) > _SEPARATE_GROUPS:
        names = ", ".join(list(groups)[:3]) + (", …" if len(groups) > 3 else "")
        return [_resized(ctx, list(mismatches), f"{len(groups)} modules ({names})")]
    return [_resized_together(ctx, together) for together in _one_change(groups)]


def _changed_dims(rows: Sequence[Mismatch]) -> set[tuple[int, int]]:
    """The (checkpoint, model) sizes of the dimensions that differ, where the ranks agree."""
    return {
        (c, m)
        for _, ckpt, model in rows
        if len(ckpt) == len(model)
        for c, m in zip(ckpt, model, strict=True)
        if c != m
    }


def _one_change(groups: Mapping[str, list[Mismatch]]) -> list[dict[str, list[Mismatch]]]:
    """Module groups resized by the same dimension change (a `width` 64 -> 128 that flows into two layers)
    belong together: one finding. Groups that share no changed size stay apart."""
    merged: list[tuple[set[tuple[int, int]], dict[str, list[Mismatch]]]] = []
    for name, rows in groups.items():
        dims_changed = _changed_dims(rows)
        home = next((m for m in merged if dims_changed and m[0] & dims_changed), None)
        if home is None:
            merged.append((set(dims_changed), {name: rows}))
        else:
            home[0].update(dims_changed)
            home[1][name] = rows
    return [members for _, members in merged]


def _resized_together(ctx: Context, together: Mapping[str, list[Mismatch]]) -> Finding:
    if len(together) == 1:
        name, rows = next(iter(together.items()))
        return _resized(ctx, rows, name)
    rows = [row for members in together.values() for row in members]
    each = [_changed_dims(members) for members in together.values()]
    change = ", ".join(f"{c} -> {m}" for c, m in sorted(set.intersection(*each) or set.union(*each)))
    names = ", ".join(together)
    finding = _resized(ctx, rows, f"{len(together)} layers ({names})")
    message = f"{len(rows)} tensors in {len(together)} layers ({names}) resized by one change: {change}"
    others = [
        loc for name in list(together)[1:] if (loc := ctx.build.location_of(next(iter(together[name]))[0]))
    ]
    layers = [{"path": loc.path, "line": loc.line, "snippet": loc.snippet} for loc in others]
    return replace(finding, message=message, details={**finding.details, "also_at": layers})


def _by_group(mismatches: Sequence[Mismatch]) -> list[tuple[str, list[Mismatch]]]:
    """(group name, rows): the collapsed key cut after its first index range, else the key's module."""
    by_key = {key: (key, ckpt, model) for key, ckpt, model in mismatches}
    out: list[tuple[str, list[Mismatch]]] = []
    for pattern, _, _ in collapse_rows((key, 0) for key in by_key):
        parts = _parts(pattern)
        cut = next((i + 1 for i, p in enumerate(parts) if p.startswith("{")), max(len(parts) - 1, 1))
        members = [row for key, row in by_key.items() if _member(key, pattern)]
        out.append((".".join(parts[:cut]), members))
    return out


def _parts(pattern: str) -> list[str]:
    """Dotted parts of a collapsed key; a range such as `{0..11}` is one part."""
    return re.findall(r"\{[^}]*\}|[^.]+", pattern)


def _member(key: str, pattern: str) -> bool:
    a, b = key.split("."), _parts(pattern)
    return len(a) == len(b) and all(
        x == y or (y.startswith("{") and x.isdigit()) for x, y in zip(a, b, strict=True)
    )


def _resized(ctx: Context, rows: list[Mismatch], name: str) -> Finding:
    where = ctx.build.location_of(rows[0][0])
    if len(rows) == 1:
        key, ckpt, model = rows[0]
        return ctx.finding(
            Rule.SHAPE_MISMATCH,
            Severity.ERROR,
            f"{key}: {dims(ckpt)} in the checkpoint, {dims(model)} in the model",
            f"The layer was resized: restore the definition that gives {dims(ckpt)}, re-save the "
            f"checkpoint from the new model, or {EXPECT_FAILS}.",
            location=where,
            key=key,
            checkpoint_shape=list(ckpt),
            model_shape=list(model),
        )
    pairs = {dims(c) + " -> " + dims(m) for _, c, m in rows}
    module = {key.rpartition(".")[0] for key, _, _ in rows}
    if len(module) == 1 and len(rows) <= _SHOWN_PER_MODULE:  # one layer: say every shape in the message
        shapes = ", ".join(f"{k} {dims(c)} -> {dims(m)}" for k, c, m in rows)
        message = f"{module.pop()} resized (checkpoint -> model): {shapes}"
    else:
        change = next(iter(pairs)) if len(pairs) == 1 else f"{len(pairs)} shape changes"
        message = f"{len(rows)} tensors resized in {name} ({change})"
    return ctx.finding(
        Rule.SHAPE_MISMATCH,
        Severity.ERROR,
        message,
        f"Restore the old sizes, re-save or convert the checkpoint, or {EXPECT_FAILS}.",
        location=where,
        mismatches=[{"key": k, "checkpoint_shape": list(c), "model_shape": list(m)} for k, c, m in rows],
    )


def renamed_keys(
    ctx: Context,
    renames: Mapping[str, str],
    moves: Mapping[str, str],
    ambiguous: Sequence[Ambiguity],
    keys: Iterable[str],
) -> Finding:
    """`moves` (from `module_renames`) is what the message, the fix and the dry run use; `renames` the
    per-key map they reproduce; `keys` every key of the checkpoint (the printed code is checked on them).
    Ambiguous groups are shown as competing keys, never as a pairing."""
    if moves:
        short = collapsed_moves(moves)
        listing = ", ".join(f"{old} -> {new}" for old, new in list(short.items())[:_SHOWN_PAIRS])
        more = f", … ({len(short) - _SHOWN_PAIRS} more)" if len(short) > _SHOWN_PAIRS else ""
        message = f"layers renamed: {listing}{more}"
        fix = f"Rename the keys when loading: {rename_code(moves, renames, keys)}, or {EXPECT_FAILS}."
        where = ctx.build.location_of(next(iter(moves.values())))
    else:
        count = sum(len(g.checkpoint) for g in ambiguous)
        message = f"{count} key(s) look renamed, but the pairing is ambiguous (same shapes, names unclear)"
        fix = ""
        where = ctx.build.location_of(ambiguous[0].model[0]) if ambiguous and ambiguous[0].model else None
    if ambiguous:
        fix += (
            " Ambiguous: the keys under `ambiguous` have equal shapes and a dry run cannot tell which "
            "pairs belong together; pair them by hand (the library's conversion code, if any, is the "
            "truth). No map is proposed for them."
        )
    details: dict[str, object] = {
        "modules": dict(moves),
        "renames": collapsed_renames(renames),
        "keys_renamed": len(renames),
    }
    if ambiguous:
        details["ambiguous"] = [{"checkpoint": list(g.checkpoint), "model": list(g.model)} for g in ambiguous]
    finding = ctx.finding(Rule.RENAMED_KEYS, Severity.ERROR, message, fix.strip(), location=where)
    return replace(finding, details=details)
