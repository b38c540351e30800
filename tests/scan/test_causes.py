"""Which changed lines produce a finding: difflib + ast on the two versions' sources, no torch."""

from __future__ import annotations

from ckaudit.findings import Finding, Location, Rule, Severity
from ckaudit.scan.causes import changed_lines, with_causes

CONFIG_OLD = """\
from dataclasses import dataclass


@dataclass
class GPTConfig:
    n_embd: int = 64
    n_head: int = 4
"""
MODEL = """\
from torch import nn


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wte = nn.Embedding(100, config.n_embd)
        self.heads = config.n_head
"""


def _resized(line: int) -> Finding:
    return Finding(
        Rule.SHAPE_MISMATCH,
        Severity.ERROR,
        "wte.weight: [100, 64] in the checkpoint, [100, 96] in the model",
        location=Location("gpt/model.py", line),
        details={"key": "wte.weight"},
    )


def test_a_config_field_in_another_file_is_named() -> None:
    before = {"gpt/config.py": CONFIG_OLD, "gpt/model.py": MODEL}
    after = {
        "gpt/config.py": CONFIG_OLD.replace("n_embd: int = 64", "n_embd: int = 96").replace("= 4", "= 8"),
        "gpt/model.py": MODEL,
    }
    changes = changed_lines(before, after)
    assert [c.describe() for c in changes] == [
        "gpt/config.py:6 n_embd: int = 64 -> n_embd: int = 96",
        "gpt/config.py:7 n_head: int = 4 -> n_head: int = 8",
    ]
    (named,) = with_causes([_resized(7)], changes, after)
    assert named.details["changed"] == [changes[0].as_dict()]  # n_head flows elsewhere, not into wte
    assert named.message.endswith("changed: gpt/config.py:6 n_embd: int = 64 -> n_embd: int = 96")


def test_comments_and_unparsable_files_name_nothing() -> None:
    before = {"gpt/model.py": MODEL}
    after = {"gpt/model.py": MODEL.replace("super()", "# n_embd\n        super()") + "def broken(:\n"}
    finding = _resized(8)
    assert with_causes([finding], changed_lines(before, after), after) == [finding]
