"""`unsafe-pickle` and `weights-only-blocked` from the globals the pickle names (allowlist, fail closed).

The reader classifies; this turns its verdict into findings. Globals that can run code are only ever
reported as `unsafe-pickle`: the `add_safe_globals` fix never offers to allow them. Pickle opcodes that
torch's weights_only unpickler refuses (the reader lists them in `details`) block the default load too.
"""

from __future__ import annotations

from ckaudit.files.file_finding import file_finding
from ckaudit.findings import Finding, Rule
from ckaudit.reader.safety import classify_globals, safe_globals_fix
from ckaudit.reader.types import CheckpointInfo

_SHOWN = 8
_RESAVE = "re-save it as a plain state dict (`torch.save(model.state_dict(), path)`) or safetensors"


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def safety_findings(rel_path: str, info: CheckpointInfo, model: str | None) -> list[Finding]:
    verdict = classify_globals(info.globals)
    findings = []
    if verdict.unsafe:
        unsafe = list(verdict.unsafe)
        findings.append(
            _finding(
                Rule.UNSAFE_PICKLE,
                rel_path,
                model,
                f"the pickle can run code on load: {_listed(unsafe)}",
                "Never load it with weights_only=False. Get the tensors from a trusted source and "
                + _RESAVE.replace("re-save it", "save them"),
                {"unsafe": unsafe},
            )
        )
    if verdict.fixable:
        fixable = list(verdict.fixable)
        allow = "; ".join(safe_globals_fix(fixable).splitlines())
        findings.append(
            _finding(
                Rule.WEIGHTS_ONLY_BLOCKED,
                rel_path,
                model,
                f"torch.load(weights_only=True) refuses {_listed(fixable)}",
                f"If you trust the file, allow them before torch.load: `{allow}`; or {_RESAVE}",
                {"blocked": fixable},
            )
        )
    opcodes = list(info.details.get("opcodes_outside_weights_only") or ())
    if opcodes:
        findings.append(
            _finding(
                Rule.WEIGHTS_ONLY_BLOCKED,
                rel_path,
                model,
                f"torch.load(weights_only=True) refuses the pickle opcodes {_listed(opcodes)}",
                f"Load it once with weights_only=False only if you trust it, and {_RESAVE}",
                {"opcodes": opcodes},
            )
        )
    return findings


def _finding(
    rule: Rule, rel_path: str, model: str | None, message: str, fix: str, details: dict[str, list[str]]
) -> Finding:
    return file_finding(rule, rel_path, f"{rel_path}: {message}", fix, details, model=model)
