"""`ckaudit fix`: every kind of conversion, loaded back by real torch into the model with strict=True; the
original untouched, no file replaced, unsafe pickles refused without being loaded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ckaudit.cli import main
from tests.conftest import requires_torch
from tests.gptrepo import BUILD, gpt, training_checkpoint, write_repo

pytestmark = [requires_torch, pytest.mark.slow]


def registry(root: Path, entry: str = "") -> None:
    build = "\n".join("      " + line for line in BUILD.splitlines())
    text = f"version: 1\nmodels:\n  gpt:\n    build: |\n{build}\ncheckpoints:\n{entry or '  []'}\n"
    (root / "ckaudit.yaml").write_text(text.replace("checkpoints:\n  []", "checkpoints: []"), "utf-8")


def fix(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    """Exit status, the JSON report of the copy, stderr."""
    status = main(["fix", *argv, "--format", "json"])
    out, err = capsys.readouterr()
    return status, json.loads(out) if out else {}, err


def strict_load(path: Path, **overrides: Any) -> None:
    """The oracle: the copy is a plain state dict that loads with strict=True."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, weights_only=True)
    gpt(**overrides).load_state_dict(state, strict=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_repo(tmp_path / "gpt")
    return tmp_path / "gpt"


@pytest.mark.parametrize("key", ["", "    key: model\n"])
def test_planned_from_the_diagnosis_container_and_prefix(
    repo: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    """Without `key:` the diagnosis finds the container; with it, the registry says where it is."""
    ckpt = repo / "out" / "ckpt.pt"
    training_checkpoint(ckpt, compiled=True)
    registry(repo, f'  - path: out/ckpt.pt\n    model: gpt\n{key}    sha256: "{digest(ckpt)}"\n')
    before = digest(ckpt)
    status, report, err = fix(capsys, str(ckpt), "--repoint")
    copy = repo / "out" / "ckpt.fixed.pt"
    assert "state dict taken from `model`; strip_prefix '_orig_mod.'" in err
    assert status == 0 and report["tool"]["command"] == "fix"
    assert report["checkpoints"][0]["path"] == "out/ckpt.fixed.pt"
    assert report["checkpoints"][0]["verdict"] == "ok"
    strict_load(copy)
    assert digest(ckpt) == before
    text = (repo / "ckaudit.yaml").read_text()
    assert "path: out/ckpt.fixed.pt" in text and digest(copy) in text and "out/ckpt.pt" not in text
    lock = (repo / "ckaudit.lock").read_text()
    assert "out/ckpt.fixed.pt" in lock and "out/ckpt.pt" not in lock

    status, _, err = fix(capsys, str(ckpt), "--key", "model")  # the copy exists now: never replaced
    assert status == 2 and "already exists" in err


@pytest.mark.parametrize(
    ("saved", "options"),
    [
        ({"prefix": "module."}, ["--strip-prefix", "module."]),
        ({"drop_prefix": "transformer."}, ["--add-prefix", "transformer."]),
        ({"rename": ("transformer.ln_f", "final_norm")}, ["--rename", "final_norm=transformer.ln_f"]),
        ({"extra": True}, ["--drop", "aux.*"]),
    ],
)
def test_each_option_gives_a_strictly_loading_copy(
    repo: Path, capsys: pytest.CaptureFixture[str], saved: dict[str, Any], options: list[str]
) -> None:
    import torch

    state = gpt().state_dict()
    if "prefix" in saved:
        state = {saved["prefix"] + k: v for k, v in state.items()}
    if "drop_prefix" in saved:  # saved by code that had no `transformer` ModuleDict yet
        state = {k.removeprefix(saved["drop_prefix"]): v for k, v in state.items()}
    if "rename" in saved:
        old, new = saved["rename"]
        state = {(new + k[len(old) :] if k.startswith(old) else k): v for k, v in state.items()}
    if "extra" in saved:
        state = {**state, "aux.loss_scale": torch.ones(1)}
    torch.save(state, repo / "ckpt.pt")
    registry(repo)
    if "drop_prefix" in saved:  # lm_head got the prefix too: the model's lm_head is not under transformer
        options = [*options, "--rename", "transformer.lm_head=lm_head"]
    status, report, err = fix(capsys, str(repo / "ckpt.pt"), *options, "--model", "gpt")
    assert status == 0, err
    assert report["checkpoints"][0]["verdict"] == "ok"
    strict_load(repo / "ckpt.fixed.pt")


def test_to_safetensors_from_a_training_checkpoint(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    training_checkpoint(repo / "ckpt.pt")
    registry(repo)
    out = repo / "export" / "gpt.safetensors"
    out.parent.mkdir()
    status, report, err = fix(
        capsys, str(repo / "ckpt.pt"), "--key", "model", "--to", "safetensors", "--out", str(out)
    )
    assert "wrote export/gpt.safetensors from ckpt.pt: state dict taken from `model`" in err
    assert status == 0 and report["checkpoints"][0]["format"] == "safetensors"
    strict_load(out)  # tied or not, every tensor was written


def test_unsafe_pickles_are_refused_without_being_loaded(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    import torch

    trace = tmp_path / "executed"

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (os.system, (f"touch {trace}",))

    torch.save({"model": gpt().state_dict(), "hook": Payload()}, repo / "evil.pt")
    registry(repo)
    status, _, err = fix(capsys, str(repo / "evil.pt"), "--key", "model")
    assert status == 2 and "refused" in err
    assert not trace.exists() and not (repo / "evil.fixed.pt").exists()


def test_nothing_to_do_is_said(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    torch.save(gpt().state_dict(), repo / "plain.pt")
    registry(repo, "  - path: plain.pt\n    model: gpt\n")
    status, _, err = fix(capsys, str(repo / "plain.pt"))
    assert status == 2 and "nothing to convert" in err
    assert not (repo / "plain.fixed.pt").exists()
