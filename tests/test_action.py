"""The GitHub Action run as GitHub runs it: action.yml's shell steps, the GITHUB_* variables and a
pull_request event payload, on a temporary repository whose head breaks a registered checkpoint.

A small runner interprets the composite action: `uses:` steps (upload-sarif) and the install step are
GitHub's or pip's business and are skipped (ckaudit and torch are installed here);
every other step's `run` script goes through `bash -eo pipefail` with its `env`, `${{ inputs.* }}` and
`${{ steps.*.outputs.* }}` substituted, and its own GITHUB_OUTPUT file, as the runner does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ckaudit.ci import plan
from ckaudit.errors import CkauditError

REPO_ROOT = Path(__file__).resolve().parent.parent
ACTION = yaml.safe_load((REPO_ROOT / "action.yml").read_text())
SKIPPED = {"Install ckaudit"}
_EXPR = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


@dataclass
class StepRun:
    name: str
    status: int
    stdout: str
    outputs: dict[str, str] = field(default_factory=dict)


def _evaluate(expr: str, inputs: Mapping[str, str], steps: Mapping[str, Mapping[str, str]]) -> str:
    parts = expr.split(".")
    if parts[0] == "inputs" and len(parts) == 2:
        return inputs[parts[1]]
    if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
        return steps.get(parts[1], {}).get(parts[3], "")
    raise AssertionError(f"the test runner does not know the expression {expr!r}")


def run_action(inputs: Mapping[str, str], env: Mapping[str, str], cwd: Path, tmp: Path) -> list[StepRun]:
    """Run action.yml's shell steps in order, stopping at the first failure (no `if:` on them)."""
    values = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()} | dict(inputs)
    outputs: dict[str, dict[str, str]] = {}
    runs: list[StepRun] = []
    for index, step in enumerate(ACTION["runs"]["steps"]):
        if "uses" in step or step["name"] in SKIPPED:
            continue
        assert "if" not in step, "shell steps must run unconditionally for this runner"

        def sub(text: str) -> str:
            return _EXPR.sub(lambda m: _evaluate(m.group(1), values, outputs), text)

        output_file = tmp / f"output-{index}"
        output_file.write_text("")
        step_env = {**env, "GITHUB_OUTPUT": str(output_file), "GITHUB_ACTION_PATH": str(REPO_ROOT)}
        step_env |= {k: sub(str(v)) for k, v in step.get("env", {}).items()}
        script = tmp / f"step-{index}.sh"
        script.write_text(sub(step["run"]))
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=cwd,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        parsed = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
        if "id" in step:
            outputs[step["id"]] = parsed
        runs.append(StepRun(step["name"], done.returncode, done.stdout + done.stderr, parsed))
        if done.returncode != 0:
            break
    return runs


def github_env(workspace: Path, tmp: Path, event_name: str, event: Mapping[str, Any]) -> dict[str, str]:
    event_path = tmp / "event.json"
    event_path.write_text(json.dumps(event))
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CKAUDIT_", "RUNNER_"))}
    return keep | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
        "RUNNER_TEMP": str(tmp),
    }


NET_V1 = """from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3)
        self.fc1 = nn.Linear(16, 4)
"""
REGISTRY = """version: 1
models:
  net:
    factory: models.net:Net
checkpoints:
  - path: checkpoints/net.pt
    model: net
"""


def _breaking_pull_request(repo: Path, git: Callable[..., str]) -> str:
    """A base commit whose checkpoint loads, and a head commit that changes conv1's input channels."""
    import torch

    (repo / "models").mkdir()
    (repo / "models" / "__init__.py").write_text("")
    (repo / "models" / "net.py").write_text(NET_V1)
    (repo / "ckaudit.yaml").write_text(REGISTRY)
    (repo / "checkpoints").mkdir()
    state = {
        "conv1.weight": torch.zeros(16, 3, 3, 3),
        "conv1.bias": torch.zeros(16),
        "fc1.weight": torch.zeros(4, 16),
        "fc1.bias": torch.zeros(4),
    }
    torch.save(state, repo / "checkpoints" / "net.pt")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "net v1 and its checkpoint")
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "models" / "net.py").write_text(NET_V1.replace("nn.Conv2d(3, 16, 3)", "nn.Conv2d(1, 16, 3)"))
    git(repo, "commit", "-qam", "grayscale input")
    return base


