"""The vocabulary every layer shares: rules, causes, severities, findings, per-checkpoint results, reports."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def plural(count: int, word: str) -> str:
    """`1 checkpoint`, `2 checkpoints`: every count ckaudit prints to a person."""
    return f"{count} {word}{'' if count == 1 else 's'}"


class Cause(str, enum.Enum):
    """Why a checkpoint does not load. Declared in precedence order: when error findings of several causes
    meet, the repository beats the code, which beats the environment (`verdict_of`)."""

    REPOSITORY = "repository"
    CODE = "code"
    ENVIRONMENT = "environment"


class Severity(str, enum.Enum):
    """Declared from the mildest up: `rank` is the declaration order (note 0, warning 1, error 2)."""

    NOTE = "note"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank


_SEVERITY_ORDER = tuple(Severity)


class Verdict(str, enum.Enum):
    """A checkpoint's result: ok, or the cause that decided it, under the cause's own value (`of`). The
    member order is the order of the summary's counts (text and JSON)."""

    OK = "ok"
    CODE = Cause.CODE.value
    REPOSITORY = Cause.REPOSITORY.value
    ENVIRONMENT = Cause.ENVIRONMENT.value

    @classmethod
    def of(cls, cause: Cause) -> Verdict:
        """The verdict a cause decides (every cause has one: tests/test_findings.py)."""
        return cls(cause.value)


@dataclass(frozen=True)
class RuleInfo:
    id: str
    cause: Cause
    title: str
    help: str


class Rule(str, enum.Enum):
    """Stable rule ids: once published, an id never changes (SARIF results and ignores depend on it)."""

    FILE_MISSING = "file-missing"
    LFS_POINTER = "lfs-pointer"
    NOT_A_CHECKPOINT = "not-a-checkpoint"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    HASH_MISMATCH = "hash-mismatch"
    SIGNATURE_CHANGED = "signature-changed"
    NOT_TRACKED = "not-tracked"
    DANGLING_REFERENCE = "dangling-reference"
    LARGE_OUTSIDE_LFS = "large-outside-lfs"
    MISSING_KEYS = "missing-keys"
    UNEXPECTED_KEYS = "unexpected-keys"
    SHAPE_MISMATCH = "shape-mismatch"
    KEY_PREFIX = "key-prefix"
    WRONG_CONTAINER_KEY = "wrong-container-key"
    RENAMED_KEYS = "renamed-keys"
    DTYPE_CHANGE = "dtype-change"
    MISSING_CLASS = "missing-class"
    CONFIG_DRIFT = "config-drift"
    MODEL_ERROR = "model-error"
    WEIGHTS_ONLY_BLOCKED = "weights-only-blocked"
    UNSAFE_PICKLE = "unsafe-pickle"
    DEVICE = "device"
    TORCH_VERSION = "torch-version"
    PACKAGE_VERSION = "package-version"
    STALE_EXPECTATION = "stale-expectation"

    @property
    def info(self) -> RuleInfo:
        return RULES[self]

    @property
    def cause(self) -> Cause:
        return RULES[self].cause


def _rule(rule: Rule, cause: Cause, title: str, help: str) -> tuple[Rule, RuleInfo]:
    return rule, RuleInfo(rule.value, cause, title, help)


