"""The real `pre-commit` framework runs the hook from this checkout (`pre-commit try-repo`), in its own
isolated environment without torch; models are built by the worker under the interpreter the registry names.

The hook repository is a clone of this checkout at HEAD, so pre-commit installs its environment once per
session (PRE_COMMIT_HOME is shared) instead of once per uncommitted-changes snapshot.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import GIT_ENV, git, make_venv, repo_snapshot, requires_torch
from tests.modelrepo import NET, PRE_COMMIT, readme_hooks, run_pre_commit, write

pytestmark = [requires_torch, pytest.mark.slow]  # the real pre-commit installs its environment

CHECKOUT = Path(__file__).resolve().parents[2]
BREAKING = NET.replace("nn.Conv2d(3, 8, 3)", "nn.Conv2d(1, 8, 3)")
FORWARD = NET.replace("super().__init__()", "super().__init__()\n        self.scale = 2.0")


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, Path]]:
    if not PRE_COMMIT.exists():
        pytest.skip("pre-commit is not installed beside the test interpreter")
    base = tmp_path_factory.mktemp("pre-commit")
    clone = base / "ckaudit"
    subprocess.run(["git", "clone", "-q", str(CHECKOUT), str(clone)], check=True, env=_env(base))
    rev = git(clone, "rev-parse", "HEAD").strip()
    yield clone, rev, base / "home"


def _env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    return {**env, **GIT_ENV, "HOME": str(home), **(extra or {})}


def try_repo(
    repo: Path,
    hook_repo: tuple[Path, str, Path],
    *files: str,
    path: str | None = None,
    hook_id: str = "ckaudit",
) -> subprocess.CompletedProcess[str]:
    """`pre-commit try-repo` on `repo` (`path` replaces PATH), checking nothing of the repository changed."""
    clone, rev, home = hook_repo
    command = [
        str(PRE_COMMIT),
        "try-repo",
        str(clone),
        hook_id,
        "--ref",
        rev,
        "--verbose",
        "--files",
        *files,
    ]
    env = _env(repo.parent, {"PRE_COMMIT_HOME": str(home), **({"PATH": path} if path else {})})
    before = repo_snapshot(repo)
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, env=env, timeout=600)
    after = repo_snapshot(repo)
    for key in ("files", "refs", "stash", "symlinks"):
        assert before[key] == after[key], f"{key} changed"
    assert before["git"] == after["git"], "the index or HEAD changed"  # type: ignore[index]
    return result


def test_forward_only_change_passes(model_repo: Path, hook_repo: tuple[Path, str, Path]) -> None:
    write(model_repo, "models/net.py", FORWARD)
    git(model_repo, "add", "models/net.py")
    result = try_repo(model_repo, hook_repo, "models/net.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout


def test_breaking_change_fails_with_layer_shapes_and_line(
    model_repo: Path, hook_repo: tuple[Path, str, Path]
) -> None:
    write(model_repo, "models/net.py", BREAKING)
    git(model_repo, "add", "models/net.py")
    result = try_repo(model_repo, hook_repo, "models/net.py")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Failed" in result.stdout and "conv1.weight" in result.stdout
    assert "[8, 3, 3, 3]" in result.stdout and "[8, 1, 3, 3]" in result.stdout
    assert "models/net.py:9" in result.stdout


def test_partial_staging_and_its_inverse(model_repo: Path, hook_repo: tuple[Path, str, Path]) -> None:
    write(model_repo, "models/net.py", FORWARD)
    git(model_repo, "add", "models/net.py")
    write(model_repo, "models/net.py", BREAKING)  # unstaged: pre-commit stashes it, the hook never sees it
    assert try_repo(model_repo, hook_repo, "models/net.py").returncode == 0
    git(model_repo, "add", "models/net.py")
    write(model_repo, "models/net.py", FORWARD)  # staged break, harmless working tree
    result = try_repo(model_repo, hook_repo, "models/net.py")
    assert result.returncode == 1 and "conv1.weight" in result.stdout


def _without_python_line(repo: Path) -> None:
    text = (repo / "ckaudit.yaml").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith("python:")]
    write(repo, "ckaudit.yaml", "".join(lines))


@pytest.mark.slow
def test_no_python_line_finds_torch_in_the_repository_venv(
    model_repo: Path, hook_repo: tuple[Path, str, Path]
) -> None:
    """No `python:` and torch only in the repository's .venv: pre-commit's own environment (first on PATH,
    named by VIRTUAL_ENV) has no torch and must be passed over."""
    make_venv(model_repo / ".venv", torch=True)
    write(model_repo, ".gitignore", ".venv/\n")
    _without_python_line(model_repo)
    git(model_repo, "add", ".gitignore", "ckaudit.yaml")
    git(model_repo, "commit", "-q", "-m", "registry without an interpreter path")
    write(model_repo, "models/net.py", BREAKING)
    git(model_repo, "add", "models/net.py")
    result = try_repo(model_repo, hook_repo, "models/net.py")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "conv1.weight" in result.stdout and "models/net.py:9" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_python_command_name_skips_pre_commits_interpreter(
    model_repo: Path, hook_repo: tuple[Path, str, Path], tmp_path: Path
) -> None:
    """`python: python3` names a command: the python3 pre-commit puts first on PATH has no torch, the next
    one does."""
    tools = make_venv(tmp_path / "tools", torch=True).parent
    registry = (model_repo / "ckaudit.yaml").read_text(encoding="utf-8")
    write(model_repo, "ckaudit.yaml", re.sub(r"(?m)^python: .*$", "python: python3", registry))
    git(model_repo, "add", "ckaudit.yaml")
    git(model_repo, "commit", "-q", "-m", "portable interpreter")
    write(model_repo, "models/net.py", BREAKING)
    git(model_repo, "add", "models/net.py")
    path = f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"
    result = try_repo(model_repo, hook_repo, "models/net.py", path=path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "conv1.weight" in result.stdout and "Traceback" not in result.stdout + result.stderr


@pytest.mark.slow
def test_no_interpreter_with_torch_is_one_clear_error(
    model_repo: Path, hook_repo: tuple[Path, str, Path], tmp_path: Path
) -> None:
    _without_python_line(model_repo)
    git(model_repo, "add", "ckaudit.yaml")
    git(model_repo, "commit", "-q", "-m", "registry without an interpreter path")
    write(model_repo, "models/net.py", BREAKING)
    git(model_repo, "add", "models/net.py")
    bare = make_venv(tmp_path / "bare", torch=False).parent.parent
    path = f"{bare / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin"
    result = try_repo(model_repo, hook_repo, "models/net.py", path=path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    assert "no Python interpreter that can import torch" in output and "python: .venv/bin/python" in output


@pytest.mark.slow
def test_ckaudit_files_lets_an_unrelated_binary_through(
    model_repo: Path, hook_repo: tuple[Path, str, Path]
) -> None:
    """A firmware image is a `.bin` like pytorch_model.bin but no checkpoint: a note, not a blocked commit."""
    (model_repo / "firmware.bin").write_bytes(bytes(range(256)) * 64)
    git(model_repo, "add", "firmware.bin")
    result = try_repo(model_repo, hook_repo, "firmware.bin", hook_id="ckaudit-files")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout


def test_the_hook_manifest_is_valid_and_declares_what_pre_commit_expects() -> None:
    import yaml

    result = subprocess.run(
        [str(PRE_COMMIT), "validate-manifest", str(CHECKOUT / ".pre-commit-hooks.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for hook in yaml.safe_load((CHECKOUT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")):
        assert hook["pass_filenames"] is True and hook["require_serial"] is True
        assert hook["stages"] == ["pre-commit"] and hook["minimum_pre_commit_version"] == "3.2.0"


@pytest.mark.slow
def test_the_readme_snippet_works_as_written(model_repo: Path, tmp_path: Path) -> None:
    """The README's .pre-commit-config.yaml, copied as is, with ckaudit installed where the user commits
    from (this test's environment) and torch in the repository's .venv; no `python:` in the registry."""
    snippet = readme_hooks()
    assert "repo: local" in snippet
    write(model_repo, ".pre-commit-config.yaml", snippet)
    make_venv(model_repo / ".venv", torch=True)
    write(model_repo, ".gitignore", ".venv/\n")
    _without_python_line(model_repo)
    git(model_repo, "add", "-A")
    git(model_repo, "commit", "-q", "-m", "hooks as the README says")
    write(model_repo, "models/net.py", BREAKING)
    git(model_repo, "add", "models/net.py")
    result = run_pre_commit(model_repo, tmp_path, "models/net.py")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "conv1.weight" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_installed_hook_second_commit_is_warm(
    model_repo: Path, hook_repo: tuple[Path, str, Path], server_dir: Path
) -> None:
    """As a new user: `pre-commit install`, then two commits with model changes. The first is cold and
    starts the build server after it; the second is served by it (its session count says so)."""
    from tests.warmtools import statuses, wait_for_server

    clone, rev, home = hook_repo
    config = f"repos:\n  - repo: {clone}\n    rev: {rev}\n    hooks:\n      - id: ckaudit\n"
    write(model_repo, ".pre-commit-config.yaml", config)
    git(model_repo, "add", ".pre-commit-config.yaml")
    git(model_repo, "commit", "-q", "--no-verify", "-m", "pre-commit config")
    env = _env(model_repo.parent, {"PRE_COMMIT_HOME": str(home)})
    subprocess.run([str(PRE_COMMIT), "install"], cwd=model_repo, env=env, check=True, capture_output=True)
    for step, text in enumerate((FORWARD, FORWARD + "\n# a comment\n")):
        write(model_repo, "models/net.py", text)
        git(model_repo, "add", "models/net.py")
        done = subprocess.run(
            ["git", "commit", "-q", "-m", f"model change {step}"],
            cwd=model_repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        if step == 0:
            assert wait_for_server()["sessions"] == 0  # started after the cold first commit
    assert statuses()[0]["sessions"] == 1  # the second commit's build ran in a forked child