@pytest.mark.torch
@pytest.mark.slow  # the whole action on a real repository
def test_pull_request_with_a_breaking_change(
    git_repo: Path, run_git: Callable[..., str], tmp_path: Path
) -> None:
    pytest.importorskip("torch")  # skipped only where torch is truly absent (conftest's requires_torch)
    base = _breaking_pull_request(git_repo, run_git)
    runner_tmp = tmp_path / "runner"
    runner_tmp.mkdir()
    event = {"pull_request": {"number": 7, "base": {"sha": base, "ref": "main"}, "head": {"sha": "x"}}}
    env = github_env(git_repo, runner_tmp, "pull_request", event)
    runs = run_action({}, env, git_repo, runner_tmp)

    ckaudit_step, link_step, fail_step = runs
    assert link_step.status == 0  # no artifact URL here (the upload is GitHub's): it adds nothing
    assert ckaudit_step.status == 0, ckaudit_step.stdout
    assert ckaudit_step.outputs["exit-code"] == "1", ckaudit_step.stdout
    assert ckaudit_step.outputs["command"] == "check"
    annotations = [line for line in ckaudit_step.stdout.splitlines() if line.startswith("::error ")]
    assert any("shape-mismatch" in line and "file=models/net.py" in line for line in annotations), annotations
    assert fail_step.status == 1

    summary = (runner_tmp / "summary.md").read_text()
    assert "ckaudit check" in summary and "checkpoints/net.pt" in summary and "shape-mismatch" in summary
    schema = json.loads((REPO_ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
    sarif = json.loads(Path(ckaudit_step.outputs["sarif-file"]).read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(sarif)
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} >= {"shape-mismatch"}
    page = Path(ckaudit_step.outputs["html-file"]).read_text()
    assert page.startswith("<!DOCTYPE html>") and 'data-checkpoint="checkpoints/net.pt"' in page
    assert "The HTML report" not in summary
    assert run_git(git_repo, "status", "--porcelain") == ""


def _env(**values: str) -> dict[str, str]:
    return {"GITHUB_WORKSPACE": "/ws", "RUNNER_TEMP": "/tmp/r", **values}


def test_plan_pull_request_runs_check_against_the_payload_base(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"base": {"sha": "abc123"}}}))
    step = plan(
        _env(
            GITHUB_EVENT_NAME="pull_request",
            GITHUB_EVENT_PATH=str(event),
            CKAUDIT_PATH="sample_repo",
            CKAUDIT_FAIL_ON="warning",
            CKAUDIT_CONFIG="sample_repo/ckaudit.yaml",
        )
    )
    assert step.command == "check" and step.root == Path("/ws/sample_repo")
    assert step.argv == (
        "check",
        "--base",
        "abc123",
        "--format",
        "github",
        "--fail-on",
        "warning",
        "--config",
        "/ws/sample_repo/ckaudit.yaml",
        "--sarif-output",
        "/tmp/r/ckaudit-check.sarif",
        "--html-output",
        "/tmp/r/ckaudit-check.html",
    )
    assert step.category == "ckaudit-check"


def test_plan_push_runs_a_sharded_scan_without_sarif() -> None:
    step = plan(
        _env(GITHUB_EVENT_NAME="push", CKAUDIT_SHARD="2/3", CKAUDIT_SARIF="false", CKAUDIT_HTML="false")
    )
    assert step.argv == ("scan", ".", "--shard", "2/3", "--format", "github", "--fail-on", "error")
    assert step.html_file is None
    assert step.sarif_file is None and step.category == "ckaudit-scan-shard-2-of-3"


def test_plan_pull_request_check_runs_in_shard_one_only(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"base": {"sha": "abc"}}}))
    common = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(event)}
    assert plan(_env(**common, CKAUDIT_SHARD="1/2")).command == "check"
    assert plan(_env(**common, CKAUDIT_SHARD="2/2")).command == "skip"


def test_bad_inputs_become_an_error_annotation_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ckaudit.ci import main

    output = tmp_path / "out"
    assert main(_env(GITHUB_EVENT_NAME="push", CKAUDIT_SHARD="5/4", GITHUB_OUTPUT=str(output))) == 0
    assert capsys.readouterr().out.startswith("::error title=ckaudit::--shard '5/4'")
    assert "exit-code=2\n" in output.read_text()
    with pytest.raises(CkauditError, match="base commit"):
        plan(_env(GITHUB_EVENT_NAME="pull_request"))


def test_every_action_used_is_pinned_by_commit_and_python_is_the_callers() -> None:
    """Tags move; a full commit id does not. The release stays readable in a comment beside it."""
    uses = re.findall(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", (REPO_ROOT / "action.yml").read_text(), re.M)
    assert uses, "the action uses at least the SARIF upload"
    for target, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", target), target
        assert re.search(r"#\s*v\d+(\.\d+)*", comment), f"{target}: name the release in a comment"
    steps = ACTION["runs"]["steps"]
    assert not any("setup-python" in step.get("uses", "") for step in steps)
    assert not {"python-version", "torch-spec"} & set(ACTION["inputs"])


def test_the_html_report_is_uploaded_and_linked_from_the_job_summary(tmp_path: Path) -> None:
    steps = {step["name"]: step for step in ACTION["runs"]["steps"]}
    upload = steps["Upload the HTML report"]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["path"] == "${{ steps.ckaudit.outputs.html-file }}"
    link = steps["Link the HTML report from the job summary"]
    summary = tmp_path / "summary.md"
    summary.write_text("# ckaudit\n")
    url = "https://github.com/o/r/actions/runs/1/artifacts/2"
    env = {**os.environ, "CKAUDIT_HTML_URL": url, "GITHUB_STEP_SUMMARY": str(summary)}
    subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", link["run"]], env=env, check=True
    )
    assert f"[The HTML report]({url})" in summary.read_text()
