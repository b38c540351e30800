"""`load:` of a checkpoint entry: parsed, written back unchanged, its mistakes named with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ckaudit.errors import ConfigError
from ckaudit.registry.config import parse_config
from ckaudit.registry.loadsteps import LoadSteps
from ckaudit.registry.writer import dump_config

HEAD = (
    "version: 1\nmodels:\n  gpt:\n    factory: model:GPT\ncheckpoints:\n  - path: ckpt.pt\n    model: gpt\n"
)


def parse(load: str) -> LoadSteps | None:
    entry = parse_config(HEAD + load, "ckaudit.yaml", Path("/repo")).checkpoints[0]
    return entry.load


def test_every_step_is_read_and_written_back() -> None:
    text = HEAD + (
        "    load:\n"
        '      strip_prefix: ["module.", "_orig_mod."]\n'
        '      add_prefix: "model."\n'
        "      rename: {ln_final: transformer.ln_f}\n"
        '      drop: ["head.*", "lm_head.bias"]\n'
        "      strict: false\n"
    )
    config = parse_config(text, "ckaudit.yaml", Path("/repo"))
    entry = config.checkpoints[0]
    assert entry.load == LoadSteps(
        ("module.", "_orig_mod."), "model.", {"ln_final": "transformer.ln_f"}, ("head.*", "lm_head.bias")
    )
    assert entry.strict is False
    again = parse_config(dump_config(config), "ckaudit.yaml", Path("/repo"))
    written = again.checkpoints[0]
    assert (written.load, written.strict) == (entry.load, False)  # strict moves to the entry


def test_a_loader_function() -> None:
    steps = parse("    load: {loader: 'train.utils:clean_state_dict'}\n")
    assert steps == LoadSteps(loader="train.utils:clean_state_dict")
    assert steps.describe() == "loader train.utils:clean_state_dict"


@pytest.mark.parametrize(
    ("load", "line", "words"),
    [
        ("    load: {strip: module.}\n", 8, "unknown key 'strip'"),
        ("    load: {loader: clean_state_dict}\n", 8, "package.module:function"),
        ("    load:\n      loader: a:b\n      drop: [x]\n", 9, "replaces the other steps"),
        ("    load: {rename: {a: 1}}\n", 8, "map key names to key names"),
        ("    load: {drop: head.*}\n", 8, "must be a list"),
        ('    load: {strip_prefix: ""}\n', 8, "must not be empty"),
        ("    strict: true\n    load: {strict: false}\n", 9, "disagree"),
        ("    load: [strip_prefix]\n", 8, "must be a mapping"),
    ],
)
def test_mistakes_name_the_line(load: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(load)
    assert raised.value.line == line and words in str(raised.value)
    assert "ckaudit.yaml" in str(raised.value)
