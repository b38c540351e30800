"""What `init` finds by reading code (nothing imported), which folders it skips, and the meta JSON it reads
beside a checkpoint — the fast checks behind test_init_projects.py."""

from __future__ import annotations

import json
from pathlib import Path

from ckaudit.discovery.hub import library_model
from ckaudit.discovery.models import find_classes
from ckaudit.discovery.skip import SkippedFolders
from ckaudit.reader.hparams import meta_sidecar

CODE = """\
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel


class TinyConfig(PretrainedConfig):
    def __init__(self, hidden_size: int = 8, **kwargs):
        super().__init__(**kwargs)


class TinyPreTrained(PreTrainedModel):
    config_class = TinyConfig


class TinyModel(TinyPreTrained):
    pass


class ResNet(nn.Module):
    def __init__(self, layers: list[int]):
        super().__init__()


def resnet18(**kwargs):
    return ResNet([2, 2, 2, 2], **kwargs)


def build(width: int = 4) -> nn.Module:
    return nn.Linear(width, width)


def helper(x):
    return x + 1
"""


def test_models_through_bases_factories_and_config_classes(tmp_path: Path) -> None:
    (tmp_path / "nets.py").write_text(CODE)
    found = find_classes(tmp_path, ["nets.py"])
    by_factory = {m.factory: m for m in found.models}
    assert set(by_factory) == {  # TinyPreTrained is a base: the classes built on it are the models
        "nets:TinyModel",
        "nets:ResNet",
        "nets:resnet18",
        "nets:build",
    }
    tiny = by_factory["nets:TinyModel"]  # no __init__ of its own: PreTrainedModel's, which takes config
    assert tiny.config_class == "TinyConfig" and [(p.name, p.required) for p in tiny.params] == [
        ("config", True)
    ]
    assert by_factory["nets:resnet18"].function and not by_factory["nets:resnet18"].required
    assert [p.name for p in by_factory["nets:build"].params] == ["width"]
    (config,) = found.configs
    assert config.name == "TinyConfig" and [f.name for f in config.fields] == ["hidden_size"]


def test_virtualenvs_and_caches_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "tools" / "env").mkdir(parents=True)
    (tmp_path / "tools" / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "conda" / "conda-meta").mkdir(parents=True)
    folders = SkippedFolders(tmp_path)
    kept = folders.keep(
        [
            "checkpoints/a.pt",
            "tools/env/lib/site-packages/x/w.pt",
            "conda/pkgs/w.pt",
            "data/.cache/hub/w.bin",
            "models/__pycache__/m.py",
            "tools/train.py",
        ]
    )
    assert kept == ["checkpoints/a.pt", "tools/train.py"]
    assert folders.found == {"tools/env", "conda", "data/.cache", "models/__pycache__"}


def test_nanochat_meta_json_beside_the_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "model_000100.pt").write_bytes(b"x")
    (tmp_path / "meta_000100.json").write_text(
        json.dumps({"step": 100, "model_config": {"n_layer": 3, "n_embd": 16}, "user_config": {"depth": 3}})
    )
    assert meta_sidecar(tmp_path / "model_000100.pt") == {
        "meta_000100.json:model_config": {"n_layer": 3, "n_embd": 16}
    }
    (tmp_path / "other.pt").write_bytes(b"x")
    assert meta_sidecar(tmp_path / "other.pt") == {}


def test_a_library_class_from_config_json(tmp_path: Path) -> None:
    config = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 32, "id2label": {"0": "A"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    spec = library_model(tmp_path / "model.safetensors", set())
    assert spec is not None and spec.build is not None
    assert spec.build.startswith("from transformers import AutoConfig, BertModel\n")
    assert "hidden_size=32," in spec.build and "id2label" not in spec.build
    assert library_model(tmp_path / "model.safetensors", {"BertModel"}) is None  # the repository's own
    compile(spec.build, "build", "exec")


def test_settle_keeps_what_paired_and_one_entry_per_repository_class() -> None:
    from ckaudit.commands.init_models import Proposed
    from ckaudit.registry.config import ModelSpec

    proposed = Proposed()
    proposed.add("lit", ModelSpec(name="", factory="m:Lit"), "m:Lit")  # defaults: no checkpoint loads
    proposed.add("lit", ModelSpec(name="", factory="m:Lit", kwargs={"hidden": 24}), "m:Lit")  # lit_2
    proposed.add("gpt", ModelSpec(name="", build="model = 1\n"), "m:GPT")
    proposed.add("mlp_2", ModelSpec(name="", factory="m:mlp_2"), "m:mlp_2")  # a function, unpaired
    proposed.add("res_net", ModelSpec(name="", factory="m:ResNet"), "m:ResNet")
    proposed.keep_one |= {"m:Lit", "m:GPT", "m:ResNet"}
    models, renamed = proposed.settle({"lit_2", "gpt"})
    assert renamed == {"lit_2": "lit"}  # the plainest name free
    assert set(models) == {"lit", "gpt", "res_net"}  # ResNet kept to fill by hand; mlp_2 dropped
    assert dict(models["lit"].kwargs) == {"hidden": 24} and models["lit"].name == "lit"
