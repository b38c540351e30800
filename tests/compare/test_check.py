"""`ckaudit check --base REF [--head REF]` and the torch-free `ckaudit hook --files-only`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, requires_torch
from tests.modelrepo import NET, SharedWorker, run_cli, untouched, write

BREAKING = NET.replace("nn.Conv2d(3, 8, 3)", "nn.Conv2d(1, 8, 3)")


@requires_torch
@pytest.mark.slow  # three trees, two builds each
def test_check_between_commits_and_against_the_working_tree(model_repo: Path, worker: SharedWorker) -> None:
    base = git(model_repo, "rev-parse", "HEAD").strip()
    write(model_repo, "models/net.py", BREAKING)
    git(model_repo, "commit", "-q", "-am", "break")
    with untouched(model_repo):
        status, out = run_cli(model_repo, "check", "--base", base, "--head", "HEAD", "--format", "json")
    report = json.loads(out)
    assert status == 1 and report["checkpoints"][0]["findings"][0]["rule"] == "shape-mismatch"
    write(model_repo, "models/net.py", NET)  # the working tree repairs it (default head)
    with untouched(model_repo):
        status, out = run_cli(model_repo, "check", "--base", base)
    assert status == 0
    # already failing at base: a warning, not a failure, unless --strict
    status, out = run_cli(model_repo, "check", "--base", "HEAD", "--head", "HEAD", "--format", "json")
    assert status == 0 and json.loads(out)["checkpoints"] == []  # nothing changed, nothing compared
    write(model_repo, "models/net.py", BREAKING + "# still broken\n")
    status, out = run_cli(model_repo, "check", "--base", "HEAD", "--format", "json")
    assert status == 0 and json.loads(out)["checkpoints"][0]["findings"][0]["severity"] == "warning"
    assert run_cli(model_repo, "check", "--base", "HEAD", "--strict")[0] == 1


@pytest.mark.torch  # builds its fixture with torch
def test_check_rejects_an_unknown_base(model_repo: Path) -> None:
    assert run_cli(model_repo, "check", "--base", "no-such-ref")[0] == 2


@pytest.mark.torch  # builds its fixture with torch
def test_files_only_checks_staged_checkpoints_without_torch(model_repo: Path) -> None:
    (model_repo / "checkpoints" / "lfs.pt").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "a" * 64 + "\nsize 123\n"
    )
    whole = (model_repo / "checkpoints" / "net.pt").read_bytes()
    (model_repo / "checkpoints" / "cut.pt").write_bytes(whole[: len(whole) // 2])
    (model_repo / "checkpoints" / "big.pt").write_bytes(whole)
    git(model_repo, "add", "checkpoints")
    with untouched(model_repo):
        status, out = run_cli(model_repo, "hook", "--files-only", "--format", "json", "--large", "100")
    rules = {c["path"]: {f["rule"] for f in c["findings"]} for c in json.loads(out)["checkpoints"]}
    assert status == 1
    assert "lfs-pointer" in rules["checkpoints/lfs.pt"]
    assert rules["checkpoints/cut.pt"] & {"truncated", "corrupt"}
    assert "large-outside-lfs" in rules["checkpoints/big.pt"]
    write(model_repo, ".gitattributes", "*.pt filter=lfs diff=lfs merge=lfs -text\n")
    status, out = run_cli(
        model_repo, "hook", "--files-only", "--format", "json", "--large", "100", "checkpoints/big.pt"
    )
    assert status == 0
