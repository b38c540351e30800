"""Models whose constructor takes a config object, as a user meets them: `init` proposes a `build:` filled
from the checkpoints' saved hyperparameters, `diagnose --build` takes the same code, and an unregistered
training checkpoint without `--key` is read from its detected container (and the report says so)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ckaudit.cli import main
from ckaudit.discovery.models import ConfigClass, ModelClass, Param
from ckaudit.discovery.proposals import propose
from ckaudit.registry.config import load_config
from tests.conftest import git, requires_torch
from tests.gptrepo import MODEL_ARGS, gpt, training_checkpoint, write_repo

GPT_CLASS = ModelClass("model:GPT", "model.py", 25, (Param("config", None, True),))
GPT_CONFIG = ConfigClass(
    "model",
    "GPTConfig",
    tuple(Param(n, None, False) for n in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd")),
)


def test_a_config_dataclass_becomes_build_code() -> None:
    (spec,) = propose(GPT_CLASS, [GPT_CONFIG], [{"n_layer": 3, "n_head": 2, "lr": 0.1}]).specs
    assert spec.factory is None and spec.build == (
        "from model import GPT, GPTConfig\nmodel = GPT(config=GPTConfig(n_layer=3, n_head=2))\n"
    )
    (defaults,) = propose(GPT_CLASS, [GPT_CONFIG], []).specs  # every field has a default
    assert defaults.build is not None and "GPT(config=GPTConfig())" in defaults.build


def test_plain_arguments_become_kwargs_and_gaps_are_explained() -> None:
    net = ModelClass("nets:Net", "nets.py", 3, (Param("classes", None, True), Param("width", "int", False)))
    (spec,) = propose(net, [], [{"classes": 10, "width": 64, "epochs": 3}]).specs
    assert (spec.factory, dict(spec.kwargs)) == ("nets:Net", {"classes": 10, "width": 64})
    proposal = propose(net, [], [{"width": 64}])
    assert proposal.specs == () and proposal.reason == (
        "Net (nets.py:3) needs `classes`; no checkpoint records all of them"
    )
    assert "no checkpoint records hyperparameters" in str(propose(net, [], []).reason)


@requires_torch
@pytest.mark.slow
def test_init_registers_a_gpt_by_build(git_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    write_repo(git_repo)
    training_checkpoint(git_repo / "out" / "ckpt.pt")
    training_checkpoint(git_repo / "out" / "deep.pt", n_layer=3)
    torch.save(gpt().state_dict(), git_repo / "out" / "compiled.pt")
    compiled = torch.load(git_repo / "out" / "compiled.pt")
    torch.save({f"_orig_mod.{k}": v for k, v in compiled.items()}, git_repo / "out" / "compiled.pt")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-qm", "nanoGPT-shaped")

    assert main(["init", str(git_repo)]) == 0
    err = capsys.readouterr().err
    config = load_config(git_repo / "ckaudit.yaml")
    assert set(config.models) == {"gpt", "gpt_2"}  # Block, built by GPT, is no model of its own
    paired = {e.path: (e.model, e.key) for e in config.checkpoints}
    assert paired["out/ckpt.pt"] == ("gpt", "model") and paired["out/deep.pt"] == ("gpt_2", "model")
    deep = config.models["gpt_2"].build
    assert deep is not None and "n_layer=3" in deep and "GPTConfig(" in deep
    compiled_entry = config.checkpoint("out/compiled.pt")  # torch.compile'd: loads once the prefix goes
    assert compiled_entry is not None and compiled_entry.model == "gpt"
    assert compiled_entry.load is not None and compiled_entry.load.strip_prefix == ("_orig_mod.",)
    assert "out/compiled.pt" not in err

    status = main(["scan", str(git_repo), "--format", "json", "--no-cache"])  # the registry init wrote
    report = json.loads(capsys.readouterr().out)
    verdicts = {c["path"]: c["verdict"] for c in report["checkpoints"]}
    assert status == 0 and verdicts["out/ckpt.pt"] == verdicts["out/deep.pt"] == "ok"
    assert verdicts["out/compiled.pt"] == "ok"


@requires_torch
@pytest.mark.slow
def test_diagnose_build_and_the_detected_container(
    git_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_repo(git_repo)
    training_checkpoint(git_repo / "ckpt.pt")
    code = f"from model import GPT, GPTConfig\nmodel = GPT(GPTConfig(**{MODEL_ARGS}))\n"
    (git_repo / "build_gpt.py").write_text(code, "utf-8")

    def diagnose(*argv: str) -> tuple[int, dict[str, Any]]:
        status = main(["diagnose", str(git_repo / "ckpt.pt"), *argv, "--format", "json", "--no-cache"])
        (result,) = json.loads(capsys.readouterr().out)["checkpoints"]
        return status, result

    status, result = diagnose("--build", code)
    (note,) = result["findings"]
    assert status == 0 and result["verdict"] == "ok"
    assert note["severity"] == "note" and note["details"]["found"] == "model"
    assert "detected" in note["message"]
    status, result = diagnose("--build", f"@{git_repo / 'build_gpt.py'}", "--key", "model")
    assert status == 0 and result["findings"] == []
    status, result = diagnose(
        "--build", "from model import GPT, GPTConfig\nmodel = GPT(GPTConfig(n_layer=1))"
    )
    rules = [f["rule"] for f in result["findings"]]
    assert status == 1 and rules[:2] == ["wrong-container-key", "config-drift"]
    assert main(["diagnose", str(git_repo / "ckpt.pt"), "--build", "x", "--model", "model:GPT"]) == 2
