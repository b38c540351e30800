"""The project's own loading (`load:`) and its saved hyperparameters (`config-drift`), on a nanoGPT-shaped
repository and a Lightning-style checkpoint, with real torch as the oracle: what ckaudit says loads, loads
when the repository's own loading code is applied and `load_state_dict(strict=True)` is called."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ckaudit.cli import main
from tests.conftest import requires_torch
from tests.gptrepo import BUILD, gpt, training_checkpoint, write_repo

pytestmark = [requires_torch, pytest.mark.slow]

LIGHTNING = """\
from torch import nn

from model import GPT, GPTConfig


class LitGPT(nn.Module):  # the shape of a LightningModule: the network under `self.model`
    def __init__(self, n_layer=2, n_head=2, n_embd=32, block_size=64, vocab_size=128, lr=6e-4):
        super().__init__()
        self.model = GPT(GPTConfig(n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                                   block_size=block_size, vocab_size=vocab_size))
"""


def registry(root: Path, entries: str, models: str | None = None) -> None:
    build = "\n".join("      " + line for line in BUILD.splitlines())
    models = models or f"  gpt:\n    build: |\n{build}\n"
    (root / "ckaudit.yaml").write_text(f"version: 1\nmodels:\n{models}checkpoints:\n{entries}", "utf-8")


def diagnose(capsys: pytest.CaptureFixture[str], file: Path) -> tuple[int, dict[str, Any]]:
    status = main(["diagnose", str(file), "--format", "json", "--no-cache"])
    (result,) = json.loads(capsys.readouterr().out)["checkpoints"]
    return status, result


def loads_with_torch(file: Path, key: str, clean: Any = None, **overrides: Any) -> bool:
    """The oracle: torch.load, the project's own cleaning, then load_state_dict(strict=True)."""
    import torch

    state = torch.load(file, weights_only=True)[key]
    if clean is not None:
        state = clean(state)
    try:
        gpt(**overrides).load_state_dict(state, strict=True)
    except RuntimeError:
        return False
    return True


def repo_loader(root: Path) -> Any:
    sys.path.insert(0, str(root))
    try:
        import utils

        return utils.clean_state_dict
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("utils", None)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_repo(tmp_path / "gpt")
    return tmp_path / "gpt"


