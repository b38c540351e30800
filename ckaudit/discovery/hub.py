"""Hugging Face checkpoints of a library class: `pytorch_model.bin` / `model.safetensors` beside a
`config.json` whose `architectures` names a transformers class the repository does not define (a
`BertModel` fine-tuned and saved with `save_pretrained`). The model entry builds that class from the config's
own values, inline, so it needs neither the file nor the network (without `architectures`, the base model:
`AutoModel.from_config(...)`):

    from transformers import AutoConfig, BertModel
    model = BertModel(AutoConfig.for_model("bert", hidden_size=32, ...))

Only the config's top-level plain values are passed (nested ones such as `id2label` keep their defaults,
which change no parameter shape); bookkeeping keys (`architectures`, `transformers_version`, …) are left out.
"""

from __future__ import annotations

from pathlib import Path

from ckaudit.reader import json_beside
from ckaudit.registry import ModelSpec

CONFIG = "config.json"
_BOOKKEEPING = {
    "architectures",
    "model_type",
    "transformers_version",
    "_name_or_path",
    "torch_dtype",
    "dtype",
}
_PLAIN = (bool, int, float, str, type(None))


def library_model(path: Path, repository_classes: set[str]) -> ModelSpec | None:
    """The `build:` entry for the transformers class `config.json` beside `path` names, if the repository
    does not define that class itself (then the repository's class is proposed instead)."""
    config = json_beside((path if path.is_dir() else path.parent) / CONFIG)
    if config is None:
        return None
    architectures = config.get("architectures") or ["AutoModel"]
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not isinstance(architectures, list) or len(architectures) != 1:
        return None
    arch = architectures[0]
    if not isinstance(arch, str) or not arch.isidentifier() or arch in repository_classes:
        return None
    values = {
        k: v
        for k, v in sorted(config.items())
        if k.isidentifier() and k not in _BOOKKEEPING and isinstance(v, _PLAIN)
    }
    arguments = "".join(f"    {k}={v!r},\n" for k, v in values.items())
    call = f"{arch}.from_config" if arch == "AutoModel" else arch  # no `architectures`: the base model
    build = (
        f"from transformers import AutoConfig, {arch}\n"
        f"model = {call}(AutoConfig.for_model(\n    {model_type!r},\n{arguments}))\n"
    )
    return ModelSpec(name=arch, build=build)
