"""`unsafe-pickle` and `weights-only-blocked` from the globals the pickle names and calls (fail closed).

The reader classifies (ckaudit/reader/safety.py); this turns its verdict into findings. A global the pickle
calls that is not inert is only ever `unsafe-pickle`, and its fix never offers a line that would let it
load: it says why the file is dangerous and how to get a plain state dict out of a trusted copy. The
`add_safe_globals` line is printed for inert names only (torch's allowlist aside: ckaudit's data-only list
and the registry's `trusted_globals`), and not at all for a file that is unsafe. Pickle opcodes that torch's
weights_only unpickler refuses (the reader lists them in `details`) block the default load too.
"""

from __future__ import annotations

from collections.abc import Iterable

from ckaudit.files.file_finding import file_finding
from ckaudit.findings import Finding, Rule
from ckaudit.reader import (
    UNPROVEN,
    UNSAFE_FIX,
    CheckpointInfo,
    GlobalsVerdict,
    allow_line,
    classify_globals,
    is_unresolved,
    runs_code,
)

_SHOWN = 8
_RESAVE = "re-save it as a plain state dict (`torch.save(model.state_dict(), path)`) or safetensors"
_TORCHSCRIPT_FIX = (
    "torch.load(weights_only=True) refuses every TorchScript archive: load it with `torch.jit.load(path)` "
    "(or re-save the weights with `torch.save(model.state_dict(), path)`)"
)


def _torchscript_classes(info: CheckpointInfo) -> list[str]:
    """In a TorchScript archive, `__torch__.*` names are classes compiled from the archive's own TorchScript
    code by torch.jit.load's unpickler, never Python imports: not code a pickle can run."""
    if info.format != "torchscript":
        return []
    return [name for name in info.globals if name.startswith("__torch__.")]


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def safety_findings(
    rel_path: str, info: CheckpointInfo, model: str | None, *, trusted: Iterable[str] = ()
) -> list[Finding]:
    """unsafe-pickle and weights-only-blocked findings from the globals and calls the file's pickles name
    (TorchScript's own classes and the registry's `trusted:` allowed)."""
    script_classes = _torchscript_classes(info)
    verdict = classify_globals(info.globals, info.calls, [*trusted, *script_classes])
    opcodes = list(info.details.get("opcodes_outside_weights_only") or ())
    findings = []
    if verdict.unsafe:
        findings.append(_unsafe_finding(rel_path, model, verdict))
    if verdict.blocked and verdict.blocked != verdict.unsafe:
        blocked = [n for n in verdict.blocked if n not in verdict.unsafe]
        fix = _blocked_fix(verdict, blocked, allow=not opcodes, torchscript=bool(script_classes))
        message = f"torch.load(weights_only=True) refuses {_listed(blocked)}"
        findings.append(
            _finding(Rule.WEIGHTS_ONLY_BLOCKED, rel_path, model, message, fix, {"blocked": blocked})
        )
    if opcodes:
        findings.append(
            _finding(
                Rule.WEIGHTS_ONLY_BLOCKED,
                rel_path,
                model,
                f"torch.load(weights_only=True) refuses the pickle opcodes {_listed(opcodes)}",
                UNSAFE_FIX
                if verdict.unsafe
                else f"Load it once with weights_only=False only if you trust it, and {_RESAVE}",
                {"opcodes": opcodes},
            )
        )
    return findings


def _unsafe_finding(rel_path: str, model: str | None, verdict: GlobalsVerdict) -> Finding:
    unsafe = list(verdict.unsafe)
    unproven = [n.removeprefix(UNPROVEN + ".") for n in unsafe if n.startswith(UNPROVEN + ".")]
    named = [n for n in unsafe if not n.startswith(UNPROVEN + ".")]
    parts = [f"the pickle can run code on load: {_listed(named)}"] if named else []
    parts += [f"cannot prove inert: {reason}" for reason in unproven[:2]]
    details: dict[str, list[str]] = {"unsafe": unsafe}
    fix = UNSAFE_FIX
    trustable = [n for n in named if not is_unresolved(n) and not runs_code(n)]
    if trustable and trustable == unsafe:
        details["trusted_globals_hint"] = trustable
        fix += (
            " If this is your own or your framework's file (a Trainer's training_args.bin, say) and you "
            "accept these classes knowingly, trust exactly them in ckaudit.yaml: `trusted_globals: ["
            + ", ".join(trustable)
            + "]`"
        )
    return _finding(Rule.UNSAFE_PICKLE, rel_path, model, "; ".join(parts), fix, details)


def _blocked_fix(verdict: GlobalsVerdict, blocked: list[str], *, allow: bool, torchscript: bool) -> str:
    """The allow line only when every blocked name is inert, nothing is unsafe, and (`allow`) the pickle
    uses no opcode torch refuses whatever is allowed."""
    if verdict.unsafe:
        return f"The file also holds code that runs on load (see unsafe-pickle). {UNSAFE_FIX}"
    if torchscript:
        return _TORCHSCRIPT_FIX
    if not allow:
        return (
            "add_safe_globals alone cannot make it load: torch's weights_only unpickler also refuses how the "
            f"pickle builds some objects. If you trust the file, {_RESAVE} with plain containers"
        )
    line = allow_line(verdict, [])
    if line:
        pasteable = "; ".join(line.splitlines())
        return f"If you trust the file, allow them before torch.load: `{pasteable}`; or {_RESAVE}"
    unknown = [n for n in blocked if n not in verdict.fixable]
    return (
        f"ckaudit cannot tell that {_listed(unknown)} only hold data, so it prints no add_safe_globals "
        f"line for them. If they are your repository's own classes, list them in `trusted_globals:`; "
        f"otherwise {_RESAVE} from a trusted copy"
    )


def _finding(
    rule: Rule, rel_path: str, model: str | None, message: str, fix: str, details: dict[str, list[str]]
) -> Finding:
    return file_finding(rule, rel_path, f"{rel_path}: {message}", fix, details, model=model)
