"""Text that the pickle guess misread: a `.py` file is no checkpoint, not a corrupt one.

torch.load hands anything that is neither zip nor tar to the legacy unpickler, and text happens to be
protocol-0 pickle opcodes: `class MLP(...)` starts with GLOBAL (`c`), `import torch` with INST (`i`). The
walker then reports "corrupt" with globals such as `lass MLP(nn.Module):`. Such a file is
`not-a-checkpoint`, but only when that is certain (fail closed): the failure is a malformed or cut-short
pickle, the content is text (UTF-8, no NUL byte), and no global it names could be imported (each has a
character no dotted Python name has), so unpickling it could never call anything. A text pickle that names
`os.system` keeps its error and its globals for the safety checks.
"""

from __future__ import annotations

from ckaudit.findings import Rule
from ckaudit.reader.errors import describe, not_a_checkpoint
from ckaudit.reader.types import CheckpointReadError

_PICKLE_FAILURES = (Rule.CORRUPT, Rule.TRUNCATED)


def _text(head: bytes) -> bool:
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut by the end of the sample
    return True


def _importable(name: str) -> bool:
    return all(part.isidentifier() for part in name.split("."))


def misread_text(error: CheckpointReadError, head: bytes) -> CheckpointReadError:
    """`not-a-checkpoint` for text misread as a pickle (no importable global seen), else `error`."""
    if error.rule not in _PICKLE_FAILURES or not error.globals or not _text(head):
        return error  # no globals: the pickle reader already tells text from a broken pickle
    if any(_importable(name) for name in (*error.globals, *error.calls)):
        return error
    return not_a_checkpoint(f"no checkpoint format recognised ({describe(head)})")
