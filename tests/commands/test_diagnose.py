"""`ckaudit diagnose FILE` (file side), and the promise that the file checks run without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ckaudit.cli import main
from tests.conftest import requires_torch
from tests.files import factory

pytestmark = requires_torch


def diagnose(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status = main(["diagnose", *args, "--format", "json", "--no-cache"])
    return status, json.loads(capsys.readouterr().out)


def only(report: dict[str, Any]) -> dict[str, Any]:
    (result,) = report["checkpoints"]
    return result


def test_without_a_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = factory.save_zip(tmp_path / "good.pt")
    status, report = diagnose(capsys, str(good))
    assert status == 0 and only(report)["verdict"] == "ok" and only(report)["tensors"] == 3
    assert only(report)["registered"] is False and only(report)["path"] == "good.pt"
    bad = factory.truncate(factory.save_zip(tmp_path / "bad.pt"))
    status, report = diagnose(capsys, str(bad))
    assert status == 1 and only(report)["verdict"] == "repository"
    assert [f["rule"] for f in only(report)["findings"]] == ["truncated"]


def test_missing_file_and_dangling_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, report = diagnose(capsys, str(tmp_path / "gone.pt"))
    assert status == 1 and [f["rule"] for f in only(report)["findings"]] == ["file-missing"]
    (tmp_path / "link.pt").symlink_to(tmp_path / "nowhere.pt")
    status, report = diagnose(capsys, str(tmp_path / "link.pt"))
    assert status == 1 and only(report)["path"] == "link.pt"
    assert "symbolic link" in only(report)["findings"][0]["message"]


def test_registered_entry_applies(
    git_repo: Path,
    run_git: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = git_repo / "project"
    factory.save_zip(project / "ck" / "a.pt")
    (project / "ckaudit.yaml").write_text(
        f'version: 1\ncheckpoints:\n  - path: ck/a.pt\n    sha256: "{"1" * 64}"\n'
    )
    run_git(git_repo, "add", "-A")
    run_git(git_repo, "commit", "-qm", "project")
    monkeypatch.chdir(project / "ck")  # the root is found upwards from the file: project/, not the git top
    status, report = diagnose(capsys, "a.pt", "--verify")
    assert status == 1 and only(report)["registered"] is True and only(report)["path"] == "ck/a.pt"
    assert [f["rule"] for f in only(report)["findings"]] == ["hash-mismatch"]


SHIM = """\
import sys

raise ImportError("torch is not installed here (ckaudit test shim)")
"""

RUNNER = """\
import json, sys
from ckaudit.cli import main
status = main(sys.argv[1:])
sys.stderr.write(json.dumps({"torch_loaded": "torch" in sys.modules}) + "\\n")
sys.exit(status)
"""


def run_without_torch(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], bool]:
    shim = tmp_path / "no_torch"
    shim.mkdir(exist_ok=True)
    (shim / "torch.py").write_text(SHIM)
    env = {**os.environ, "PYTHONPATH": str(shim), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *args, "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    loaded = json.loads(done.stderr.strip().splitlines()[-1])["torch_loaded"]
    return done.returncode, json.loads(done.stdout), loaded


def test_file_checks_run_without_torch(git_repo: Path, run_git: Callable[..., str], tmp_path: Path) -> None:
    factory.save_zip(git_repo / "ck" / "ok.pt")
    factory.truncate(factory.save_zip(git_repo / "ck" / "cut.pt"))
    factory.save_with_namespace(git_repo / "ck" / "args.pt")
    factory.save_safetensors(git_repo / "ck" / "w.safetensors")
    (git_repo / "ckaudit.yaml").write_text(
        "version: 1\ncheckpoints:\n  - path: ck/ok.pt\n  - path: ck/none.pt\n"
    )
    run_git(git_repo, "add", "-A")
    run_git(git_repo, "commit", "-qm", "files")
    status, report, loaded = run_without_torch(tmp_path, "scan", str(git_repo), "--verify")
    assert status == 1 and not loaded
    rules = {c["path"]: sorted(f["rule"] for f in c["findings"]) for c in report["checkpoints"]}
    assert rules == {
        "ck/ok.pt": [],
        "ck/none.pt": ["file-missing"],
        "ck/args.pt": ["weights-only-blocked"],
        "ck/cut.pt": ["truncated"],
        "ck/w.safetensors": [],
    }
    status, report, loaded = run_without_torch(tmp_path, "diagnose", str(git_repo / "ck" / "ok.pt"))
    assert status == 0 and not loaded and only(report)["verdict"] == "ok"
    inspect = str(git_repo / "ck" / "ok.pt")
    probe = subprocess.run(
        [sys.executable, "-m", "ckaudit", "inspect", inspect], capture_output=True, check=False
    )
    if probe.returncode == 2:
        return  # `inspect` belongs to the reader's issue and is not built yet; checked here once it exists
    status, _, loaded = run_without_torch(tmp_path, "inspect", inspect)
    assert status == 0 and not loaded
