"""Exit statuses as a user and CI see them: 0 clean, 1 findings, 2 usage or configuration, 3 a bug."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ckaudit
from ckaudit.cli import main

REGISTRY_MISSING_FILE = """\
version: 1
checkpoints:
  - path: checkpoints/gone.pt
"""


def ckaudit_process(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ckaudit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_clean_is_0_and_findings_are_1(tmp_path: Path) -> None:
    assert ckaudit_process(tmp_path, "scan", "--files-only").returncode == 0
    (tmp_path / "ckaudit.yaml").write_text(REGISTRY_MISSING_FILE)
    done = ckaudit_process(tmp_path, "scan", "--files-only")
    assert done.returncode == 1 and "checkpoints/gone.pt" in done.stdout


def test_usage_and_configuration_errors_are_2(tmp_path: Path) -> None:
    assert ckaudit_process(tmp_path, "scan", "--no-such-option").returncode == 2
    (tmp_path / "ckaudit.yaml").write_text("version: 1\ncheckpoints: [\n")
    done = ckaudit_process(tmp_path, "scan", "--files-only")
    assert (
        done.returncode == 2 and done.stderr.startswith("ckaudit: error: ") and "Traceback" not in done.stderr
    )


def test_a_bug_is_3_with_one_line_naming_where_to_report(tmp_path: Path) -> None:
    crash = (
        "import sys\nimport ckaudit.commands.scan as scan\n"
        "def broken(args): return {}['no such key']\n"
        "scan.run = broken\nfrom ckaudit.cli import main\nsys.exit(main(['scan']))\n"
    )
    done = subprocess.run([sys.executable, "-c", crash], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"ckaudit: internal error: KeyError: 'no such key' (a bug in ckaudit {ckaudit.__version__}: please "
        "report it; rerun with CKAUDIT_DEBUG=1 for the traceback)"
    ]
    debug = subprocess.run(
        [sys.executable, "-c", crash],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "CKAUDIT_DEBUG": "1"},
    )
    assert debug.returncode == 3
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.splitlines()[-1] == done.stderr.splitlines()[0]


def test_help_documents_every_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for status in (
        "0 nothing at or above --fail-on",
        "1 findings",
        "2 usage or configuration error",
        "3 internal",
    ):
        assert status in text


def test_the_version_is_written_once(capsys: pytest.CaptureFixture[str]) -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ckaudit.__version__"}
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"ckaudit {ckaudit.__version__}"
