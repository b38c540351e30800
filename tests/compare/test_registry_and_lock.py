"""Each side with its own registry entry, and ckaudit.lock standing in for checkpoints that are not in the
clone: `register` as a user runs it, then the hook, `check`, `blame` and `scan` in-process on real
repositories (every hook run proves the working tree, index, refs and stash untouched)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import GIT_ENV, git, requires_torch
from tests.modelrepo import NET, SHAPES, SharedWorker, run_cli, untouched, write

pytestmark = requires_torch

BREAKING = NET.replace("nn.Conv2d(3, 8, 3)", "nn.Conv2d(1, 8, 3)")


def hook(repo: Path, *argv: str) -> tuple[int, str]:
    with untouched(repo):
        return run_cli(repo, "hook", *argv)


def test_a_staged_kwargs_change_in_the_registry_blocks(model_repo: Path, worker: SharedWorker) -> None:
    """HEAD's registry builds Net(classes=4), which loads; the staged one builds Net(classes=6)."""
    registry = (model_repo / "ckaudit.yaml").read_text(encoding="utf-8")
    write(model_repo, "ckaudit.yaml", registry.replace("{classes: 4}", "{classes: 6}"))
    git(model_repo, "add", "ckaudit.yaml")
    status, out = hook(model_repo, "ckaudit.yaml")
    assert status == 1, out
    assert "loads at HEAD but not with the staged code" in out and "fc1.weight" in out


def test_check_judges_the_base_with_its_own_registry(model_repo: Path, worker: SharedWorker) -> None:
    base = git(model_repo, "rev-parse", "HEAD").strip()
    registry = (model_repo / "ckaudit.yaml").read_text(encoding="utf-8")
    write(model_repo, "ckaudit.yaml", registry.replace("{classes: 4}", "{classes: 6}"))
    status, out = run_cli(model_repo, "check", "--base", base, "--format", "json")
    findings = json.loads(out)["checkpoints"][0]["findings"]
    assert status == 1 and findings[0]["rule"] == "shape-mismatch", out
    assert findings[0]["message"].startswith(f"loads at base ({base} {base[:8]})")


def _register_and_ignore(repo: Path) -> None:
    """As a team keeping checkpoints out of git: `ckaudit register` writes ckaudit.lock, *.pt is ignored."""
    git(repo, "rm", "-q", "--cached", "checkpoints/net.pt")
    write(repo, ".gitignore", "*.pt\n")
    status, _ = run_cli(repo, "register", "checkpoints/net.pt", "--model", "net")
    assert status == 0 and (repo / "ckaudit.lock").is_file()
    git(repo, "add", ".gitignore", "ckaudit.yaml", "ckaudit.lock")
    git(repo, "commit", "-q", "-m", "checkpoints live outside git; their signatures in ckaudit.lock")


