"""Error text (a traceback, a CI log, a bug report) -> the cause, the rule and the fix.

Torch words the same problem differently depending on `weights_only`: an LFS pointer is `invalid load key,
'v'` with weights_only=False and `Unsupported operand 118` (ord('v')) with the default; an HTML page is `'<'`
or operand 60. Patterns are grouped: within a group (what stopped `torch.load`) the first, most specific match
wins; size mismatches and key lists are their own groups and can co-occur. A checkpoint path named in the text
that exists here is read with the torch-free reader, and a broken file adds its own finding.

Exit status (`ckaudit explain`): 1 when a cause was found at error level, 0 when the text matched nothing
known (verdict `unknown`) or only warnings, 2 when the input cannot be read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from ckaudit.compat import PrefixFix, collapse_keys, find_prefix
from ckaudit.explain.torch_wordings import HISTORICAL_LOAD, by_meaning, key_lists, size_mismatches
from ckaudit.findings import Finding, Location, Rule, Severity, verdict_of
from ckaudit.reader import (
    UNSAFE_FIX,
    CheckpointReadError,
    classify_globals,
    read_checkpoint,
    safe_globals_fix,
)
from ckaudit.tracebacks import frames

_CONTAINER_KEYS = {
    "state_dict",
    "model_state_dict",
    "model",
    "module",
    "net",
    "state_dict_ema",
    "model_ema",
    "optimizer",
    "optimizer_state_dict",
    "epoch",
    "ema",
    "args",
    "config",
    "scheduler",
}
_CHECKPOINT_PATH = re.compile(
    r"""(?<![\w/.~-])((?:~|\.{1,2})?[\w./~-]*\.(?:pt|pth|ckpt|bin|safetensors|tar|pkl))\b"""
)
_WRAPPERS = ("module.", "_orig_mod.")


@dataclass(frozen=True)
class Explanation:
    verdict: str  # "code" | "repository" | "environment" | "unknown"
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class _Pattern:
    rule: Rule
    regex: re.Pattern[str]
    message: Callable[[re.Match[str]], str]
    fix: Callable[[re.Match[str]], str]


def _p(
    rule: Rule,
    regex: str,
    message: str | Callable[[re.Match[str]], str],
    fix: str | Callable[[re.Match[str]], str],
) -> _Pattern:
    return _Pattern(rule, re.compile(regex, re.MULTILINE | re.IGNORECASE), _constant(message), _constant(fix))


def _constant(value: str | Callable[[re.Match[str]], str]) -> Callable[[re.Match[str]], str]:
    if callable(value):
        return value

    def text(match: re.Match[str]) -> str:
        return value

    return text


# torch words a refused global two ways: allowlist miss, or a module it blocks outright (os, posix, ...)
# (1.13-2.3 said "Unsupported class x")
_BLOCKED_GLOBAL = re.compile(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL|Unsupported class) ([\w.]+)")


def _weights_only(match: re.Match[str]) -> str:
    names = sorted(set(re.findall(_BLOCKED_GLOBAL, match.string)))
    return ", ".join(names) or "a global outside the allowlist"


def _safe_globals_fix(match: re.Match[str]) -> str:
    """The allow line for inert names only; torch names one global at a time and the log does not say
    whether the pickle calls it, so every name is judged as called (fail closed)."""
    names = sorted(set(re.findall(_BLOCKED_GLOBAL, match.string)))
    verdict = classify_globals(names, calls=names)
    if verdict.unsafe:
        return f"`{', '.join(verdict.unsafe)}` can run code: never allow it. {UNSAFE_FIX}"
    if not names:
        return (
            "Re-save it as a plain state dict or safetensors from a trusted copy. Never switch to "
            "weights_only=False for an untrusted file."
        )
    line = "; ".join(safe_globals_fix(names).splitlines())
    return (
        f"If you trust the file: `{line}` before torch.load; better, re-save it as a plain state dict or "
        "safetensors. Never switch to weights_only=False for an untrusted file."
    )


def _missing_class_message(match: re.Match[str]) -> str:
    return f"the pickle names `{match.group(2)}.{match.group(1)}`, which the current code lacks"


# What stopped torch.load: the first match wins.
LOAD_PATTERNS = (
    _p(
        Rule.LFS_POINTER,
        r"invalid load key, 'v'|Unsupported operand 118\b",
        "the file is a Git LFS pointer (it starts with `version https://git-lfs…`), not the checkpoint",
        "Fetch the content: `git lfs pull` (in CI: `actions/checkout` with `lfs: true`).",
    ),
    _p(
        Rule.NOT_A_CHECKPOINT,
        r"invalid load key, '<'|Unsupported operand 60\b",
        "the file is an HTML page (a login or error page saved instead of the download), not a checkpoint",
        "Download it again with authentication (or the direct file URL) and compare its size and sha256.",
    ),
    _p(
        Rule.TRUNCATED,
        r"failed finding central directory|failed reading zip archive",
        "the zip archive ends early: torch finds no central directory (an interrupted download or copy)",
        "Fetch or copy the file again and compare its size and sha256 with the original.",
    ),
    _p(
        Rule.TRUNCATED,
        r"Ran out of input|unexpected EOF|pickle data was truncated|^EOFError:?\s*$|"
        r"MetadataIncompleteBuffer",
        "the file ends before its own structure says it should (empty or cut short)",
        "Fetch or copy the file again and compare its size and sha256 with the original.",
    ),
    _p(
        Rule.DEVICE,
        r"Attempting to deserialize object on (?:a CUDA|an? \w+) device",
        "the storages were saved on a GPU device this machine does not have",
        'Load with `torch.load(path, map_location="cpu")` (or the device you have).',
    ),
    _p(
        Rule.MISSING_CLASS,
        r"Can't get attribute '([^']+)' on <module '([^']+)'",
        _missing_class_message,
        lambda m: (
            f"Restore `{m.group(1)}` in `{m.group(2)}` (an alias is enough), or re-save the checkpoint "
            "as a plain state dict."
        ),
    ),
    _p(
        Rule.WEIGHTS_ONLY_BLOCKED,
        r"Weights only load failed",
        lambda m: f"torch.load(weights_only=True) refuses the file: {_weights_only(m)}",
        _safe_globals_fix,
    ),
    _p(
        Rule.FILE_MISSING,
        r"No such file or directory: '([^']+)'",
        lambda m: f"{m.group(1)} does not exist where the code looked for it",
        "Check the path (relative to the working directory), restore the file, or fetch it (git lfs, DVC).",
    ),
    _p(
        Rule.NOT_A_CHECKPOINT,
        r"HeaderTooLarge|InvalidHeaderDeserialization|is not a zip file",
        "the content is not the checkpoint format its loader expected",
        "Download or copy the real file again.",
    ),
    _p(
        Rule.CORRUPT,
        r"invalid load key|unpickling stack underflow|CRC-32|file read failed|invalid header",
        "the checkpoint's structure is damaged",
        "Fetch or re-save the file; compare its sha256 with the original.",
    ),
)
# Older torch's wordings first: they are the more specific (a device count, an archive version).
_ALL_LOAD_PATTERNS = (
    *(_p(w.rule, w.regex.pattern, w.message, w.fix) for w in HISTORICAL_LOAD),
    *LOAD_PATTERNS,
)
_NO_MODULE = re.compile(r"No module named '([^']+)'")
_UNPICKLING = re.compile(r"serialization\.py|pickle|find_class|torch\.load", re.IGNORECASE)


def explain_text(text: str, cwd: Path) -> Explanation:
    """What an error text (a traceback, a CI log) points to: findings for the load errors, size mismatches,
    key lists and file errors torch prints, at the last frame of the user's code found under `cwd`."""
    frame = _last_user_frame(text, cwd)
    findings = [*_load_findings(text, frame), *_size_findings(text, frame), *_key_findings(text, frame)]
    if not findings:
        findings = list(_meaning_findings(text, frame))
    for found in _file_findings(text, cwd):
        same = next(
            (i for i, f in enumerate(findings) if f.rule is found.rule and f.checkpoint is None), None
        )
        if same is None:
            findings.append(found)
        else:  # the text and the file agree: one finding, naming the file
            findings[same] = replace(findings[same], checkpoint=found.checkpoint)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    verdict = verdict_of(errors).value if errors else "unknown"
    return Explanation(verdict if verdict != "ok" else "unknown", tuple(findings))


