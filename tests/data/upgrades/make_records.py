"""Make the upgrade records: which key each tensor of a checkpoint saved by an OLD transformers becomes when
today's transformers loads it (`from_pretrained`, the library's own conversion).

Run from the repository root with the project's venv (torch==2.13.0 and today's transformers installed):

    .venv/bin/python tests/data/upgrades/make_records.py [TARGET]

(TARGET: a folder where `pip install --target TARGET transformers==4.51.3` was run, to reuse.)

Like make_fixtures.py it installs transformers==4.51.3 into a temporary `pip install --target` directory.
The OLD library builds each architecture from a tiny config, gives every floating tensor distinct random
values and saves it (`save_pretrained`); today's `from_pretrained` loads it. A loaded tensor equal to an old
one under another name is the truth's rename; old keys nothing took and model keys nothing filled are
recorded too. Only architectures whose old keys differ from today's are kept. A record holds key lists,
shapes and the truth (no tensors), so the tests need neither version: `records/<model_type>.json` here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

OLD = "transformers==4.51.3"
HERE = Path(__file__).resolve().parent / "records"
_TEXT = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 24}
_VISION = {**_TEXT, "image_size": 32, "patch_size": 8, "num_channels": 3}
_DECODER = {**_TEXT, "num_key_value_heads": 2, "vocab_size": 64}
# model_type -> (class name, tiny config kwargs)
ARCHS: dict[str, tuple[str, dict[str, Any]]] = {
    "bert": ("BertForMaskedLM", {**_TEXT, "vocab_size": 64}),
    "roberta": ("RobertaForMaskedLM", {**_TEXT, "vocab_size": 64}),
    "electra": ("ElectraForPreTraining", {**_TEXT, "vocab_size": 64, "embedding_size": 16}),
    "deit": ("DeiTForImageClassificationWithTeacher", {**_VISION, "num_labels": 3}),
    "beit": ("BeitForImageClassification", {**_VISION, "num_labels": 3}),
    "dinov2": ("Dinov2Model", {**_VISION}),
    "vit_mae": (
        "ViTMAEForPreTraining",
        {
            **_VISION,
            "decoder_hidden_size": 16,
            "decoder_num_hidden_layers": 1,
            "decoder_num_attention_heads": 2,
            "decoder_intermediate_size": 24,
        },
    ),
    "yolos": ("YolosForObjectDetection", {**_VISION, "num_detection_tokens": 4, "num_labels": 3}),
    "convnext": (
        "ConvNextForImageClassification",
        {"hidden_sizes": [8, 16], "depths": [1, 1], "num_stages": 2, "num_labels": 3},
    ),
    "gpt2": (
        "GPT2LMHeadModel",
        {"n_embd": 16, "n_layer": 2, "n_head": 2, "vocab_size": 64, "n_positions": 32},
    ),
    "llama": ("LlamaForCausalLM", _DECODER),
    "mistral": ("MistralForCausalLM", _DECODER),
    "qwen2": ("Qwen2ForCausalLM", _DECODER),
    "wav2vec2": (
        "Wav2Vec2ForCTC",
        {
            **_TEXT,
            "vocab_size": 16,
            "conv_dim": [8, 8],
            "conv_stride": [5, 2],
            "conv_kernel": [10, 3],
            "num_conv_pos_embeddings": 16,
            "num_conv_pos_embedding_groups": 2,
        },
    ),
    "whisper": (
        "WhisperForConditionalGeneration",
        {
            "d_model": 16,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 2,
            "encoder_ffn_dim": 24,
            "decoder_ffn_dim": 24,
            "vocab_size": 64,
            "num_mel_bins": 8,
            "max_source_positions": 16,
            "max_target_positions": 16,
        },
    ),
    "clip": ("CLIPVisionModel", {**_VISION}),
    "mobilevit": (
        "MobileViTForImageClassification",
        {
            "image_size": 32,
            "hidden_sizes": [16, 16, 16],
            "neck_hidden_sizes": [8, 8, 16, 16, 16, 16, 32],
            "num_labels": 3,
        },
    ),
}


def save_all(out: Path) -> None:
    import torch
    import transformers as tf

    torch.manual_seed(0)
    for model_type, (cls_name, kwargs) in ARCHS.items():
        try:
            config = tf.AutoConfig.for_model(model_type, **kwargs)
            model = getattr(tf, cls_name)(config).eval()
        except Exception as exc:  # an architecture this version lacks is skipped
            print("old: skip", model_type, type(exc).__name__, exc)
            continue
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.copy_(torch.randn_like(tensor))
        model.save_pretrained(out / model_type, safe_serialization=True)
        print("old:", model_type, tf.__version__)


def record_all(out: Path) -> None:
    HERE.mkdir(exist_ok=True)
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        record(folder, ARCHS[folder.name][0])
    for config in sorted(HERE.parent.glob("*/config.json")):  # make_fixtures.py's models, same OLD version
        record(config.parent, json.loads(config.read_text())["architectures"][0])


def record(folder: Path, cls_name: str) -> None:
    import transformers as tf
    from safetensors.torch import load_file

    old = load_file(folder / "model.safetensors")
    try:
        new = dict(getattr(tf, cls_name).from_pretrained(folder).state_dict())
    except Exception as exc:
        print("new: skip", folder.name, type(exc).__name__, exc)
        return
    old_shapes = {k: list(v.shape) for k, v in old.items()}
    new_shapes = {k: list(v.shape) for k, v in new.items()}
    if old_shapes == new_shapes:
        print("new: unchanged", folder.name)
        return
    renames, taken = _truth(old, new)
    data = {
        "library": "transformers",
        "old_version": OLD.split("==")[1],
        "new_version": tf.__version__,
        "arch": cls_name,
        "conversion": f"transformers.{cls_name}.from_pretrained",
        "checkpoint_shapes": old_shapes,
        "model_shapes": new_shapes,
        "renames": renames,
        "dropped": sorted(k for k in old if k not in taken and k not in new),
        "integer": sorted(k for k, v in old.items() if not v.is_floating_point()),
    }
    (HERE / f"{folder.name}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print("new:", folder.name, len(renames), "renames")


def _truth(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, str], set[str]]:
    """old key -> new key for loaded tensors equal to exactly one old tensor under another name."""
    import torch

    by_shape: dict[tuple[int, ...], list[str]] = {}
    for key, tensor in old.items():
        if tensor.is_floating_point():
            by_shape.setdefault(tuple(tensor.shape), []).append(key)
    renames: dict[str, str] = {}
    taken: set[str] = set()
    for key, tensor in new.items():
        if not tensor.is_floating_point():
            continue
        same = [k for k in by_shape.get(tuple(tensor.shape), []) if torch.equal(old[k], tensor)]
        taken.update(same)
        if len(same) == 1 and same[0] not in new and key not in old:  # not a tied copy
            renames[same[0]] = key
    return renames, taken


def main() -> None:
    if sys.argv[1:2] == ["--save"]:
        save_all(Path(sys.argv[2]))
        return
    with tempfile.TemporaryDirectory() as fresh, tempfile.TemporaryDirectory() as out:
        target = sys.argv[1] if len(sys.argv) > 1 else fresh  # a --target install of OLD to reuse
        if target == fresh:
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "-q", "--target", target, OLD], check=True
            )
        env = {**os.environ, "PYTHONPATH": target}
        subprocess.run([sys.executable, __file__, "--save", out], env=env, check=True)
        record_all(Path(out))


if __name__ == "__main__":
    main()
