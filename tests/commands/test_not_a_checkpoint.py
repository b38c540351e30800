"""Text that happens to be protocol-0 pickle opcodes (`class …` is GLOBAL, `import …` is INST) is
`not-a-checkpoint` with no garbage globals — unless it names a global that could really be imported."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from ckaudit.cli import main
from ckaudit.findings import Rule
from ckaudit.reader import CheckpointReadError, read_checkpoint

PYTHON_FILES = {
    "model.py": "class MLP(nn.Module):\n    def __init__(self):\n        super().__init__()\n",
    "train.py": "import torch\nfrom torch import nn\n\nmodel = nn.Linear(2, 2)\n",
    "notes.txt": "cat food\ndog food\nüber\n",
}


@pytest.mark.parametrize("name", sorted(PYTHON_FILES))
def test_source_file_is_not_a_checkpoint(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text(PYTHON_FILES[name], encoding="utf-8")
    with pytest.raises(CheckpointReadError) as caught:
        read_checkpoint(path)
    assert caught.value.rule is Rule.NOT_A_CHECKPOINT
    assert caught.value.globals == () and caught.value.calls == ()
    assert main(["inspect", str(path), "--format", "json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["rule"] == "not-a-checkpoint" and error["message"].endswith("(text)")
    assert error["globals"] == [] and error["calls"] == []


def test_text_that_names_a_real_global_keeps_its_error_and_globals(tmp_path: Path) -> None:
    """Fail closed: a text pickle calling os.system, cut by garbage, still carries `os.system`."""
    path = tmp_path / "evil.py"
    path.write_bytes(pickle.dumps(print, protocol=0)[:-1] + b" garbage\n")
    with pytest.raises(CheckpointReadError) as caught:
        read_checkpoint(path)
    assert caught.value.rule is not Rule.NOT_A_CHECKPOINT
    assert any("print" in g for g in caught.value.globals)