def test_the_repositorys_loader_strips_the_compile_prefix(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = repo / "out" / "ckpt.pt"
    training_checkpoint(ckpt, compiled=True)
    registry(repo, "  - path: out/ckpt.pt\n    model: gpt\n    key: model\n")
    status, bare = diagnose(capsys, ckpt)
    assert status == 1 and bare["findings"][0]["rule"] == "key-prefix"
    assert not loads_with_torch(ckpt, "model")

    registry(
        repo,
        "  - path: out/ckpt.pt\n    model: gpt\n    key: model\n"
        "    load:\n      loader: utils:clean_state_dict\n",
    )
    status, loaded = diagnose(capsys, ckpt)
    assert status == 0 and loaded["verdict"] == "ok" and loaded["findings"] == []
    assert loads_with_torch(ckpt, "model", repo_loader(repo))


def test_declarative_steps_match_what_torch_loads(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    state = {f"module.{k}": v for k, v in gpt().state_dict().items()}
    state["module.head.extra"] = torch.zeros(2)  # a stray key the project drops
    state["module.ln_final.weight"] = state.pop("module.transformer.ln_f.weight")  # renamed since
    state["module.ln_final.bias"] = state.pop("module.transformer.ln_f.bias")
    torch.save(state, repo / "old.pt")
    steps = (
        '      strip_prefix: "module."\n      rename: {ln_final: transformer.ln_f}\n      drop: ["head.*"]\n'
    )
    registry(repo, f"  - path: old.pt\n    model: gpt\n    load:\n{steps}")
    status, result = diagnose(capsys, repo / "old.pt")
    assert status == 0 and result["verdict"] == "ok"

    def clean(sd: dict[str, Any]) -> dict[str, Any]:  # the same steps, written as a project would
        sd = {k.removeprefix("module."): v for k, v in sd.items() if not k.startswith("module.head.")}
        return {k.replace("ln_final.", "transformer.ln_f."): v for k, v in sd.items()}

    import torch as _torch

    gpt().load_state_dict(clean(_torch.load(repo / "old.pt", weights_only=True)), strict=True)

    registry(repo, '  - path: old.pt\n    model: gpt\n    load:\n      strip_prefix: "module."\n')
    status, result = diagnose(capsys, repo / "old.pt")
    rules = {f["rule"] for f in result["findings"]}
    assert status == 1 and "unexpected-keys" in rules
    assert all("as loaded with strip_prefix 'module.'" in f["message"] for f in result["findings"])
    assert all(f["details"]["load"] == {"strip_prefix": "module."} for f in result["findings"])


def test_a_loader_that_raises_is_a_model_error_at_its_line(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    training_checkpoint(repo / "ckpt.pt")
    (repo / "utils.py").write_text("def clean(sd):\n    raise KeyError('lm_head')\n", "utf-8")
    registry(repo, "  - path: ckpt.pt\n    model: gpt\n    key: model\n    load: {loader: 'utils:clean'}\n")
    status, result = diagnose(capsys, repo / "ckpt.pt")
    (finding,) = result["findings"]
    assert status == 1 and finding["rule"] == "model-error"
    assert "the loader utils:clean failed" in finding["message"]
    assert finding["location"]["path"] == "utils.py" and finding["location"]["line"] == 2


def test_lightning_hyper_parameters_differ_from_the_registry(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Lightning-style checkpoint trained with 3 layers; the registry builds 2: config-drift, and no
    advice to drop the extra layer's keys."""
    import torch

    (repo / "lit.py").write_text(LIGHTNING, "utf-8")
    state = {f"model.{k}": v for k, v in gpt(n_layer=3).state_dict().items()}
    hyper = {"n_layer": 3, "n_head": 2, "n_embd": 32, "block_size": 64, "vocab_size": 128, "lr": 6e-4}
    torch.save(
        {
            "epoch": 3,
            "global_step": 300,
            "pytorch-lightning_version": "2.4.0",
            "state_dict": state,
            "hyper_parameters": hyper,
            "optimizer_states": [],
            "lr_schedulers": [],
        },
        repo / "lit.ckpt",
    )
    models = "  lit:\n    factory: lit:LitGPT\n    kwargs: {n_layer: 2}\n"
    registry(repo, "  - path: lit.ckpt\n    model: lit\n    key: state_dict\n", models)
    status, result = diagnose(capsys, repo / "lit.ckpt")
    drift = result["findings"][0]
    assert status == 1 and result["verdict"] == "code"
    assert drift["rule"] == "config-drift" and drift["severity"] == "error"
    assert "saved with n_layer=3, built with n_layer=2" in drift["message"]
    assert "kwargs: {n_layer: 3}" in drift["fix"] and drift["location"] == {
        "path": "ckaudit.yaml",
        "line": 4,
        "snippet": None,
    }
    for finding in result["findings"]:
        assert "Drop them" not in finding["fix"] and "ignore:" not in finding["fix"]
        assert "strict=False" not in finding["fix"]
    assert any(f["rule"] == "unexpected-keys" for f in result["findings"])

    registry(
        repo,
        "  - path: lit.ckpt\n    model: lit\n    key: state_dict\n",
        models.replace("n_layer: 2", "n_layer: 3"),
    )
    status, result = diagnose(capsys, repo / "lit.ckpt")
    assert status == 0 and result["findings"] == []


def test_a_transformers_config_json_beside_the_checkpoint(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    (repo / "hf").mkdir()
    torch.save(gpt(n_embd=48).state_dict(), repo / "hf" / "pytorch_model.bin")
    config = {
        "model_type": "gpt2",
        "architectures": ["GPT"],
        "n_embd": 48,
        "n_layer": 2,
        "transformers_version": "4.46.0",
    }
    (repo / "hf" / "config.json").write_text(json.dumps(config), "utf-8")
    registry(repo, "  - path: hf/pytorch_model.bin\n    model: gpt\n")
    status, result = diagnose(capsys, repo / "hf" / "pytorch_model.bin")
    drift = result["findings"][0]
    assert status == 1 and drift["rule"] == "config-drift"
    assert drift["details"]["source"] == "config.json"
    assert drift["details"]["saved"] == {"n_embd": 48} and drift["details"]["built"] == {"n_embd": 32}
    assert all(f["rule"] in ("config-drift", "shape-mismatch") for f in result["findings"])


def test_a_drift_that_still_loads_is_a_note(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    training_checkpoint(repo / "ckpt.pt", dropout=0.1)  # trained with dropout, built without
    registry(repo, "  - path: ckpt.pt\n    model: gpt\n    key: model\n")
    status, result = diagnose(capsys, repo / "ckpt.pt")
    assert status == 0 and result["verdict"] == "ok"
    (note,) = result["findings"]
    assert note["rule"] == "config-drift" and note["severity"] == "note"
    assert "saved with dropout=0.1, built with dropout=0.0" in note["message"]
    assert loads_with_torch(repo / "ckpt.pt", "model")