RULES: Mapping[Rule, RuleInfo] = dict(
    [
        _rule(
            Rule.FILE_MISSING,
            Cause.REPOSITORY,
            "Checkpoint file missing",
            "A registered checkpoint path does not exist. It may have been renamed or deleted in history, "
            "kept by DVC (a .dvc file beside it) or by Git LFS. Restore it, or update the registry.",
        ),
        _rule(
            Rule.LFS_POINTER,
            Cause.REPOSITORY,
            "Git LFS pointer instead of content",
            "The file is a Git LFS pointer, not the checkpoint. Run `git lfs pull` (in CI: checkout with "
            "`lfs: true`).",
        ),
        _rule(
            Rule.NOT_A_CHECKPOINT,
            Cause.REPOSITORY,
            "Not a checkpoint",
            "The content is no checkpoint format at all (an HTML error page, text, an empty file, a "
            "directory). Download or copy the real file again.",
        ),
        _rule(
            Rule.TRUNCATED,
            Cause.REPOSITORY,
            "Truncated checkpoint",
            "The file ends before its own structure says it should: an interrupted download or copy. "
            "Fetch it again and compare its size and sha256.",
        ),
        _rule(
            Rule.CORRUPT,
            Cause.REPOSITORY,
            "Corrupt checkpoint",
            "The file's structure or checksums are wrong (zip member CRC, pickle stream, safetensors "
            "header, storage sizes). Fetch or re-save it.",
        ),
        _rule(
            Rule.HASH_MISMATCH,
            Cause.REPOSITORY,
            "Checkpoint content changed",
            "The file's sha256 differs from the one in the registry: it is not the file that was "
            "registered. Restore it, or re-register it if the change is intended.",
        ),
        _rule(
            Rule.SIGNATURE_CHANGED,
            Cause.REPOSITORY,
            "Checkpoint differs from its locked signature",
            "The file's state-dict signature (keys, shapes, dtypes, `_metadata`, container key) differs from "
            "the one recorded in ckaudit.lock: the file was replaced. Or the lock records a checkpoint that "
            "is gone. Restore the file, or re-run `ckaudit register` to record the new one.",
        ),
        _rule(
            Rule.NOT_TRACKED,
            Cause.REPOSITORY,
            "Checkpoint not tracked by git",
            "The registered checkpoint exists here but is untracked or ignored, so a clone or CI will not "
            "have it. Add it (with Git LFS for large files) or fetch it in CI.",
        ),
        _rule(
            Rule.DANGLING_REFERENCE,
            Cause.REPOSITORY,
            "Code names a checkpoint that does not exist",
            "A string literal in the code names a checkpoint path that does not exist in the repository.",
        ),
        _rule(
            Rule.LARGE_OUTSIDE_LFS,
            Cause.REPOSITORY,
            "Large checkpoint committed outside Git LFS",
            "A large checkpoint is about to be committed as a plain git blob: every clone downloads it "
            "forever. Track it with Git LFS (`git lfs track`) before committing.",
        ),
        _rule(
            Rule.MISSING_KEYS,
            Cause.CODE,
            "Model expects keys the checkpoint lacks",
            "The model has parameters or buffers that the checkpoint does not contain; `load_state_dict` "
            "(strict) raises `Missing key(s) in state_dict`.",
        ),
        _rule(
            Rule.UNEXPECTED_KEYS,
            Cause.CODE,
            "Checkpoint has keys the model does not expect",
            "The checkpoint has entries the model no longer defines; `load_state_dict` (strict) raises "
            "`Unexpected key(s) in state_dict`.",
        ),
        _rule(
            Rule.SHAPE_MISMATCH,
            Cause.CODE,
            "Parameter shape changed",
            "The same key has a different shape in the checkpoint and in the model; `load_state_dict` raises "
            "`size mismatch`, strict or not.",
        ),
        _rule(
            Rule.KEY_PREFIX,
            Cause.CODE,
            "Keys differ by a prefix",
            "The checkpoint's keys and the model's differ by a consistent prefix (`module.` from "
            "DataParallel/DDP, `_orig_mod.` from torch.compile, `model.` from Lightning). Strip or add it.",
        ),
        _rule(
            Rule.WRONG_CONTAINER_KEY,
            Cause.CODE,
            "State dict sits under another key",
            "The file is a training checkpoint; the state dict sits under a key such as `model_state_dict` "
            "or `state_dict`. Load that entry.",
        ),
        _rule(
            Rule.RENAMED_KEYS,
            Cause.CODE,
            "Layers renamed",
            "Missing and unexpected keys pair up one to one by shape and order: the layers were renamed. "
            "Apply the proposed rename map when loading.",
        ),
        _rule(
            Rule.DTYPE_CHANGE,
            Cause.CODE,
            "Dtype differs (silent cast)",
            "Same key and shape but another dtype: the load succeeds with a silent cast.",
        ),
        _rule(
            Rule.MISSING_CLASS,
            Cause.CODE,
            "Pickled class no longer exists",
            "A pickled object names a class or function that the current code no longer has; a full "
            "`torch.load` raises AttributeError or ModuleNotFoundError.",
        ),
        _rule(
            Rule.CONFIG_DRIFT,
            Cause.CODE,
            "Saved hyperparameters differ from the build",
            "The checkpoint records the hyperparameters it was saved with (`model_args`, Lightning's "
            "`hyper_parameters`, a `config.json` beside it) and they differ from those the registry builds "
            "the model with. Build the model as it was saved (the registry's `kwargs:` or `build:`), or, if "
            "the new configuration is intended, re-save the checkpoint from it.",
        ),
        _rule(
            Rule.MODEL_ERROR,
            Cause.CODE,
            "Model could not be built",
            "The model factory failed to import or instantiate (raised) or hung past `timeout:`. A "
            "worker that dies without an answer is no finding: the command exits 3.",
        ),
        _rule(
            Rule.WEIGHTS_ONLY_BLOCKED,
            Cause.ENVIRONMENT,
            "torch.load(weights_only=True) refuses the file",
            "The default `torch.load` (weights_only=True since torch 2.6) refuses globals outside its "
            "allowlist. Allow them with `torch.serialization.add_safe_globals([...])` if you trust them, "
            "or re-save the checkpoint as a plain state dict or safetensors.",
        ),
        _rule(
            Rule.UNSAFE_PICKLE,
            Cause.ENVIRONMENT,
            "Pickle can run code on load",
            "The pickle names a callable that can run arbitrary code (os.system, subprocess, eval, …) or "
            "one that cannot be resolved statically. Do not load it with weights_only=False.",
        ),
        _rule(
            Rule.DEVICE,
            Cause.ENVIRONMENT,
            "Saved on a device this machine lacks",
            "Storages were saved on a device (e.g. cuda) that is not available here: load with "
            "`map_location='cpu'`. Or the model's constructor itself needs such a device "
            "(`.cuda()`, tensors on `cuda`, `torch.cuda.*`), so it cannot be built on this machine.",
        ),
        _rule(
            Rule.STALE_EXPECTATION,
            Cause.CODE,
            "Expected failure loads again",
            "The checkpoint is registered `expect: fails`, but it loads into the current code: the entry is "
            "out of date. Remove `expect: fails` and its `reason:`.",
        ),
        _rule(
            Rule.PACKAGE_VERSION,
            Cause.ENVIRONMENT,
            "An installed package changed the model",
            "The checkpoint loaded when it was registered, with the package versions ckaudit.lock records "
            "for it; an installed package the model imports (a layer library such as transformers) is at "
            "another version now, and it fails. Pin the version that loads it, or re-save or convert the "
            "checkpoint for the new one (and `ckaudit register` it again).",
        ),
        _rule(
            Rule.TORCH_VERSION,
            Cause.ENVIRONMENT,
            "Serialization format not readable here",
            "The serialization format or version is one the installed torch cannot read, or is deprecated.",
        ),
    ]
)


