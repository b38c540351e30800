"""dangling-reference: literals naming missing checkpoints, and the ones that must not be reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ckaudit.files.references import find_dangling
from ckaudit.findings import Rule, Severity
from ckaudit.registry.config import ScanSettings
from ckaudit.vcs import queries as git

CODE = '''\
"""Docstrings mention ghost.pt without being references."""
import argparse
import torch

BEST = "checkpoints/best.pth"                       # exists
GONE = "checkpoints/gone.pth"                       # dangling: constant
URL = "https://example.com/weights/gone.pt"         # a URL
PATTERN = "checkpoints/epoch_{epoch}.pt"            # a placeholder
OLD = "checkpoints/epoch_%d.pt" % 3                 # a placeholder
GLOB = "checkpoints/*.pt"                           # a glob
ABSOLUTE = "/data/shared/model.pt"                  # a machine path
VENV = ".venv/lib/x.pt"                             # excluded by the scan globs
NOT_A_CHECKPOINT = "config/missing.yaml"            # not checkpoint-like


def load(epoch):
    torch.load("checkpoints/missing.pt")            # dangling: torch.load
    torch.load(f"checkpoints/epoch_{epoch}.pt")     # f-string
    torch.load("local.pt")                          # exists beside this file
    model.load_state_dict(torch.load(path="weights/none.bin"))  # dangling: keyword


def save(model, out_path="checkpoints/new.pt"):    # an output: parameter name
    torch.save(model.state_dict(), "checkpoints/fresh.pt")   # an output: save call
    with open("checkpoints/raw.bin", "wb") as f:   # an output: write mode
        f.write(b"")
    output_file = "checkpoints/export.pt"           # an output: variable name
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", default="checkpoints/arg.pt")   # an output: option name
    parser.add_argument("--weights", default="checkpoints/arg_in.pt")   # dangling: an input default
    return {"save_to": "checkpoints/d.pt", "init": "checkpoints/init.pt"}  # init is dangling
'''


def _repo(root: Path) -> None:
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints" / "best.pth").write_bytes(b"x")
    (root / "src").mkdir()
    (root / "src" / "train.py").write_text(CODE)
    (root / "src" / "local.pt").write_bytes(b"x")
    (root / "broken.py").write_text("def (:\n  'checkpoints/x.pt'\n")


def test_dangling_literals(tmp_path: Path) -> None:
    _repo(tmp_path)
    findings = find_dangling(tmp_path, ["src/train.py", "broken.py"], ScanSettings(), None)
    assert {f.details["literal"] for f in findings} == {
        "checkpoints/gone.pth",
        "checkpoints/missing.pt",
        "weights/none.bin",
        "checkpoints/arg_in.pt",
        "checkpoints/init.pt",
    }
    lines = CODE.splitlines()
    for f in findings:
        assert f.rule is Rule.DANGLING_REFERENCE and f.severity is Severity.ERROR
        assert f.location is not None and f.location.path == "src/train.py"
        assert f.details["literal"] in lines[f.location.line - 1]  # type: ignore[operator]
        assert f.location.snippet and f.details["literal"] in f.location.snippet
        assert f.fix


def test_include_globs_decide_what_is_checkpoint_like(tmp_path: Path) -> None:
    _repo(tmp_path)
    settings = ScanSettings(include=("**/*.pth",), exclude=())
    findings = find_dangling(tmp_path, ["src/train.py"], settings, None)
    assert {f.details["literal"] for f in findings} == {"checkpoints/gone.pth"}


def test_hint_names_the_rename(git_repo: Path, run_git: Callable[..., str]) -> None:
    (git_repo / "ck").mkdir()
    (git_repo / "ck" / "best.pth").write_bytes(b"weights" * 50)
    (git_repo / "train.py").write_text('import torch\nstate = torch.load("ck/best.pth")\n')
    run_git(git_repo, "add", "-A")
    run_git(git_repo, "commit", "-qm", "first")
    run_git(git_repo, "mv", "ck/best.pth", "ck/final.pth")
    run_git(git_repo, "commit", "-qm", "rename")
    (finding,) = find_dangling(git_repo, ["train.py"], ScanSettings(), git.find_repo(git_repo))
    assert finding.location is not None and (finding.location.path, finding.location.line) == ("train.py", 2)
    assert "renamed to ck/final.pth" in finding.message
    assert finding.details["renamed_to"] == "ck/final.pth"
    assert "ck/final.pth" in finding.fix


def test_names_joined_to_a_runtime_folder_are_not_references(tmp_path: Path) -> None:
    code = (
        "import os, torch\n"
        'a = torch.load(OUT / "joined.pt")\n'
        'b = torch.load(os.path.join(folder, "joined2.pt"))\n'
        'c = torch.load(Path("ck").joinpath("joined3.pt"))\n'
        'd = torch.load("ck/" + "plain.pt")\n'
    )
    (tmp_path / "m.py").write_text(code)
    findings = find_dangling(tmp_path, ["m.py"], ScanSettings(), None)
    assert findings == []