def _clone(repo: Path, target: Path) -> Path:
    env = {**GIT_ENV, "HOME": str(target.parent), "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "clone", "-q", str(repo), str(target)], check=True, env=env)
    for key, value in (("user.name", "Test Author"), ("user.email", "author@example.com")):
        git(target, "config", key, value)
    return target


def test_a_clone_without_the_checkpoint_blocks_a_break_from_the_lock_alone(
    model_repo: Path, worker: SharedWorker, tmp_path: Path
) -> None:
    _register_and_ignore(model_repo)
    clone = _clone(model_repo, tmp_path / "clone")
    assert not (clone / "checkpoints" / "net.pt").exists()
    write(clone, "models/net.py", BREAKING)
    git(clone, "add", "models/net.py")
    status, out = hook(clone, "models/net.py")
    assert status == 1, out
    assert "conv1.weight" in out and "[8, 3, 3, 3]" in out and "[8, 1, 3, 3]" in out
    assert "judged against its signature in ckaudit.lock" in " ".join(out.split())
    git(clone, "reset", "-q", "--hard")
    write(clone, "models/net.py", NET.replace("super().__init__()", "super().__init__()\n        self.k = 1"))
    git(clone, "add", "models/net.py")
    assert hook(clone, "models/net.py")[0] == 0


def test_blame_in_a_clone_without_the_checkpoint(
    model_repo: Path, worker: SharedWorker, tmp_path: Path
) -> None:
    _register_and_ignore(model_repo)
    write(model_repo, "models/net.py", BREAKING)
    git(model_repo, "commit", "-qam", "one input channel")
    clone = _clone(model_repo, tmp_path / "clone")
    status, out = run_cli(clone, "blame", "checkpoints/net.pt", "--format", "json")
    report = json.loads(out)
    assert status == 1 and len(report["breaks"]) == 1
    assert report["history"][-1]["subject"] == "one input channel"


def test_scan_reports_a_replaced_checkpoint_and_a_stale_lock_record(
    model_repo: Path, worker: SharedWorker
) -> None:
    import torch  # here, not at the top: where torch is absent the module is skipped, not an import error

    _register_and_ignore(model_repo)
    shapes = {**SHAPES, "fc1.weight": (5, 8), "fc1.bias": (5,)}
    torch.save({k: torch.zeros(s) for k, s in shapes.items()}, model_repo / "checkpoints" / "net.pt")
    lock = (model_repo / "ckaudit.lock").read_text(encoding="utf-8")
    record = lock[lock.index('  "checkpoints/net.pt":') :]
    write(model_repo, "ckaudit.lock", lock + record.replace('"checkpoints/net.pt"', '"old/gone.pt"'))
    status, out = run_cli(model_repo, "scan", "--format", "json")
    report = json.loads(out)
    (entry,) = [c for c in report["checkpoints"] if c["path"] == "checkpoints/net.pt"]
    changed = [f for f in entry["findings"] if f["rule"] == "signature-changed"]
    assert status == 1 and len(changed) == 1 and entry["verdict"] == "repository"
    assert "fc1.weight: ['float32', [4, 8]] -> ['float32', [5, 8]]" in changed[0]["message"]
    (stale,) = [f for f in report["findings"] if f["rule"] == "signature-changed"]
    assert (
        stale["severity"] == "warning"
        and "old/gone.pt" in stale["message"]
        and "file is gone" in stale["message"]
    )


def test_a_checkpoint_outside_the_repository_by_home_or_variable(
    model_repo: Path, worker: SharedWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`register` writes a path under the home folder as `~/…`; `$VARS` work too; the lock records the path
    as written, so a clone on another machine (another home) finds the record."""
    home = tmp_path / "home"
    (home / ".cache" / "models").mkdir(parents=True)
    (model_repo / "checkpoints" / "net.pt").rename(home / ".cache" / "models" / "net.pt")
    git(model_repo, "rm", "-q", "--cached", "checkpoints/net.pt")
    monkeypatch.setenv("HOME", str(home))
    text = (model_repo / "ckaudit.yaml").read_text(encoding="utf-8")
    write(model_repo, "ckaudit.yaml", text[: text.index("checkpoints:")] + "checkpoints: []\n")
    status, _ = run_cli(model_repo, "register", str(home / ".cache" / "models" / "net.pt"), "--model", "net")
    assert status == 0
    registry = (model_repo / "ckaudit.yaml").read_text(encoding="utf-8")
    assert "path: ~/.cache/models/net.pt" in registry and str(home) not in registry
    assert '"~/.cache/models/net.pt":' in (model_repo / "ckaudit.lock").read_text(encoding="utf-8")
    status, out = run_cli(model_repo, "scan", "--format", "json")
    (entry,) = [c for c in json.loads(out)["checkpoints"] if c["registered"]]
    assert status == 0 and entry["verdict"] == "ok", out
    git(model_repo, "add", "-A")
    git(model_repo, "commit", "-q", "-m", "checkpoint kept in the home cache")
    monkeypatch.setenv("HOME", str(tmp_path / "elsewhere"))  # another machine: the file is not there
    write(model_repo, "models/net.py", BREAKING)
    git(model_repo, "add", "models/net.py")
    status, out = hook(model_repo, "models/net.py")
    assert status == 1 and "conv1.weight" in out, out
    monkeypatch.setenv("CKPT_DIR", str(home / ".cache" / "models"))
    write(model_repo, "ckaudit.yaml", registry.replace("~/.cache/models", "$CKPT_DIR"))
    status, out = run_cli(model_repo, "scan", "--format", "json")
    (entry,) = [c for c in json.loads(out)["checkpoints"] if c["registered"]]
    assert entry["format"] == "torch-zip", out


def test_scan_and_check_word_a_stale_expectation_alike(model_repo: Path, worker: SharedWorker) -> None:
    """One evaluation path: scan and check both dry-run through the Evaluator; one wording of the note."""
    registry = (model_repo / "ckaudit.yaml").read_text(encoding="utf-8")
    write(model_repo, "ckaudit.yaml", registry + "    expect: fails\n    reason: kept for the record\n")
    _, out = run_cli(model_repo, "scan", "--format", "json")
    (scanned,) = [f for c in json.loads(out)["checkpoints"] for f in c["findings"]]
    _, out = run_cli(model_repo, "check", "--base", "HEAD", "--format", "json")
    (checked,) = json.loads(out)["checkpoints"][0]["findings"]
    assert scanned["rule"] == checked["rule"] == "stale-expectation"
    assert scanned["fix"] == checked["fix"] and scanned["severity"] == checked["severity"] == "note"
    assert scanned["message"].endswith("but loads with the current code")
