"""ckaudit.vcs.queries against real repositories: tracked, ignored, LFS attributes, history, subfolders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ckaudit.vcs import queries as git


def _commit(repo: Path, run_git: Callable[..., str], message: str) -> str:
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-qm", message)
    return run_git(repo, "rev-parse", "HEAD").strip()


def test_outside_git_is_none(tmp_path: Path) -> None:
    assert git.find_repo(tmp_path) is None


def test_tracked_and_ignored(git_repo: Path, run_git: Callable[..., str]) -> None:
    (git_repo / ".gitignore").write_text("*.ckpt\n")
    (git_repo / "a.pt").write_bytes(b"x")
    _commit(git_repo, run_git, "a")
    (git_repo / "b.ckpt").write_bytes(b"x")
    (git_repo / "c.pt").write_bytes(b"x")
    repo = git.find_repo(git_repo)
    assert repo is not None and repo.prefix == ""
    assert git.tracked_files(repo) == {".gitignore", "a.pt"}
    assert git.ignored(repo, ["b.ckpt", "c.pt"]) == {"b.ckpt"}
    assert git.ignored(repo, []) == set()


def test_subfolder_root_is_relative(git_repo: Path, run_git: Callable[..., str]) -> None:
    sub = git_repo / "proj"
    (sub / "ck").mkdir(parents=True)
    (sub / "ck" / "m.pt").write_bytes(b"x")
    (git_repo / "other.pt").write_bytes(b"x")
    _commit(git_repo, run_git, "files")
    repo = git.find_repo(sub)
    assert repo is not None and repo.prefix == "proj/"
    assert git.tracked_files(repo) == {"ck/m.pt"}


def test_history_rename_and_delete(git_repo: Path, run_git: Callable[..., str]) -> None:
    (git_repo / "ck").mkdir()
    (git_repo / "ck" / "best.pth").write_bytes(b"weights" * 100)
    (git_repo / "ck" / "old.pth").write_bytes(b"other" * 100)
    _commit(git_repo, run_git, "add checkpoints")
    run_git(git_repo, "mv", "ck/best.pth", "ck/final.pth")
    renamed = _commit(git_repo, run_git, "rename best to final")
    run_git(git_repo, "rm", "-q", "ck/old.pth")
    deleted = _commit(git_repo, run_git, "drop old")
    repo = git.find_repo(git_repo)
    assert repo is not None
    hint = git.history_hint(repo, "ck/best.pth")
    assert hint is not None and hint.commit == renamed and hint.renamed_to == "ck/final.pth"
    assert hint.subject == "rename best to final"
    hint = git.history_hint(repo, "ck/old.pth")
    assert hint is not None and hint.commit == deleted and hint.renamed_to is None
    assert git.history_hint(repo, "ck/never.pth") is None


def test_lfs_attribute_for_a_missing_path(git_repo: Path) -> None:
    (git_repo / ".gitattributes").write_text("*.bin filter=lfs diff=lfs merge=lfs -text\n")
    repo = git.find_repo(git_repo)
    assert repo is not None
    assert git.lfs_tracked(repo, "weights/model.bin")
    assert not git.lfs_tracked(repo, "weights/model.pt")


def test_empty_repository_has_no_history(git_repo: Path) -> None:
    repo = git.find_repo(git_repo)
    assert repo is not None
    assert git.tracked_files(repo) == set()
    assert git.history_hint(repo, "x.pt") is None
