"""Teams that commit ckaudit.lock but keep checkpoints out of git (a shared disk, object storage, LFS not
pulled): in a `git clone` the registered files are absent, and `scan`, `check` and the GitHub Action judge
the code against the lock's signatures — the absent file is a note, unless the registry says
`required: true`. Set up as a user would: `ckaudit register` writes the lock, the files are gitignored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.compare.test_registry_and_lock import BREAKING, _clone, _register_and_ignore
from tests.conftest import git, requires_torch
from tests.modelrepo import NET, SharedWorker, run_cli, write
from tests.test_action import github_env, run_action

pytestmark = requires_torch


def require(repo: Path) -> None:
    """`required: true` on the checkpoint's entry (as a user adds it by hand)."""
    registry = (repo / "ckaudit.yaml").read_text(encoding="utf-8")
    for indent in ("  ", "    "):
        registry = registry.replace(
            f"\n{indent}model: net\n", f"\n{indent}model: net\n{indent}required: true\n"
        )
    assert "required: true" in registry
    write(repo, "ckaudit.yaml", registry)


COMPATIBLE = NET.replace("super().__init__()", "super().__init__()\n        self.k = 1  # not a parameter")


def scan_json(repo: Path) -> tuple[int, dict]:
    status, out = run_cli(repo, "scan", "--format", "json")
    return status, json.loads(out)


def registered(report: dict) -> dict:
    (entry,) = [c for c in report["checkpoints"] if c["path"] == "checkpoints/net.pt"]
    return entry


@pytest.fixture
def clone(model_repo: Path, worker: SharedWorker, tmp_path: Path) -> Path:
    _register_and_ignore(model_repo)
    cloned = _clone(model_repo, tmp_path / "clone")
    assert not (cloned / "checkpoints" / "net.pt").exists()
    return cloned


def test_scan_in_a_lock_only_clone_judges_the_code_against_the_lock(clone: Path) -> None:
    status, report = scan_json(clone)
    entry = registered(report)
    assert status == 0 and entry["verdict"] == "ok" and entry["loads"], report
    (note,) = entry["findings"]
    assert note["rule"] == "file-missing" and note["severity"] == "note"
    assert "judged against its signature in ckaudit.lock" in note["message"]

    write(clone, "models/net.py", BREAKING)  # the code breaks the registered checkpoint: the lock says so
    status, report = scan_json(clone)
    entry = registered(report)
    assert status == 1 and entry["verdict"] == "code" and not entry["loads"], report
    rules = {f["rule"]: f for f in entry["findings"]}
    assert (
        rules["shape-mismatch"]["severity"] == "error"
        and "conv1.weight" in rules["shape-mismatch"]["message"]
    )
    assert rules["file-missing"]["severity"] == "note"


def test_required_true_makes_the_absent_file_a_failure(clone: Path) -> None:
    require(clone)
    status, report = scan_json(clone)
    entry = registered(report)
    assert status == 1 and entry["verdict"] == "repository", report
    assert [(f["rule"], f["severity"]) for f in entry["findings"]] == [("file-missing", "error")]
    write(clone, "models/net.py", COMPATIBLE)
    status, out = run_cli(clone, "check", "--base", "HEAD", "--format", "json")
    (finding,) = json.loads(out)["checkpoints"][0]["findings"]
    assert status == 1 and finding["severity"] == "error" and "required: true" in finding["message"], out


def test_re_register_keeps_required(model_repo: Path, worker: SharedWorker) -> None:
    registry = (model_repo / "ckaudit.yaml").read_text(encoding="utf-8")
    write(
        model_repo,
        "ckaudit.yaml",
        registry.replace("    model: net\n", "    model: net\n    required: true\n"),
    )
    assert run_cli(model_repo, "register", "checkpoints/net.pt", "--model", "net")[0] == 0
    assert "required: true" in (model_repo / "ckaudit.yaml").read_text(encoding="utf-8")


def test_not_tracked_knows_whether_the_lock_is_committed(model_repo: Path, worker: SharedWorker) -> None:
    git(model_repo, "rm", "-q", "--cached", "checkpoints/net.pt")
    write(model_repo, ".gitignore", "*.pt\n")
    _, report = scan_json(model_repo)
    (before,) = [f for f in report["findings"] if f["rule"] == "not-tracked"]
    assert before["severity"] == "warning" and before["message"].startswith("1 registered checkpoint exists ")
    assert "Commit ckaudit.lock" in before["fix"]
    _register_and_ignore_committed(model_repo)
    _, report = scan_json(model_repo)
    (after,) = [f for f in report["findings"] if f["rule"] == "not-tracked"]
    assert after["severity"] == "note" and after["details"]["lock_committed"] is True
    assert "ckaudit.lock is committed" in after["fix"]


def _register_and_ignore_committed(repo: Path) -> None:
    assert run_cli(repo, "register", "checkpoints/net.pt", "--model", "net")[0] == 0
    git(repo, "add", ".gitignore", "ckaudit.yaml", "ckaudit.lock")
    git(repo, "commit", "-q", "-m", "checkpoints live outside git; their signatures in ckaudit.lock")


@pytest.mark.slow  # the whole action, twice, on a clone with no checkpoint file
def test_the_action_on_a_lock_only_clone(clone: Path, tmp_path: Path) -> None:
    base = git(clone, "rev-parse", "HEAD").strip()
    event = {"pull_request": {"number": 3, "base": {"sha": base, "ref": "main"}, "head": {"sha": "x"}}}
    for name, code, expected in (("compatible", COMPATIBLE, "0"), ("breaking", BREAKING, "1")):
        git(clone, "checkout", "-q", "-B", name, base)
        write(clone, "models/net.py", code)
        git(clone, "commit", "-qam", name)
        runner = tmp_path / name
        runner.mkdir()
        runs = run_action({}, github_env(clone, runner, "pull_request", event), clone, runner)
        assert runs[0].outputs["exit-code"] == expected, (name, runs[0].stdout)
        assert "judged against its signature in ckaudit.lock" in " ".join(runs[0].stdout.split()), name
    runner = tmp_path / "push"
    runner.mkdir()
    git(clone, "checkout", "-q", "-B", "main", base)
    runs = run_action({}, github_env(clone, runner, "push", {}), clone, runner)
    assert runs[0].outputs["exit-code"] == "0", runs[0].stdout  # once failed on every push: file-missing
