"""The hook with `load: {loader: ...}`: the project's loader is part of what decides whether a checkpoint
loads, so staging a change to it alone is judged like a change to the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, requires_torch
from tests.gptrepo import BUILD, UTILS, training_checkpoint, write_repo
from tests.modelrepo import SharedWorker, run_cli, untouched, write

pytestmark = [requires_torch, pytest.mark.slow]


@pytest.fixture
def gpt_repo(git_repo: Path) -> Path:
    write_repo(git_repo)
    training_checkpoint(git_repo / "out" / "ckpt.pt", compiled=True)
    build = "\n".join("      " + line for line in BUILD.splitlines())
    write(
        git_repo,
        "ckaudit.yaml",
        f"version: 1\nmodels:\n  gpt:\n    build: |\n{build}\ncheckpoints:\n"
        "  - path: out/ckpt.pt\n    model: gpt\n    key: model\n"
        "    load: {loader: 'utils:clean_state_dict'}\n",
    )
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-qm", "nanoGPT with its loader")
    return git_repo


def hook(repo: Path, *files: str) -> tuple[int, dict]:
    with untouched(repo):
        status, out = run_cli(repo, "hook", "--format", "json", *files)
    return status, json.loads(out) if out.strip() else {}


def test_a_staged_loader_change_is_judged(gpt_repo: Path, worker: SharedWorker) -> None:
    write(gpt_repo, "utils.py", UTILS.replace('"_orig_mod."', '"module."'))  # no longer strips the prefix
    git(gpt_repo, "add", "utils.py")
    status, report = hook(gpt_repo, "utils.py")
    (result,) = report["checkpoints"]
    assert status == 1 and result["path"] == "out/ckpt.pt"
    (finding,) = [f for f in result["findings"] if f["severity"] == "error"]
    assert (
        finding["rule"] == "key-prefix"
        and "as loaded with loader utils:clean_state_dict" in finding["message"]
    )
    assert finding["message"].startswith("loads at HEAD but not with")

    write(gpt_repo, "utils.py", UTILS + "\n# a comment\n")  # still strips it
    git(gpt_repo, "add", "utils.py")
    status, report = hook(gpt_repo, "utils.py")
    assert status == 0 and [c["findings"] for c in report["checkpoints"]] == [[]]
