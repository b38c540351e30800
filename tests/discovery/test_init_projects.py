"""Acceptance (issue 18): `ckaudit init` on a nanoGPT-, a Lightning- and a Hugging Face-style project made
as their users make them (tests/discovery/projects.py), then `ckaudit scan` with the registry init wrote:
every checkpoint pairs with the model it loads into and scans `ok`; after a change to the model code, the
checkpoints of that model (and only those) scan `code`. No checkpoint of the project's virtualenv is
registered, and the lock holds every registered checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckaudit.cli import main
from ckaudit.registry.config import load_config
from ckaudit.registry.lock import load_lock
from tests.conftest import requires_torch
from tests.discovery import projects

pytestmark = [requires_torch, pytest.mark.slow]  # each project runs its own training script


def _init_and_scan(repo: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert main(["init", str(repo)]) == 0
    capsys.readouterr()
    # the virtualenv's checkpoint is never registered (the file walk skips environment folders)
    assert not any(e.path.startswith("env/") for e in load_config(repo / "ckaudit.yaml").checkpoints)
    return _scan(repo, capsys)


def _scan(repo: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    main(["scan", str(repo), "--format", "json", "--no-cache"])
    report = json.loads(capsys.readouterr().out)
    return {c["path"]: c["verdict"] for c in report["checkpoints"]}


def _registered(repo: Path) -> dict[str, tuple[str | None, str | None, tuple[str, ...]]]:
    config = load_config(repo / "ckaudit.yaml")
    assert set(load_lock(repo / "ckaudit.lock")) == {e.path for e in config.checkpoints}
    return {e.path: (e.model, e.key, e.load.strip_prefix if e.load else ()) for e in config.checkpoints}


def _edit(repo: Path, name: str, old: str, new: str) -> None:
    path = repo / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_nanogpt_project(git_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    projects.nanogpt(git_repo)
    verdicts = _init_and_scan(git_repo, capsys)
    registered = _registered(git_repo)
    assert registered == {
        "chat/model_000100.pt": ("gpt", None, ()),  # configuration from meta_000100.json
        "out/ckpt.pt": ("gpt_2", "model", ()),
        "out/ckpt_compiled.pt": ("gpt_2", "model", ("_orig_mod.",)),
    }
    config = load_config(git_repo / "ckaudit.yaml")
    assert "GPTConfig(" in (config.models["gpt"].build or "") and "n_layer=3" in (
        config.models["gpt"].build or ""
    )
    assert not any(p.startswith("env/") for p in verdicts)  # scans skip environment folders
    assert verdicts == dict.fromkeys(registered, "ok")
    _edit(git_repo, "model.py", "4 * config.n_embd", "2 * config.n_embd")  # a narrower MLP
    assert _scan(git_repo, capsys) == dict.fromkeys(registered, "code")


def test_lightning_project(git_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    projects.lightning(git_repo)
    verdicts = _init_and_scan(git_repo, capsys)
    registered = _registered(git_repo)
    assert registered == {
        "checkpoints/epoch=0-step=2.ckpt": ("lit_classifier", "state_dict", ()),
        "checkpoints/mlp_small.pth": ("mlp_small", None, ()),  # a factory function, timm-style
        "checkpoints/wrapped.ckpt": ("encoder", "state_dict", ("net.",)),  # the wrapper's prefix stripped
    }
    config = load_config(git_repo / "ckaudit.yaml")
    lit = config.models["lit_classifier"]
    assert lit.factory == "lit_model:LitClassifier"  # kwargs from the checkpoint's hyper_parameters
    assert dict(lit.kwargs) == {"in_features": 12, "hidden": 24, "classes": 5, "lr": 0.001}
    assert config.models["mlp_small"].factory == "nets:mlp_small"
    assert verdicts == dict.fromkeys(registered, "ok")
    _edit(git_repo, "lit_model.py", "nn.Linear(hidden, classes)", "nn.Linear(hidden, classes + 1)")
    assert _scan(git_repo, capsys) == {
        "checkpoints/epoch=0-step=2.ckpt": "code",
        "checkpoints/mlp_small.pth": "ok",
        "checkpoints/wrapped.ckpt": "ok",
    }
    _edit(git_repo, "nets.py", "nn.LayerNorm(width)", "nn.LayerNorm(width * 2)")
    assert _scan(git_repo, capsys)["checkpoints/wrapped.ckpt"] == "code"


def test_huggingface_project(git_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    projects.huggingface(git_repo)
    verdicts = _init_and_scan(git_repo, capsys)
    registered = _registered(git_repo)
    assert registered == {
        "bert-small/model.safetensors": ("bert_model", None, ()),
        "tiny-finetuned/model.safetensors": ("tiny_model", None, ()),
    }
    config = load_config(git_repo / "ckaudit.yaml")
    bert = config.models["bert_model"].build or ""
    assert "BertModel(AutoConfig.for_model(" in bert and "hidden_size=32," in bert
    tiny = config.models["tiny_model"].build or ""
    assert "TinyModel(config=TinyConfig(hidden_size=16, num_labels_out=3))" in tiny  # from config.json
    assert verdicts == dict.fromkeys(registered, "ok")
    _edit(git_repo, "tiny.py", "nn.Linear(config.hidden_size, config.hidden_size)", "nn.Identity()")
    assert _scan(git_repo, capsys) == {
        "bert-small/model.safetensors": "ok",
        "tiny-finetuned/model.safetensors": "code",
    }
