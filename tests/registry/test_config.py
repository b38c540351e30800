"""ckaudit.yaml parsing: defaults, every field, and errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ckaudit.errors import ConfigError
from ckaudit.registry.config import DEFAULT_INCLUDE, load_config, parse_config

FULL = """\
version: 1
python: .venv/bin/python
timeout: 30
models:
  classifier:
    factory: models.classifier:ModelA
    kwargs: {num_classes: 10}
    sources: ["models/**/*.py"]
  gpt:
    build: |
      from model import GPT
      model = GPT()
checkpoints:
  - path: checkpoints/model_a.pth
    model: classifier
    key: model_state_dict
    sha256: "AA00000000000000000000000000000000000000000000000000000000000000"
    strict: false
    ignore: ["*.num_batches_tracked"]
    expect: fails
    reason: "v2 head replaces fc1"
trusted_globals: [mypkg.config.TrainConfig, mypkg.config.Mode]
scan:
  include: ["**/*.pt"]
"""


def test_full_registry_is_read() -> None:
    config = parse_config(FULL, "ckaudit.yaml", Path("/repo"))
    assert config.python == ".venv/bin/python"
    assert config.timeout == 30.0
    assert config.models["classifier"].kwargs == {"num_classes": 10}
    assert config.models["classifier"].sources == ("models/**/*.py",)
    assert config.models["gpt"].build is not None and "GPT()" in config.models["gpt"].build
    (entry,) = config.checkpoints
    assert entry.key == "model_state_dict"
    assert entry.sha256 == "aa" + "0" * 62
    assert entry.strict is False
    assert entry.ignore == ("*.num_batches_tracked",)
    assert entry.expect_fails and entry.reason == "v2 head replaces fc1"
    assert entry.line == 14
    assert config.scan.include == ("**/*.pt",)
    assert config.trusted_globals == ("mypkg.config.Mode", "mypkg.config.TrainConfig")
    assert config.checkpoint("checkpoints/model_a.pth") is entry


def test_empty_file_gives_defaults() -> None:
    config = parse_config("", "ckaudit.yaml", Path("/repo"))
    assert config.checkpoints == () and config.models == {}
    assert config.scan.include == DEFAULT_INCLUDE


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("version: 1\nmodles: {}\n", 2, "unknown key 'modles'"),
        ("version: 2\n", 1, "version must be 1"),
        ("models:\n  a:\n    factory: nocolon\n", 3, "package.module:callable"),
        ("models:\n  a:\n    kwargs: {}\n", 3, "exactly one of factory"),
        (
            "models:\n  a: {factory: 'm:A'}\ncheckpoints:\n  - path: x.pt\n    model: b\n",
            5,
            "unknown model 'b'",
        ),
        ("checkpoints:\n  - model: a\n", 2, "needs a path"),
        ("checkpoints:\n  - path: x.pt\n    strict: maybe\n", 3, "must be a bool"),
        ("checkpoints:\n  - path: x.pt\n    sha256: abc\n", 3, "64 hex digits"),
        ("checkpoints:\n  - path: x.pt\n  - path: x.pt\n", 3, "registered twice"),
        ("checkpoints: {path: x.pt}\n", 1, "must be a list"),
        ("timeout: true\n", 1, "must be a number"),
        ("models:\n  a: {factory: 'm:A'\n", 3, "not valid YAML"),
        ("- just\n- a list\n", 1, "must be a mapping"),
        ("trusted_globals: mypkg.Config\n", 1, "must be a list"),
        ("trusted_globals: [1]\n", 1, "list of strings"),
        ("trusted_globals: [Config]\n", 1, "not a module.qualname"),
        ("trusted_globals: ['mypkg.Config()']\n", 1, "not a module.qualname"),
        ("\ntrusted_globals: [os.system]\n", 2, "cannot be trusted"),
        ("trusted_globals: [builtins.eval]\n", 1, "cannot be trusted"),
        ("trusted_globals: [torch.utils.collect_env.run]\n", 1, "cannot be trusted"),
        ("trusted_globals: [mypkg.os.system]\n", 1, "cannot be trusted"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "repo/ckaudit.yaml", Path("/repo"))
    assert str(caught.value).startswith(f"repo/ckaudit.yaml:{line}: ")
    assert fragment in str(caught.value)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "ckaudit.yaml"
    path.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)