@dataclass(frozen=True)
class Location:
    path: str
    line: int | None = None
    snippet: str | None = None


@dataclass(frozen=True)
class Finding:
    rule: Rule
    severity: Severity
    message: str
    checkpoint: str | None = None
    model: str | None = None
    location: Location | None = None
    fix: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cause(self) -> Cause:
        return self.rule.cause


def verdict_of(findings: tuple[Finding, ...] | list[Finding]) -> Verdict:
    """repository beats code beats environment (`Cause`'s order); only error findings decide a verdict."""
    return _first_cause({f.cause for f in findings if f.severity is Severity.ERROR}, Verdict.OK)


def _failing_verdict(findings: tuple[Finding, ...]) -> Verdict:
    """The verdict of the worst findings of a checkpoint that does not load (`code` when it has none)."""
    worst = max((f.severity.rank for f in findings), default=None)
    return _first_cause({f.cause for f in findings if f.severity.rank == worst}, Verdict.CODE)


def _first_cause(causes: set[Cause], default: Verdict) -> Verdict:
    return next((Verdict.of(cause) for cause in Cause if cause in causes), default)


@dataclass(frozen=True)
class CheckpointResult:
    path: str
    model: str | None
    format: str | None
    tensors: int | None
    bytes: int | None
    findings: tuple[Finding, ...] = ()
    registered: bool = True
    loads: bool | None = None  # whether it loads into the code judged; None: not dry-run (decided by verdict)
    # both sides' state-dict keys, kept only when a dry run says it does not load (the HTML tree diff);
    # the checkpoint's are relative to `checkpoint_container` (scan.keylists)
    model_keys: tuple[str, ...] | None = None
    checkpoint_keys: tuple[str, ...] | None = None
    checkpoint_container: str | None = None

    @property
    def verdict(self) -> Verdict:
        """The cause of its worst problem. Error findings decide it; a checkpoint that does not load with
        none (a failure kept as a warning or note: already failing before the change, `expect: fails`) is
        never `ok`: its verdict is the cause of its worst finding, so the header, the summary and the JSON
        agree. The exit status stays the severities' (`--fail-on`)."""
        decided = verdict_of(self.findings)
        if decided is not Verdict.OK or self.loads is not False:
            return decided
        return _failing_verdict(self.findings)

    @property
    def fails(self) -> bool:
        """It does not load: a failing verdict, or a failure kept as a warning or note (already failing
        before the change, `expect: fails`)."""
        return self.verdict is not Verdict.OK or self.loads is False


@dataclass(frozen=True)
class Report:
    """What one command found; reporters turn it into text, JSON, SARIF or annotations."""

    root: str
    command: str
    checkpoints: tuple[CheckpointResult, ...] = ()
    findings: tuple[Finding, ...] = ()  # findings that concern no single checkpoint (dangling references, …)

    def all_findings(self) -> list[Finding]:
        return [f for c in self.checkpoints for f in c.findings] + list(self.findings)

    def summary(self) -> dict[str, int]:
        counts = {"checkpoints": len(self.checkpoints)} | {v.value: 0 for v in Verdict}
        for result in self.checkpoints:
            counts[result.verdict.value] += 1
        return counts

    def worst_severity(self) -> Severity | None:
        severities = [f.severity for f in self.all_findings()]
        return max(severities, key=lambda s: s.rank) if severities else None

    def fails(self, fail_on: Severity) -> bool:
        worst = self.worst_severity()
        return worst is not None and worst.at_least(fail_on)