def _finding(rule: Rule, message: str, fix: str, location: Location | None, **details: object) -> Finding:
    return Finding(
        rule=rule, severity=Severity.ERROR, message=message, location=location, fix=fix, details=details
    )


def _load_findings(text: str, frame: Location | None) -> Iterator[Finding]:
    for pattern in _ALL_LOAD_PATTERNS:
        match = pattern.regex.search(text)
        if match:
            yield _finding(
                pattern.rule, pattern.message(match), pattern.fix(match), frame, matched=match.group(0)
            )
            return
    module = _NO_MODULE.search(text)
    if module:
        if _UNPICKLING.search(text):
            yield _finding(
                Rule.MISSING_CLASS,
                f"the pickle names module `{module.group(1)}`, which the current code lacks",
                f"Restore or alias the module `{module.group(1)}`, or re-save the "
                "checkpoint as a plain state dict.",
                frame,
                module=module.group(1),
            )
        else:
            yield _finding(
                Rule.MODEL_ERROR,
                f"the model code cannot be imported: no module named `{module.group(1)}`",
                "Install the missing package in the project's interpreter, or fix the import.",
                frame,
                module=module.group(1),
            )


def _size_findings(text: str, frame: Location | None) -> Iterator[Finding]:
    for key, saved, wanted in size_mismatches(text):
        yield _finding(
            Rule.SHAPE_MISMATCH,
            f"{key}: [{saved}] in the checkpoint, [{wanted}] in the model",
            "The layer changed shape since the checkpoint was saved: restore the definition, "
            "convert the checkpoint, or run `ckaudit diagnose CHECKPOINT --model ...` for the line.",
            frame,
            key=key,
            checkpoint_shape=[int(d) for d in saved.split(", ") if d],
            model_shape=[int(d) for d in wanted.split(", ") if d],
        )


