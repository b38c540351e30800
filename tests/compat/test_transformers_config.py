"""A real transformers checkpoint (`save_pretrained`: model.safetensors + config.json): the config.json beside
it is what config-drift compares with the model's own `config`, and an unchanged configuration is silent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckaudit.cli import main
from tests.conftest import requires_torch

pytestmark = [requires_torch, pytest.mark.slow]

BUILD = """\
      from transformers import GPT2Config, GPT2Model
      model = GPT2Model(GPT2Config(n_layer={n_layer}, n_embd=32, n_head=2, vocab_size=100, n_positions=64))
"""


def test_config_json_beside_a_save_pretrained_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=64)
    transformers.GPT2Model(config).save_pretrained(tmp_path / "gpt2-tiny")
    models = "".join(f"  l{n}:\n    build: |\n{BUILD.format(n_layer=n)}" for n in (1, 2))
    entry = "  - path: gpt2-tiny/model.safetensors\n    model: l1\n"
    (tmp_path / "ckaudit.yaml").write_text(f"version: 1\nmodels:\n{models}checkpoints:\n{entry}", "utf-8")
    checkpoint = str(tmp_path / "gpt2-tiny" / "model.safetensors")

    status = main(["diagnose", checkpoint, "--format", "json", "--no-cache"])
    (result,) = json.loads(capsys.readouterr().out)["checkpoints"]
    drift = result["findings"][0]
    assert status == 1 and drift["rule"] == "config-drift"
    assert drift["details"] == {"source": "config.json", "saved": {"n_layer": 2}, "built": {"n_layer": 1}}
    assert {f["rule"] for f in result["findings"]} == {"config-drift", "unexpected-keys"}

    status = main(["diagnose", checkpoint, "--model", "l2", "--format", "json", "--no-cache"])
    (result,) = json.loads(capsys.readouterr().out)["checkpoints"]
    assert status == 0 and result["findings"] == []  # transformers' bookkeeping in config.json is no drift
