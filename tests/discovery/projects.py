"""Three projects as their users make them — the files they write, checkpoints saved the way those projects
save them, with real torch — for `ckaudit init` to find (issue 18).

- nanoGPT: `model.py` with `GPTConfig` (a dataclass) and `GPT(config)`; `train.py` saves
  `{"model": ..., "model_args": ..., "iter_num": ...}` to `out/ckpt.pt`, and a `torch.compile`d run's state
  dict (`_orig_mod.` keys); nanochat-style `model_000100.pt` beside `meta_000100.json` (`model_config`).
- Lightning: a `LightningModule` that builds its network from a helper function, saved by a real
  `Trainer` (`state_dict` with `model.` keys + `hyper_parameters`); a `LightningModule` given its network
  (`LitWrapper(Encoder())`, keys `net.…`, the network not among the hyperparameters); a timm-style factory
  function (`mlp_small()` returning `MLPNet([12, 24, 5])`) whose state dict is saved alone.
- Hugging Face: a `PreTrainedModel` subclass with its `PretrainedConfig`, saved with `save_pretrained`
  (`model.safetensors` + `config.json`), and a tiny `BertModel(BertConfig(...))` saved the same way.

Each also has a virtualenv folder holding a `.pt` file, which `init` must not register.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import git
from tests.gptrepo import MODEL

NANOGPT_MODEL = MODEL  # tests/gptrepo.py's nanoGPT-shaped model.py

NANOGPT_TRAIN = """\
import json
import os
import sys

import torch

from model import GPT, GPTConfig

model_args = dict(n_layer=2, n_head=2, n_embd=32, block_size=64, bias=False, vocab_size=128, dropout=0.0)
model = GPT(GPTConfig(**model_args))
os.makedirs("out", exist_ok=True)
checkpoint = {
    "model": model.state_dict(),
    "optimizer": {},
    "model_args": model_args,
    "iter_num": 100,
    "best_val_loss": 1.5,
    "config": {"batch_size": 12, "learning_rate": 6e-4},
}
torch.save(checkpoint, os.path.join("out", "ckpt.pt"))
# a torch.compile'd run whose wrapper was saved as is: every key starts with _orig_mod.
compiled = torch.compile(model)
compiled_state = {"model": compiled.state_dict(), "model_args": model_args}
torch.save(compiled_state, os.path.join("out", "ckpt_compiled.pt"))
# nanochat's layout: a bare state dict, its configuration in a meta JSON beside it
chat_args = dict(n_layer=3, n_head=2, n_embd=16, block_size=32, bias=False, vocab_size=64, dropout=0.0)
os.makedirs("chat", exist_ok=True)
torch.save(GPT(GPTConfig(**chat_args)).state_dict(), os.path.join("chat", "model_000100.pt"))
with open(os.path.join("chat", "meta_000100.json"), "w") as f:
    json.dump({"step": 100, "val_bpb": 1.2, "model_config": chat_args, "user_config": {"depth": 3}}, f)
"""

LIGHTNING_MODEL = """\
import lightning as L
import torch
from torch import nn


def build_backbone(in_features: int, hidden: int, classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, classes))


class LitClassifier(L.LightningModule):
    def __init__(self, in_features: int = 8, hidden: int = 16, classes: int = 3, lr: float = 1e-3):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_backbone(in_features, hidden, classes)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class LitWrapper(L.LightningModule):
    # the network passed in, as Lightning's docs recommend; it is not among the hyperparameters
    def __init__(self, net: nn.Module, lr: float = 1e-3):
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.net = net

    def training_step(self, batch, batch_idx):
        x, _ = batch
        return self.net(x).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
"""

LIGHTNING_TRAIN = """\
import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from lit_model import LitClassifier, LitWrapper
from nets import Encoder, mlp_small

data = TensorDataset(torch.randn(8, 12), torch.randint(0, 5, (8,)))


def fit(module, path):
    trainer = L.Trainer(
        max_epochs=1, default_root_dir="lightning_logs_root", logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, accelerator="cpu",
    )
    trainer.fit(module, DataLoader(data, batch_size=4))
    trainer.save_checkpoint(path)


fit(LitClassifier(in_features=12, hidden=24, classes=5), "checkpoints/epoch=0-step=2.ckpt")
fit(LitWrapper(Encoder()), "checkpoints/wrapped.ckpt")  # keys `net.…`: the Encoder's behind a prefix
# timm's way: a factory function that builds a class whose constructor needs arguments

torch.save(mlp_small().state_dict(), "checkpoints/mlp_small.pth")
"""

HF_MODEL = """\
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel


class TinyConfig(PretrainedConfig):
    model_type = "tiny"

    def __init__(self, hidden_size: int = 32, num_labels_out: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_labels_out = num_labels_out


class TinyModel(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config: TinyConfig):
        super().__init__(config)
        self.encoder = nn.Linear(config.hidden_size, config.hidden_size)
        self.head = nn.Linear(config.hidden_size, config.num_labels_out)
        self.post_init()
"""

HF_TRAIN = """\
import torch
from transformers import BertConfig, BertModel

from tiny import TinyConfig, TinyModel

TinyModel(TinyConfig(hidden_size=16, num_labels_out=3)).save_pretrained("tiny-finetuned")
bert = BertModel(BertConfig(
    vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
    max_position_embeddings=64,
))
bert.save_pretrained("bert-small")
"""


def _project(repo: Path, files: dict[str, str], train: str) -> Path:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    (repo / "checkpoints").mkdir(exist_ok=True)
    (repo / ".gitignore").write_text(
        "out/\nchat/\ncheckpoints/\n*.bin\n*.safetensors\nlightning_logs_root/\n"
    )
    subprocess.run([sys.executable, train], cwd=repo, check=True, capture_output=True, timeout=300)
    _virtualenv_with_a_checkpoint(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the project")
    return repo


def _virtualenv_with_a_checkpoint(repo: Path) -> None:
    """A project venv, as `python -m venv env` makes it, where some package ships a .pt file."""
    import torch

    site = repo / "env" / "lib" / "python3.11" / "site-packages" / "somepkg"
    site.mkdir(parents=True)
    (repo / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    torch.save({"w": torch.zeros(2)}, site / "weights.pt")
    (repo / "env" / ".gitignore").write_text("*\n")


def nanogpt(repo: Path) -> Path:
    return _project(repo, {"model.py": NANOGPT_MODEL, "train.py": NANOGPT_TRAIN}, "train.py")


NETS = """\
from torch import nn


class MLPNet(nn.Module):
    def __init__(self, widths: list[int]):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))


class Encoder(nn.Module):
    def __init__(self, inputs: int = 12, width: int = 32):
        super().__init__()
        self.proj = nn.Linear(inputs, width)
        self.norm = nn.LayerNorm(width)

    def forward(self, x):
        return self.norm(self.proj(x))


def mlp_small(**kwargs):
    return MLPNet([12, 24, 5], **kwargs)
"""


def lightning(repo: Path) -> Path:
    files = {"lit_model.py": LIGHTNING_MODEL, "nets.py": NETS, "train.py": LIGHTNING_TRAIN}
    return _project(repo, files, "train.py")


def huggingface(repo: Path) -> Path:
    return _project(repo, {"tiny.py": HF_MODEL, "train.py": HF_TRAIN}, "train.py")
