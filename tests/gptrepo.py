"""A nanoGPT-shaped repository: `GPT(GPTConfig(...))`, a config dataclass the model keeps as `self.config`,
a training script's checkpoint (`model`, `optimizer`, `model_args`, `iter_num`, `config`) and the
repository's own loader that strips torch.compile's `_orig_mod.` prefix. Fixtures for build:/load:/init/fix.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

MODEL = """\
from dataclasses import dataclass

from torch import nn


@dataclass
class GPTConfig:
    block_size: int = 64
    vocab_size: int = 128
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    dropout: float = 0.0
    bias: bool = True


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.mlp = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.block_size, config.n_embd),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
"""

UTILS = """\
def clean_state_dict(state_dict):
    # the checkpoint of a torch.compile'd model: strip the wrapper's prefix, as sample.py does
    unwanted_prefix = "_orig_mod."
    for k in list(state_dict):
        if k.startswith(unwanted_prefix):
            state_dict[k[len(unwanted_prefix):]] = state_dict.pop(k)
    return state_dict
"""

BUILD = """\
from model import GPT, GPTConfig
model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64, vocab_size=128))
"""

MODEL_ARGS = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 64, "vocab_size": 128, "bias": True}


def write_repo(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.py").write_text(MODEL, encoding="utf-8")
    (root / "utils.py").write_text(UTILS, encoding="utf-8")


def gpt(**overrides: Any) -> Any:
    """The repository's GPT, built by this process's torch (for saving checkpoints and as the oracle)."""
    module = sys.modules.get("_gpt_fixture_model")
    if module is None:
        module = types.ModuleType("_gpt_fixture_model")
        sys.modules[module.__name__] = module  # dataclasses look their module up
        exec(compile(MODEL, "model.py", "exec"), module.__dict__)
    return module.GPT(module.GPTConfig(**{**MODEL_ARGS, **overrides}))


def training_checkpoint(path: Path, *, compiled: bool = False, **overrides: Any) -> dict[str, Any]:
    """Save what nanoGPT's train.py saves; returns the saved object."""
    import torch

    model = gpt(**overrides)
    state = model.state_dict()
    if compiled:  # what torch.compile(model).state_dict() gives: the wrapper's `_orig_mod.` prefix
        state = type(state)((f"_orig_mod.{k}", v) for k, v in state.items())
    saved = {
        "model": state,
        "optimizer": {"state": {}, "param_groups": [{"lr": 6e-4, "params": [0, 1]}]},
        "model_args": {**MODEL_ARGS, **overrides},
        "iter_num": 100,
        "best_val_loss": 1.5,
        "config": {"batch_size": 12, "learning_rate": 6e-4, **MODEL_ARGS, **overrides},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(saved, path)
    return saved