def _key_findings(text: str, frame: Location | None) -> Iterator[Finding]:
    missing, unexpected = key_lists(text)
    if unexpected and set(unexpected) <= _CONTAINER_KEYS:
        found = next(
            (k for k in unexpected if "state_dict" in k or k in ("model", "net", "module")), unexpected[0]
        )
        yield _finding(
            Rule.WRONG_CONTAINER_KEY,
            f"a whole training checkpoint was passed to load_state_dict (its keys: {', '.join(unexpected)})",
            f'Load the state dict inside it: `model.load_state_dict(torch.load(path)["{found}"])`.',
            frame,
            found=found,
        )
        return
    prefix = find_prefix(missing, unexpected) or _wrapper_prefix(missing, unexpected)
    if prefix is not None and prefix.count >= max(1, len(missing) // 2):
        how = (
            f'`torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(sd, "{prefix.prefix}")`'
            if prefix.mode == "strip"
            else f'`sd = {{"{prefix.prefix}" + k: v for k, v in sd.items()}}`'
        )
        whose = "checkpoint's" if prefix.mode == "strip" else "model's"
        yield _finding(
            Rule.KEY_PREFIX,
            f"the {whose} keys carry the prefix `{prefix.prefix}`",
            f"{how} before load_state_dict.",
            frame,
            prefix=prefix.prefix,
            mode=prefix.mode,
        )
        return
    for rule, keys, what in (
        (Rule.MISSING_KEYS, missing, "missing from the checkpoint"),
        (Rule.UNEXPECTED_KEYS, unexpected, "unexpected in the checkpoint"),
    ):
        if keys:
            yield _finding(
                rule,
                f"{len(keys)} key(s) {what}: {', '.join(collapse_keys(keys)[:8])}",
                "The model and the checkpoint disagree on layers: run `ckaudit diagnose CHECKPOINT "
                "--model ...` for renames, the defining lines and the fix.",
                frame,
                keys=keys,
            )


def _wrapper_prefix(missing: list[str], unexpected: list[str]) -> PrefixFix | None:
    """torch 0.3 raised on the first unexpected key alone: `module.` on it still names the wrapper."""
    for wrapper in _WRAPPERS:
        if unexpected and not missing and all(k.startswith(wrapper) for k in unexpected):
            return PrefixFix("strip", wrapper, len(unexpected))
    return None


def _meaning_findings(text: str, frame: Location | None) -> Iterator[Finding]:
    """No exact wording matched: a title or paraphrase whose words still name the failure."""
    for rule, reads_as in by_meaning(text):
        yield _finding(
            rule,
            f"the text reads as {reads_as} (matched by its words, not by torch's exact message)",
            rule.info.help,
            frame,
        )


def _last_user_frame(text: str, cwd: Path) -> Location | None:
    """The innermost traceback frame outside site-packages and the standard library: the user's load call."""
    user = [(p, n) for p, n in frames(text) if "site-packages" not in p and "/lib/python" not in p]
    if not user:
        return None
    path, line = user[-1]
    try:
        shown = Path(path).resolve().relative_to(cwd.resolve()).as_posix()
    except (ValueError, OSError):
        shown = path
    return Location(shown, line)


def _file_findings(text: str, cwd: Path) -> Iterator[Finding]:
    """Checkpoints named in the text that exist here, read by the torch-free reader."""
    for name in dict.fromkeys(_CHECKPOINT_PATH.findall(text)):
        path = Path(name).expanduser()
        path = path if path.is_absolute() else cwd / path
        if not path.is_file() and not path.is_dir():
            continue
        try:
            read_checkpoint(path)
        except CheckpointReadError as exc:
            yield Finding(
                rule=exc.rule,
                severity=Severity.ERROR,
                message=f"{name}: {exc.message}",
                checkpoint=name,
                location=Location(name),
                fix=exc.rule.info.help,
                details=dict(exc.details),
            )
