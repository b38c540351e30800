"""`ckaudit scan`, file side, on a real git repository holding every kind of broken checkpoint."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ckaudit.cache import verify as verify_cache
from ckaudit.cli import main
from ckaudit.files import integrity, scan_files
from ckaudit.registry.config import load_config
from tests.conftest import requires_torch
from tests.files import factory

pytestmark = requires_torch

REGISTRY = """\
version: 1
checkpoints:
  - path: ck/ok.pt
    sha256: "{ok_sha}"
  - path: ck/bad_hash.pt
    sha256: "{bad_sha}"
  - path: ck/weights.safetensors
  - path: ck/untracked.pt
  - path: ck/ignored.pt
  - path: ck/renamed.pt
  - path: ck/deleted.pt
  - path: ck/dvc.pt
  - path: ck/lfs_missing.bin
  - path: ck/pointer.pt
  - path: ck/truncated.pt
  - path: ck/page.pt
  - path: ck/empty.pt
  - path: ck/dir.pt
  - path: ck/link.pt
  - path: ck/args.pt
  - path: ck/legacy.pt
  - path: ck/device.pt
  - path: ck/flipped.pt
  - path: ck/never.pt
"""

EXPECTED = {
    "ck/ok.pt": set(),
    "ck/bad_hash.pt": {"hash-mismatch"},
    "ck/weights.safetensors": set(),
    "ck/untracked.pt": set(),  # not-tracked: one summary finding for the scan, below
    "ck/ignored.pt": set(),
    "ck/renamed.pt": {"file-missing"},
    "ck/deleted.pt": {"file-missing"},
    "ck/dvc.pt": {"file-missing"},
    "ck/lfs_missing.bin": {"file-missing"},
    "ck/pointer.pt": {"lfs-pointer"},
    "ck/truncated.pt": {"truncated"},
    "ck/page.pt": {"not-a-checkpoint"},
    "ck/empty.pt": {"not-a-checkpoint"},
    "ck/dir.pt": {"not-a-checkpoint"},
    "ck/link.pt": {"file-missing"},
    "ck/args.pt": {"weights-only-blocked"},
    "ck/legacy.pt": {"torch-version"},
    "ck/device.pt": {"device"},
    "ck/flipped.pt": set(),  # only --verify reads tensor data
    "ck/never.pt": {"file-missing"},
    "ck/renamed_v2.pt": set(),
    "extra/found.pt": set(),
    "extra/evil.pt": {"unsafe-pickle"},
}


def build_repo(repo: Path, run_git: Callable[..., str]) -> Path:
    """A repository with every case; returns the canary path the malicious pickle would create."""
    ck = repo / "ck"
    canary = repo.parent / "canary"
    for name in ("renamed", "deleted"):
        factory.save_zip(ck / f"{name}.pt")
    (repo / "train.py").write_text('import torch\nstate = torch.load("ck/renamed.pt")\n')
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-qm", "first checkpoints")
    run_git(repo, "mv", "ck/renamed.pt", "ck/renamed_v2.pt")
    run_git(repo, "rm", "-q", "ck/deleted.pt")
    run_git(repo, "commit", "-qm", "reorganise checkpoints")

    factory.save_zip(ck / "ok.pt")
    factory.save_zip(ck / "bad_hash.pt")
    factory.save_safetensors(ck / "weights.safetensors")
    (ck / "dvc.pt.dvc").write_text("outs:\n- md5: 0123\n  path: dvc.pt\n")
    (repo / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    (ck / "pointer.pt").write_text(factory.LFS_POINTER)
    factory.truncate(factory.save_zip(ck / "truncated.pt"))
    (ck / "page.pt").write_text(factory.HTML)
    (ck / "empty.pt").write_bytes(b"")
    (ck / "dir.pt").mkdir()
    (ck / "dir.pt" / "notes.txt").write_text("not a DCP folder")
    (ck / "link.pt").symlink_to("nowhere.pt")
    factory.save_with_namespace(ck / "args.pt")
    factory.save_legacy(ck / "legacy.pt")
    factory.save_on_device(ck / "device.pt")
    factory.flip_tensor_byte(factory.save_zip(ck / "flipped.pt"))
    factory.save_zip(repo / "extra" / "found.pt")
    factory.save_malicious(repo / "extra" / "evil.pt", canary)
    (repo / "extra" / "excluded").mkdir()
    (repo / ".gitignore").write_text("ck/ignored.pt\n")
    registry = REGISTRY.format(ok_sha=factory.sha256_of(ck / "ok.pt"), bad_sha="0" * 64)
    (repo / "ckaudit.yaml").write_text(registry)
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-qm", "the rest")
    factory.save_zip(ck / "untracked.pt")
    factory.save_zip(ck / "ignored.pt")
    return canary


def scan(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    status = main(["scan", str(root), "--format", "json", *extra])
    return status, json.loads(capsys.readouterr().out)


def rules_by_path(report: dict[str, Any]) -> dict[str, set[str]]:
    return {c["path"]: {f["rule"] for f in c["findings"]} for c in report["checkpoints"]}


@pytest.fixture
def repo(git_repo: Path, run_git: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(git_repo.parent / "xdg"))
    build_repo(git_repo, run_git)
    return git_repo


def test_scan_finds_every_file_problem(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, report = scan(repo, capsys)
    assert status == 1
    assert rules_by_path(report) == EXPECTED
    by_path = {c["path"]: c for c in report["checkpoints"]}
    assert by_path["extra/found.pt"]["registered"] is False and by_path["ck/ok.pt"]["registered"] is True
    assert by_path["ck/ok.pt"]["verdict"] == "ok" and by_path["ck/ok.pt"]["format"] == "torch-zip"
    assert by_path["ck/truncated.pt"]["verdict"] == "repository"
    assert by_path["ck/args.pt"]["verdict"] == "environment"
    assert by_path["ck/untracked.pt"]["verdict"] == "ok"
    untracked, dangling = report["findings"]
    assert untracked["rule"] == "not-tracked" and untracked["severity"] == "warning"
    assert untracked["details"]["ignored"] == ["ck/ignored.pt"]
    assert untracked["details"]["untracked"] == ["ck/untracked.pt"]
    assert untracked["message"].startswith("2 registered checkpoints exist here but not in git")
    assert dangling["rule"] == "dangling-reference"
    assert (dangling["location"]["path"], dangling["location"]["line"]) == ("train.py", 2)
    assert "renamed to ck/renamed_v2.pt" in dangling["message"]
    assert not (repo.parent / "canary").exists()


def test_findings_carry_their_evidence(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, report = scan(repo, capsys)
    found = {(f["checkpoint"], f["rule"]): f for c in report["checkpoints"] for f in c["findings"]}
    assert found["ck/renamed.pt", "file-missing"]["details"]["renamed_to"] == "ck/renamed_v2.pt"
    location = found["ck/renamed.pt", "file-missing"]["location"]
    assert (location["path"], location["line"]) == ("ckaudit.yaml", 10)
    assert "deleted in commit" in found["ck/deleted.pt", "file-missing"]["message"]
    assert "dvc pull ck/dvc.pt" in found["ck/dvc.pt", "file-missing"]["fix"]
    assert found["ck/lfs_missing.bin", "file-missing"]["details"]["lfs"] is True
    assert found["ck/device.pt", "device"]["details"]["devices"] == {"xpu": 3}
    assert 'map_location="cpu"' in found["ck/device.pt", "device"]["fix"]
    blocked = found["ck/args.pt", "weights-only-blocked"]
    assert "argparse.Namespace" in blocked["details"]["blocked"]
    assert "add_safe_globals([argparse.Namespace])" in blocked["fix"].replace(" ", "")
    assert "posix.system" in " ".join(
        found["extra/evil.pt", "unsafe-pickle"]["details"]["unsafe"]
    ) or "os.system" in (" ".join(found["extra/evil.pt", "unsafe-pickle"]["details"]["unsafe"]))
    mismatch = found["ck/bad_hash.pt", "hash-mismatch"]
    assert mismatch["details"]["actual"] == factory.sha256_of(repo / "ck" / "bad_hash.pt")
    for finding in found.values():
        assert finding["fix"] and finding["message"] and finding["location"]


def test_verify_catches_flipped_tensor_bytes_and_caches(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_cache, "RACY_NS", 0)  # the files were written a moment ago
    calls: list[str] = []
    real = integrity.verify_checkpoint

    def counting(path: Path, info: Any, *, sha256: bool) -> Any:
        calls.append(path.name)
        return real(path, info, sha256=sha256)

    monkeypatch.setattr(integrity, "verify_checkpoint", counting)
    status, report = scan(repo, capsys, "--verify")
    assert status == 1
    assert rules_by_path(report)["ck/flipped.pt"] == {"corrupt"}
    assert "flipped.pt" in calls and any((repo / ".git" / "ckaudit" / "verify").iterdir())
    calls.clear()
    again = scan(repo, capsys, "--verify")[1]
    assert rules_by_path(again) == rules_by_path(report)
    assert calls == []  # every answer came from the cache
    factory.save_zip(repo / "ck" / "flipped.pt")  # changed: verified again, now clean
    assert rules_by_path(scan(repo, capsys, "--verify")[1])["ck/flipped.pt"] == set()
    assert calls == ["flipped.pt"]
    uncached = scan(repo, capsys, "--verify", "--no-cache")[1]
    assert len(calls) > 1 and rules_by_path(uncached)["ck/bad_hash.pt"] == {"hash-mismatch"}


def test_scan_leaves_the_repository_untouched(
    repo: Path, capsys: pytest.CaptureFixture[str], snapshot_repo: Callable[[Path], dict[str, object]]
) -> None:
    before = snapshot_repo(repo)
    scan(repo, capsys, "--verify")
    main(["diagnose", str(repo / "ck" / "truncated.pt")])
    capsys.readouterr()
    assert snapshot_repo(repo) == before


def test_unreadable_file(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = repo / "ck" / "ok.pt"
    target.chmod(0)
    try:
        if os.access(target, os.R_OK):
            pytest.skip("running as a user who can read a mode-000 file (root)")
        _, report = scan(repo, capsys)
        assert rules_by_path(report)["ck/ok.pt"] == {"not-a-checkpoint"}
    finally:
        target.chmod(0o644)


def test_outside_git_walks_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    factory.save_zip(tmp_path / "a" / "model.pt")
    factory.truncate(factory.save_zip(tmp_path / "b.pth"))
    factory.save_zip(tmp_path / ".venv" / "lib" / "skip.pt")
    (tmp_path / "run.py").write_text('import torch\ntorch.load("missing.ckpt")\n')
    status, report = scan(tmp_path, capsys, "--no-cache")
    assert status == 1
    assert rules_by_path(report) == {"a/model.pt": set(), "b.pth": {"truncated"}}
    assert [f["rule"] for f in report["findings"]] == ["dangling-reference"]


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_partition_the_scan(repo: Path, capsys: pytest.CaptureFixture[str], count: int) -> None:
    _, whole = scan(repo, capsys)
    seen: list[str] = []
    loose = 0
    for k in range(1, count + 1):
        _, part = scan(repo, capsys, "--shard", f"{k}/{count}")
        seen += [c["path"] for c in part["checkpoints"]]
        loose += len(part["findings"])
    assert sorted(seen) == sorted(c["path"] for c in whole["checkpoints"])
    assert loose == len(whole["findings"])


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", str(tmp_path / "nope")]) == 2
    (tmp_path / "ckaudit.yaml").write_text("version: 1\ncheckpoints: 3\n")
    assert main(["scan", str(tmp_path)]) == 2
    assert "ckaudit.yaml" in capsys.readouterr().err


def test_registered_sha256_of_a_shard_index_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shard = factory.save_safetensors(tmp_path / "model-00001-of-00001.safetensors")
    index = tmp_path / "model.safetensors.index.json"
    weight_map = {key: shard.name for key in factory.state_dict()}
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    good = factory.sha256_of(index)
    registry = "checkpoints:\n  - {path: model.safetensors.index.json, sha256: '%s'}\n"
    (tmp_path / "ckaudit.yaml").write_text(registry % good)
    status, report = scan(tmp_path, capsys, "--no-cache")
    assert rules_by_path(report)["model.safetensors.index.json"] == set()
    (tmp_path / "ckaudit.yaml").write_text(registry % ("0" * 64))
    status, report = scan(tmp_path, capsys, "--no-cache")
    assert status == 1
    assert rules_by_path(report)["model.safetensors.index.json"] == {"hash-mismatch"}


def test_verify_shows_a_byte_bar_only_when_asked(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(repo / "ckaudit.yaml")
    scan_files(config, verify=True, use_cache=False, show_progress=True)
    assert "verify" in capsys.readouterr().err
    scan_files(config, verify=True, use_cache=False)
    assert capsys.readouterr().err == ""
