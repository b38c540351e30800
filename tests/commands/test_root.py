"""One root rule for every command: --config's folder, else the folder given, else the nearest registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckaudit.cli import main
from ckaudit.commands.common import find_root
from ckaudit.errors import CkauditError
from tests.conftest import git

MISSING = "version: 1\ncheckpoints:\n  - path: weights/gone.pt\n"


@pytest.fixture
def monorepo(git_repo: Path) -> Path:
    """A repository whose ML project sits in `proj/`, with its registry there."""
    (git_repo / "proj" / "src").mkdir(parents=True)
    (git_repo / "proj" / "ckaudit.yaml").write_text(MISSING)
    (git_repo / "README.md").write_text("top\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "layout")
    return git_repo


def test_the_rule_in_order(monorepo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = monorepo / "proj"
    assert find_root(proj / "ckaudit.yaml") == proj.resolve()  # 1. --config's folder
    assert find_root(None, monorepo) == monorepo.resolve()  # 2. the folder given
    monkeypatch.chdir(proj / "src")
    assert find_root(None) == proj.resolve()  # 3. the nearest registry upward
    monkeypatch.chdir(monorepo)
    assert find_root(None) == monorepo.resolve()  # none above: the work tree's top
    assert find_root(None, near=proj / "src") == proj.resolve()  # diagnose searches from FILE's folder


def test_no_search_above_the_work_tree_or_outside_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ckaudit.yaml").write_text(MISSING)  # outside the repository below: not its registry
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    git(repo, "init", "-q")
    monkeypatch.chdir(repo / "sub")
    assert find_root(None) == repo.resolve()
    plain = tmp_path / "plain" / "deeper"
    plain.mkdir(parents=True)
    monkeypatch.chdir(plain)
    assert find_root(None) == tmp_path.resolve()  # outside git the nearest registry still counts


def test_config_and_a_different_folder_is_a_usage_error(monorepo: Path) -> None:
    with pytest.raises(CkauditError, match="give one of them"):
        find_root(monorepo / "proj" / "ckaudit.yaml", monorepo)
    assert find_root(monorepo / "proj" / "ckaudit.yaml", monorepo / "proj") == (monorepo / "proj").resolve()


def test_scan_from_a_subfolder_and_with_config_from_the_top_agree(
    monorepo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = []
    for cwd, argv in (
        (monorepo / "proj" / "src", ["scan", "--files-only", "--format", "json"]),
        (monorepo, ["scan", "--files-only", "--format", "json", "--config", "proj/ckaudit.yaml"]),
        (monorepo, ["scan", "proj", "--files-only", "--format", "json"]),
    ):
        monkeypatch.chdir(cwd)
        assert main(argv) == 1
        reports.append(json.loads(capsys.readouterr().out))
    assert {r["root"] for r in reports} == {str((monorepo / "proj").resolve())}
    assert all(r["checkpoints"][0]["path"] == "weights/gone.pt" for r in reports)


def test_hook_config_in_a_subfolder_reads_paths_from_that_folder(
    monorepo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """pre-commit runs at the work tree's top and passes top-relative FILES; the registry is in proj/."""
    (monorepo / "proj" / "ckaudit.yaml").write_text("version: 1\ncheckpoints:\n  - path: weights/bad.pt\n")
    (monorepo / "proj" / "weights").mkdir()
    (monorepo / "proj" / "weights" / "bad.pt").write_bytes(b"not a checkpoint at all")
    git(monorepo, "add", "-A")
    monkeypatch.chdir(monorepo)
    base = ["hook", "--files-only", "--format", "json", "--config", "proj/ckaudit.yaml"]
    for files in (["proj/weights/bad.pt", "README.md"], []):  # FILES given, or every staged path
        assert main([*base, *files]) == 1
        report = json.loads(capsys.readouterr().out)
        assert report["root"] == str((monorepo / "proj").resolve())
        (checked,) = report["checkpoints"]
        assert checked["path"] == "weights/bad.pt" and checked["findings"][0]["rule"] == "not-a-checkpoint"
