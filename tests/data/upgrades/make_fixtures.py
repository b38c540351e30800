"""Make the library-upgrade fixtures: tiny models saved by an OLD transformers, checked against today's.

Run from the repository root with the project's venv (torch==2.13.0 installed):

    .venv/bin/python tests/data/upgrades/make_fixtures.py

It installs transformers==4.51.3 into a temporary `pip install --target` directory (the test venv holds the
new version; two versions cannot share one environment), builds each model from a tiny config, gives every
floating tensor distinct random values (so a tensor that lands on the wrong key is detectable by value), and
writes `<name>/config.json` + `<name>/model.safetensors` here with `save_pretrained`. The files are small and
committed; the tests never need the old version.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

OLD = "transformers==4.51.3"
HERE = Path(__file__).resolve().parent


def _configs() -> dict[str, tuple[str, object]]:
    import transformers as tf

    vision = {"image_size": 32, "num_channels": 3, "num_labels": 3}
    return {
        "vit": (
            "ViTForImageClassification",
            tf.ViTConfig(
                hidden_size=16,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=24,
                patch_size=8,
                **vision,
            ),
        ),
        "swin": (
            "SwinForImageClassification",
            tf.SwinConfig(
                embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=2, patch_size=4, **vision
            ),
        ),
        "segformer": (
            "SegformerForSemanticSegmentation",
            tf.SegformerConfig(
                num_encoder_blocks=2,
                depths=[1, 1],
                sr_ratios=[2, 1],
                hidden_sizes=[8, 16],
                patch_sizes=[7, 3],
                strides=[4, 2],
                num_attention_heads=[1, 2],
                mlp_ratios=[2, 2],
                decoder_hidden_size=16,
                **vision,
            ),
        ),
        "llava": (
            "LlavaForConditionalGeneration",
            tf.LlavaConfig(
                vision_config=tf.CLIPVisionConfig(
                    hidden_size=16,
                    intermediate_size=24,
                    num_hidden_layers=2,
                    num_attention_heads=2,
                    image_size=16,
                    patch_size=8,
                ),
                text_config=tf.LlamaConfig(
                    hidden_size=16,
                    intermediate_size=24,
                    num_hidden_layers=2,
                    num_attention_heads=2,
                    num_key_value_heads=2,
                    vocab_size=64,
                ),
                image_token_index=63,
            ),
        ),
    }


def save_all() -> None:
    import torch
    import transformers as tf

    torch.manual_seed(0)
    for name, (cls_name, config) in _configs().items():
        model = getattr(tf, cls_name)(config).eval()
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.copy_(torch.randn_like(tensor))
        out = HERE / name
        model.save_pretrained(out, safe_serialization=True)
        (out / "saved_with.txt").write_text(f"transformers {tf.__version__}, torch {torch.__version__}\n")
        print(name, "->", out)


def main() -> None:
    if "--save" in sys.argv:
        save_all()
        return
    with tempfile.TemporaryDirectory() as target:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", target, OLD], check=True)
        env = {**os.environ, "PYTHONPATH": target}
        subprocess.run([sys.executable, __file__, "--save"], env=env, check=True)


if __name__ == "__main__":
    main()
