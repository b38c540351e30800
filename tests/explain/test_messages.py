"""`ckaudit explain` on error texts torch itself produced: each failure is made to happen for real."""

from __future__ import annotations

import json
import pickle
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ckaudit.cli import main
from ckaudit.explain.messages import explain_text
from ckaudit.findings import Rule
from tests.conftest import requires_torch

pytestmark = [requires_torch]


def failure(action: Callable[[], Any]) -> str:
    """The traceback a user would paste: raised by torch, formatted by Python."""
    try:
        action()
    except BaseException:  # whatever torch raised
        return traceback.format_exc()
    raise AssertionError("expected the action to fail")


def rules(text: str, cwd: Path) -> list[Rule]:
    return [f.rule for f in explain_text(text, cwd).findings]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _nets() -> tuple[Any, Any]:
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 16, 3), nn.Linear(4, 10)), nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.Linear(4, 10)
    )


def test_size_mismatch(here: Path) -> None:
    old, new = _nets()
    text = failure(lambda: new.load_state_dict(old.state_dict()))
    explanation = explain_text(text, here)
    assert explanation.verdict == "code" and [f.rule for f in explanation.findings] == [Rule.SHAPE_MISMATCH]
    assert (
        explanation.findings[0].message
        == "0.weight: [16, 3, 3, 3] in the checkpoint, [16, 1, 3, 3] in the model"
    )
    assert explanation.findings[0].location is not None
    assert explanation.findings[0].location.path.endswith("test_messages.py")  # the user's load call


def test_dataparallel_prefix_and_training_checkpoint(here: Path) -> None:
    from torch import nn

    old, _ = _nets()
    text = failure(lambda: old.load_state_dict(nn.DataParallel(old).state_dict()))
    explanation = explain_text(text, here)
    assert [f.rule for f in explanation.findings] == [Rule.KEY_PREFIX]
    assert 'consume_prefix_in_state_dict_if_present(sd, "module.")' in explanation.findings[0].fix
    training = {"model_state_dict": old.state_dict(), "epoch": 3}
    text = failure(lambda: old.load_state_dict(training))
    assert rules(text, here) == [Rule.WRONG_CONTAINER_KEY]
    _, other = _nets()
    other.add_module("2", nn.Linear(10, 2))
    assert rules(failure(lambda: other.load_state_dict(old.state_dict())), here) == [
        Rule.SHAPE_MISMATCH,
        Rule.MISSING_KEYS,
    ]


def test_weights_only_names_the_globals(here: Path) -> None:
    import argparse

    import torch

    torch.save({"args": argparse.Namespace(lr=0.1), "w": torch.zeros(2)}, here / "with_args.pt")
    text = failure(lambda: torch.load("with_args.pt"))
    explanation = explain_text(text, here)
    assert explanation.verdict == "environment"
    assert [f.rule for f in explanation.findings] == [Rule.WEIGHTS_ONLY_BLOCKED]
    assert "torch.serialization.add_safe_globals([argparse.Namespace])" in explanation.findings[0].fix


def test_weights_only_error_for_code_gives_no_allow_line(here: Path) -> None:
    """torch's own refusal of a payload (posix.system): the explanation never offers to allow it."""
    import os

    import torch

    from tests.reader.reader_fixtures import Exploit

    torch.save({"w": torch.zeros(1), "x": Exploit(os.system, "true")}, here / "evil.pt")
    text = failure(lambda: torch.load("evil.pt"))
    (finding,) = [f for f in explain_text(text, here).findings if f.rule is Rule.WEIGHTS_ONLY_BLOCKED]
    assert "posix.system" in finding.fix and "never allow" in finding.fix
    assert "add_safe_globals([" not in finding.fix


@pytest.mark.parametrize("weights_only", [True, False])
def test_repository_problems_in_both_wordings(here: Path, weights_only: bool) -> None:
    import torch

    (here / "lfs.pt").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "a" * 64 + "\nsize 9\n"
    )
    (here / "page.pt").write_text("<!DOCTYPE html><html><body>Sign in</body></html>")
    torch.save({"w": torch.zeros(1000)}, here / "full.pt")
    data = (here / "full.pt").read_bytes()
    (here / "cut.pt").write_bytes(data[: len(data) // 2])
    (here / "empty.pt").write_bytes(b"")
    expected = {
        "lfs.pt": Rule.LFS_POINTER,
        "page.pt": Rule.NOT_A_CHECKPOINT,
        "cut.pt": Rule.TRUNCATED,
        "empty.pt": Rule.TRUNCATED,
    }
    for name, rule in expected.items():
        command = f"$ python evaluate.py --checkpoint {name}\n"  # the CI log names the file
        text = command + failure(lambda name=name: torch.load(name, weights_only=weights_only))
        explanation = explain_text(text, here)
        assert explanation.verdict == "repository", (name, text)
        assert explanation.findings[0].rule is rule, (name, text)
        if rule is not Rule.TRUNCATED or name == "cut.pt":
            assert explanation.findings[0].checkpoint == name, "the file named in the text was read too"


def test_missing_file_device_and_missing_class(here: Path) -> None:
    import torch

    assert rules(failure(lambda: torch.load("checkpoints/gone.pt")), here) == [Rule.FILE_MISSING]
    device = failure(lambda: torch.serialization.default_restore_location(torch.UntypedStorage(2), "cuda:0"))
    assert rules(device, here) == [Rule.DEVICE]

    (here / "oldcode.py").write_text("class TrainArgs:\n    pass\n")
    sys.path.insert(0, str(here))
    try:
        import oldcode

        torch.save({"args": oldcode.TrainArgs()}, here / "args.pt")
        del oldcode.TrainArgs
        gone_class = failure(lambda: torch.load("args.pt", weights_only=False))
        del sys.modules["oldcode"]
        (here / "oldcode.py").unlink()
        gone_module = failure(lambda: torch.load("args.pt", weights_only=False))
    finally:
        sys.path.remove(str(here))
    explanation = explain_text(gone_class, here)
    assert [f.rule for f in explanation.findings] == [Rule.MISSING_CLASS] and "oldcode.TrainArgs" in (
        explanation.findings[0].message
    )
    assert rules(gone_module, here) == [Rule.MISSING_CLASS]
    assert rules(failure(lambda: pickle.loads(b"\x80\x04cno_such_pkg\nX\n.")), here) == [Rule.MISSING_CLASS]


def test_cli_json_and_exit_status(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _nets()
    (here / "log.txt").write_text("CI log line\n" + failure(lambda: new.load_state_dict(old.state_dict())))
    assert main(["explain", "log.txt", "--format", "json"]) == 1
    body = json.loads(capsys.readouterr().out)
    assert body["version"] == 1 and body["verdict"] == "code"
    assert body["findings"][0]["rule"] == "shape-mismatch" and body["findings"][0]["cause"] == "code"
    (here / "other.txt").write_text("Segmentation fault in the data loader\n")
    assert main(["explain", "other.txt"]) == 0
    assert "verdict: unknown" in capsys.readouterr().out
    assert main(["explain", "no-such-log.txt"]) == 2


def test_frames_of_code_without_a_file_are_no_location() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "<string>", line 2, in <module>\n'
        "_pickle.UnpicklingError: invalid load key, 'v'.\n"
    )
    explanation = explain_text(text, Path.cwd())
    assert [f.rule.value for f in explanation.findings] == ["lfs-pointer"]
    assert explanation.findings[0].location is None
