"""`ckaudit hook` in-process against real repositories, real checkpoints and one real model worker.

Each case proves with a before/after snapshot that the working tree, the index, refs and the stash are
untouched. The main pass/fail/partial-staging cases also run through real `pre-commit` in test_precommit.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import git, requires_torch
from tests.modelrepo import BLOCKS, NET, SharedWorker, populate, registry, run_cli, untouched, write

pytestmark = requires_torch

BREAKING = NET.replace("nn.Conv2d(3, 8, 3)", "nn.Conv2d(1, 8, 3)")
FORWARD = NET.replace("super().__init__()", "super().__init__()\n        self.scale = 2.0  # not a parameter")


def hook(repo: Path, *argv: str) -> tuple[int, str]:
    with untouched(repo):
        return run_cli(repo, "hook", *argv)


def hook_json(repo: Path, *argv: str) -> tuple[int, dict]:
    status, out = hook(repo, "--format", "json", *argv)
    return status, json.loads(out) if out.strip() else {}


def test_forward_only_change_passes(model_repo: Path, worker: SharedWorker) -> None:
    write(model_repo, "models/net.py", FORWARD)
    git(model_repo, "add", "models/net.py")
    status, report = hook_json(model_repo, "models/net.py")
    assert status == 0
    assert [c["path"] for c in report["checkpoints"]] == ["checkpoints/net.pt"]  # compared, not skipped
    assert report["checkpoints"][0]["findings"] == []


def test_breaking_change_fails_naming_layer_shapes_and_line(model_repo: Path, worker: SharedWorker) -> None:
    write(model_repo, "models/net.py", BREAKING)
    git(model_repo, "add", "models/net.py")
    status, out = hook(model_repo, "models/net.py")
    assert status == 1
    assert "checkpoints/net.pt" in out and "conv1.weight" in out
    assert "[8, 3, 3, 3]" in out and "[8, 1, 3, 3]" in out
    assert "models/net.py:9" in out and "nn.Conv2d(1, 8, 3)" in out  # the staged line
    flat = " ".join(out.split())
    assert "expect: fails" in flat and "re-save" in flat and "remove it from the registry" in flat


def test_partial_staging_checks_the_index_not_the_working_tree(
    model_repo: Path, worker: SharedWorker
) -> None:
    write(model_repo, "models/net.py", FORWARD)
    git(model_repo, "add", "models/net.py")
    write(model_repo, "models/net.py", BREAKING)  # only in the working tree
    assert hook(model_repo, "models/net.py")[0] == 0
    git(model_repo, "add", "models/net.py")  # the inverse: breaking change staged...
    write(model_repo, "models/net.py", NET)  # ...and reverted in the working tree only
    assert hook(model_repo, "models/net.py")[0] == 1


def test_change_only_in_an_imported_module(model_repo: Path, worker: SharedWorker) -> None:
    write(
        model_repo,
        "models/blocks.py",
        BLOCKS.replace("nn.Linear(width, classes)", "nn.Linear(width * 2, classes)"),
    )
    git(model_repo, "add", "models/blocks.py")
    status, out = hook(model_repo, "models/blocks.py")
    assert status == 1 and "fc1.weight" in out and "models/blocks.py" in out


def test_new_model_file(model_repo: Path, worker: SharedWorker) -> None:
    write(
        model_repo,
        "models/extra.py",
        "from torch import nn\n\n\ndef extra() -> nn.Linear:\n    return nn.Linear(4, 4)\n",
    )
    write(
        model_repo,
        "models/net.py",
        NET.replace(
            "from models.blocks import head", "from models.blocks import head\nfrom models.extra import extra"
        )
        + "        self.fc2 = extra()\n",
    )
    git(model_repo, "add", "models")
    status, out = hook(model_repo, "models/net.py", "models/extra.py")
    assert status == 1 and "fc2.weight" in out


def test_deleted_model_file(model_repo: Path, worker: SharedWorker) -> None:
    git(model_repo, "rm", "-q", "models/blocks.py")  # net.py still imports it
    status, out = hook(model_repo)  # pre-commit never passes deleted files: the hook finds the deletion
    assert status == 1 and "model-error" in out


def test_renamed_model_file(model_repo: Path, worker: SharedWorker) -> None:
    git(model_repo, "mv", "models/blocks.py", "models/layers.py")
    write(model_repo, "models/net.py", NET.replace("models.blocks", "models.layers"))
    git(model_repo, "add", "models/net.py")
    status, report = hook_json(model_repo, "models/blocks.py", "models/layers.py", "models/net.py")
    assert status == 0 and report["checkpoints"][0]["path"] == "checkpoints/net.pt"


def test_first_commit_has_no_head(git_repo: Path, checkpoint_bytes: bytes, worker: SharedWorker) -> None:
    populate(git_repo, checkpoint_bytes)
    git(git_repo, "add", "-A")
    assert hook(git_repo, "models/net.py", "ckaudit.yaml")[0] == 0
    write(git_repo, "models/net.py", BREAKING)
    git(git_repo, "add", "-A")
    status, out = hook(git_repo, "models/net.py")
    assert status == 1 and "conv1.weight" in out


def test_unrelated_file_takes_the_fast_path(model_repo: Path) -> None:
    write(model_repo, "README.md", "more\n")
    write(model_repo, "scripts/tool.py", "print('hi')\n")
    git(model_repo, "add", "-A")
    code = (
        "import sys\nfrom ckaudit.cli import main\nrc = main(['hook', 'README.md', 'scripts/tool.py'])\n"
        "heavy = ('torch', 'ckaudit.worker.client', 'ckaudit.reader')\n"
        "print(rc, *(m in sys.modules for m in heavy))"
    )
    with untouched(model_repo):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=model_repo, capture_output=True, text=True, check=True
        )
        elapsed = time.perf_counter() - start
    assert out.stdout.split() == [
        "0",
        "False",
        "False",
        "False",
    ]  # GitPython is imported: it is the git layer
    assert elapsed < 5  # generous on a shared machine; the benchmark holds the 0.3 s target


def test_expect_fails_is_a_note(git_repo: Path, checkpoint_bytes: bytes, worker: SharedWorker) -> None:
    populate(git_repo, checkpoint_bytes, extra="    expect: fails\n    reason: v2 takes grey images\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "initial")
    write(git_repo, "models/net.py", BREAKING)
    git(git_repo, "add", "models/net.py")
    status, report = hook_json(git_repo, "models/net.py")
    findings = report["checkpoints"][0]["findings"]
    assert status == 0 and findings and {f["severity"] for f in findings} == {"note"}
    assert "v2 takes grey images" in findings[0]["message"]


def test_already_failing_at_head_warns_and_strict_blocks(model_repo: Path, worker: SharedWorker) -> None:
    write(model_repo, "models/net.py", BREAKING)
    git(model_repo, "commit", "-q", "-am", "break it")
    write(model_repo, "models/net.py", BREAKING + "\n# touched\n")
    git(model_repo, "add", "models/net.py")
    status, report = hook_json(model_repo, "models/net.py")
    (old,) = report["checkpoints"][0]["findings"]  # a failure this change did not touch: one line
    assert status == 0 and old["severity"] == "warning" and old["rule"] == "shape-mismatch"
    assert "unchanged by this change" in old["message"] and "ckaudit diagnose" in old["fix"]
    assert hook(model_repo, "--strict", "models/net.py")[0] == 1
    write(model_repo, "models/net.py", NET)  # the fix is a note
    git(model_repo, "add", "models/net.py")
    status, report = hook_json(model_repo, "models/net.py")
    assert status == 0 and "fixed by this change" in report["checkpoints"][0]["findings"][0]["message"]


def test_registry_must_be_staged_as_is(model_repo: Path) -> None:
    write(model_repo, "ckaudit.yaml", registry() + "# edited\n")
    assert hook(model_repo, "ckaudit.yaml")[0] == 2
    git(model_repo, "rm", "-q", "--cached", "ckaudit.yaml")
    assert hook(model_repo, "models/net.py")[0] == 2


def test_head_side_comes_from_the_cache(model_repo: Path, worker: SharedWorker) -> None:
    write(model_repo, "models/net.py", FORWARD)
    git(model_repo, "add", "models/net.py")
    assert hook(model_repo, "models/net.py")[0] == 0
    assert worker.builds == 2  # HEAD and index, cold
    git(model_repo, "commit", "-q", "-m", "forward")
    write(model_repo, "models/net.py", BREAKING)
    git(model_repo, "add", "models/net.py")
    worker.builds = 0
    assert hook(model_repo, "models/net.py")[0] == 1
    assert worker.builds == 1  # the new HEAD was the old index: cached
    worker.builds = 0
    assert hook(model_repo, "--no-cache", "models/net.py")[0] == 1
    assert worker.builds == 2


@pytest.mark.slow  # a real installed hook and `git commit -a`
def test_commit_a_through_an_installed_hook(model_repo: Path) -> None:
    """`git commit -a` stages into a temporary index (GIT_INDEX_FILE): the hook must check that one."""
    script = model_repo / ".git" / "hooks" / "pre-commit"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} -m ckaudit hook\n")
    script.chmod(0o755)
    write(model_repo, "models/net.py", BREAKING)  # not staged: `commit -a` stages it
    blocked = subprocess.run(
        ["git", "commit", "-q", "-a", "-m", "break"],
        cwd=model_repo,
        capture_output=True,
        text=True,
        env=_env(model_repo),
    )
    assert blocked.returncode != 0 and "conv1.weight" in blocked.stdout + blocked.stderr
    write(model_repo, "models/net.py", FORWARD)
    ok = subprocess.run(
        ["git", "commit", "-q", "-a", "-m", "fine"],
        cwd=model_repo,
        capture_output=True,
        text=True,
        env=_env(model_repo),
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr


def _env(repo: Path) -> dict[str, str]:
    import os

    from tests.conftest import GIT_ENV

    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**env, **GIT_ENV, "HOME": str(repo.parent)}


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_every_format_renders(model_repo: Path, worker: SharedWorker, fmt: str) -> None:
    write(model_repo, "models/net.py", BREAKING)
    git(model_repo, "add", "models/net.py")
    status, out = hook(model_repo, "--format", fmt, "models/net.py")
    assert status == 1 and "conv1" in out


def test_files_only_notes_an_unrelated_binary_and_blocks_a_broken_checkpoint(model_repo: Path) -> None:
    (model_repo / "firmware.bin").write_bytes(bytes(range(256)) * 64)
    (model_repo / "checkpoints" / "page.pt").write_text("<html>404</html>", encoding="utf-8")
    git(model_repo, "add", "firmware.bin")
    status, report = hook_json(model_repo, "--files-only", "firmware.bin")
    (result,) = report["checkpoints"]
    assert status == 0 and [f["severity"] for f in result["findings"]] == ["note"]
    assert "not a checkpoint" in result["findings"][0]["message"]
    git(model_repo, "add", "checkpoints/page.pt")
    status, report = hook_json(model_repo, "--files-only", "checkpoints/page.pt")
    assert status == 1 and report["checkpoints"][0]["findings"][0]["rule"] == "not-a-checkpoint"
