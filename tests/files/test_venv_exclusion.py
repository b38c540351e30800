"""`.pt` files inside a Python environment in the repository are never scanned (nor proposed by `init`,
which lists files through the same `repository_files`), whatever the folder is called or `scan.exclude`
says: a folder holding `pyvenv.cfg` or `conda-meta/`, and `site-packages` anywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ckaudit.cli import main
from tests.conftest import make_venv
from tests.files import factory

INSIDE = ("tools/gpu-env/lib/data.pt", "conda/envs/ml/weights.pt", "vendor/site-packages/pkg/w.pt")


def _tree(root: Path) -> None:
    make_venv(root / "tools" / "gpu-env", torch=False)  # a venv under an unusual name
    (root / "conda" / "envs" / "ml" / "conda-meta").mkdir(parents=True)
    for path in ("model.pt", *INSIDE):
        factory.save_zip(root / path)
    (root / "ckaudit.yaml").write_text("version: 1\nscan:\n  exclude: []\n", encoding="utf-8")


def _scanned(capsys: pytest.CaptureFixture[str]) -> list[str]:
    main(["scan", "--format", "json", "--files-only", "--no-cache"])
    return sorted(c["path"] for c in json.loads(capsys.readouterr().out)["checkpoints"])


def test_walked_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert _scanned(capsys) == ["model.pt"]


def test_tracked_environment(
    git_repo: Path,
    run_git: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _tree(git_repo)
    run_git(git_repo, "add", "-f", "-A")  # even committed, an environment's files are not the project's
    run_git(git_repo, "commit", "-qm", "with environments")
    monkeypatch.chdir(git_repo)
    assert _scanned(capsys) == ["model.pt"]
