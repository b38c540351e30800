"""Generated (model A, checkpoint, model B) cases for the differential test, models written as source files.

A model is a list of layers; `source()` renders it as a module the factory imports. Mutations turn A into B
the ways code really changes: layers added, removed, resized, renamed, bias toggled, buffers added, containers
grown. Checkpoint transforms reproduce how files really get saved: DataParallel, torch.compile, half
precision, BatchNorm states without `num_batches_tracked`, training checkpoints.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any

HEADER = '''import torch
from torch import nn


class Custom(nn.Module):
    """Renames its legacy key `w_old` on load, as real projects do in _load_from_state_dict."""

    def __init__(self, n):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(n))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + "w_old" in state_dict:
            state_dict[prefix + "w"] = state_dict.pop(prefix + "w_old")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class CustomOld(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.w_old = nn.Parameter(torch.zeros(n))

'''

Layer = list[Any]  # [name, kind, args]


def expr(kind: str, args: Any) -> str:
    if kind == "linear":
        return f"nn.Linear({args[0]}, {args[1]}, bias={args[2]})"
    if kind == "conv":
        return f"nn.Conv2d({args[0]}, {args[1]}, {args[2]}, bias={args[3]})"
    if kind == "bn":
        return f"nn.BatchNorm2d({args[0]})"
    if kind == "ln":
        return f"nn.LayerNorm({args[0]})"
    if kind == "emb":
        return f"nn.Embedding({args[0]}, {args[1]})"
    if kind == "custom":
        return f"Custom({args[0]})"
    if kind == "custom_old":
        return f"CustomOld({args[0]})"
    if kind == "seq":
        return "nn.Sequential(" + ", ".join(expr(k, a) for k, a in args) + ")"
    if kind == "mlist":
        return "nn.ModuleList([" + ", ".join(expr(k, a) for k, a in args) + "])"
    if kind == "mdict":
        return "nn.ModuleDict({" + ", ".join(f"{n!r}: {expr(k, a)}" for n, k, a in args) + "})"
    raise ValueError(kind)


@dataclass
class ModelDef:
    layers: list[Layer]
    wrapped: bool = False  # the factory returns nn.DataParallel(Model())

    def source(self) -> str:
        lines = [HEADER, "class Model(nn.Module):", "    def __init__(self):", "        super().__init__()"]
        for name, kind, args in self.layers:
            if kind == "buf":
                shape, persistent = args
                lines.append(
                    f"        self.register_buffer({name!r}, torch.zeros({shape}), persistent={persistent})"
                )
            else:
                lines.append(f"        self.{name} = {expr(kind, args)}")
        factory = "nn.DataParallel(Model())" if self.wrapped else "Model()"
        lines += ["", "", "def build():", f"    return {factory}", ""]
        return "\n".join(lines)


def _leaf(rng: random.Random) -> tuple[str, Any]:
    kind = rng.choice(["linear", "linear", "conv", "bn", "ln", "emb"])
    n = rng.choice([2, 3, 4, 6])
    if kind == "linear":
        return kind, [n, rng.choice([2, 3, 5]), rng.random() < 0.7]
    if kind == "conv":
        return kind, [n, rng.choice([2, 4]), rng.choice([1, 3]), rng.random() < 0.5]
    if kind == "emb":
        return kind, [rng.choice([5, 7]), n]
    return kind, [n]


def random_model(rng: random.Random) -> ModelDef:
    layers: list[Layer] = []
    for index in range(rng.randint(2, 5)):
        roll = rng.random()
        if roll < 0.15:
            layers.append([f"block{index}", "seq", [_leaf(rng) for _ in range(rng.randint(1, 3))]])
        elif roll < 0.27:
            layers.append([f"layers{index}", "mlist", [_leaf(rng) for _ in range(rng.randint(2, 4))]])
        elif roll < 0.35:
            layers.append(
                [f"heads{index}", "mdict", [[f"h{i}", *_leaf(rng)] for i in range(rng.randint(1, 3))]]
            )
        else:
            layers.append([f"layer{index}", *_leaf(rng)])
    if rng.random() < 0.3:
        layers.append(["stats", "buf", [(rng.choice([2, 3]),), rng.random() < 0.5]])
    return ModelDef(layers)


def _modules(model: ModelDef) -> list[Layer]:
    return [layer for layer in model.layers if layer[1] != "buf"]


def _resizable(model: ModelDef) -> list[Any]:
    """Every leaf args list whose first size can change (in place)."""
    found = []
    for _, kind, args in _modules(model):
        if kind in ("seq", "mlist"):
            found += [a for _, a in args]
        elif kind == "mdict":
            found += [a for _, _, a in args]
        else:
            found.append(args)
    return found


# --- mutations: A -> B ---


def m_same(model: ModelDef, rng: random.Random) -> str:
    return "same"


def m_add(model: ModelDef, rng: random.Random) -> str:
    model.layers.insert(rng.randint(0, len(model.layers)), ["extra", *_leaf(rng)])
    return "add"


def m_remove(model: ModelDef, rng: random.Random) -> str:
    model.layers.remove(rng.choice(_modules(model)))
    return "remove"


def m_resize(model: ModelDef, rng: random.Random) -> str:
    args = rng.choice(_resizable(model))
    args[0] = args[0] + rng.choice([1, 2])
    return "resize"


def m_rename(model: ModelDef, rng: random.Random) -> str:
    layer = rng.choice(_modules(model))
    layer[0] = "renamed_" + layer[0]
    return "rename"


def m_bias(model: ModelDef, rng: random.Random) -> str:
    leaves = [a for a in _resizable(model) if len(a) in (3, 4) and isinstance(a[-1], bool)]
    if not leaves:
        model.layers.append(["fc_bias", "linear", [2, 2, True]])
        return "add"
    leaves[0][-1] = not leaves[0][-1]
    return "bias"


def m_buffer(model: ModelDef, rng: random.Random) -> str:
    persistent = rng.random() < 0.5
    model.layers.append(["new_buf", "buf", [(2,), persistent]])
    return "buffer" if persistent else "same"


def m_grow_container(model: ModelDef, rng: random.Random) -> str:
    containers = [layer for layer in model.layers if layer[1] in ("seq", "mlist", "mdict")]
    if not containers:
        model.layers.append(["grown", "mlist", [_leaf(rng)]])
        return "add"
    _, kind, args = rng.choice(containers)
    args.append([f"h{len(args)}", *_leaf(rng)] if kind == "mdict" else _leaf(rng))
    return "add"


def m_wrapped(model: ModelDef, rng: random.Random) -> str:
    model.wrapped = True
    return "model-wrapped"


def m_custom(model: ModelDef, rng: random.Random) -> str:
    """A's `CustomOld` saved `w_old`; B's `Custom` renames it on load: torch accepts it."""
    model.layers.append(["legacy", "custom", [3]])
    return "custom"


MUTATIONS = [
    m_same,
    m_add,
    m_remove,
    m_resize,
    m_rename,
    m_bias,
    m_buffer,
    m_grow_container,
    m_wrapped,
    m_custom,
]
TRANSFORMS = [
    "none",
    "none",
    "dp",
    "compile",
    "dp_compile",
    "half",
    "no_nbt_meta",
    "no_nbt_plain",
    "no_nbt_meta_v1",
    "training",
    "training_nokey",
]


@dataclass
class Case:
    index: int
    model_a: ModelDef
    model_b: ModelDef
    mutation: str
    transform: str
    key: str | None = None
    notes: list[str] = field(default_factory=list)


def make_case(index: int) -> Case:
    rng = random.Random(1000 + index)
    model_a = random_model(rng)
    if rng.random() < 0.5:
        model_a.layers.insert(0, ["bn_a", "bn", [3]])  # plenty of BatchNorm states for the nbt transforms
    mutation = MUTATIONS[index % len(MUTATIONS)]
    transform = TRANSFORMS[(index // len(MUTATIONS)) % len(TRANSFORMS)]
    model_b = copy.deepcopy(model_a)
    name = mutation(model_b, rng)
    if name == "custom":
        model_a.layers.append(["legacy", "custom_old", [3]])
    key = "model_state_dict" if transform == "training" else None
    return Case(index, model_a, model_b, name, transform, key)


# --- degenerate cases: models and checkpoints with little or no state ---

EDGE_MODELS: dict[str, list[Layer]] = {
    "stateless": [],  # no parameters, no buffers: its state dict is empty
    "nonpersistent": [["cache", "buf", [(3,), False]]],  # only a buffer that is not saved: empty too
    "scalar": [["scale", "buf", [(), True]]],  # one 0-d buffer
    "scalar_nonpersistent": [["scale", "buf", [(), True]], ["cache", "buf", [(2,), False]]],
    "linear": [["fc", "linear", [2, 3, True]]],
    "bn": [["bn", "bn", [2]]],  # BatchNorm's 0-d num_batches_tracked
}
EDGE_TRANSFORMS = ["none", "plain_empty", "training", "training_nokey"]


def edge_case(index: int) -> Case:
    """Every (A, B) pair of EDGE_MODELS under every EDGE_TRANSFORMS, in a fixed order (index -> case).
    `plain_empty` saves `{}` whatever A is (a file written before there was anything to save)."""
    names = sorted(EDGE_MODELS)
    pairs = [(a, b, t) for t in EDGE_TRANSFORMS for a in names for b in names]
    a, b, transform = pairs[index % len(pairs)]
    model_a, model_b = ModelDef(copy.deepcopy(EDGE_MODELS[a])), ModelDef(copy.deepcopy(EDGE_MODELS[b]))
    key = "model_state_dict" if transform == "training" else None
    return Case(index, model_a, model_b, f"{a}->{b}", transform, key)


EDGE_CASES = len(EDGE_MODELS) ** 2 * len(EDGE_TRANSFORMS)
