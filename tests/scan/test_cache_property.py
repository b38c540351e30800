"""The cache property — a cached answer equals the uncached one — over the suite's scenarios: every `hook`,
`scan` and `check` run through `tests.modelrepo.run_cli` is run again cached and with `--no-cache` and must
give identical findings (`assert_cache_transparent`). Here: that the check itself bites, and the sample
repository's scan (every kind of finding) as a user runs it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import git, requires_torch
from tests.modelrepo import NET, SharedWorker, _findings, run_cli, write

pytestmark = requires_torch

SAMPLE = Path(__file__).resolve().parents[2] / "sample_repo"


@pytest.fixture
def sample(git_repo: Path) -> Path:
    shutil.copytree(SAMPLE, git_repo, dirs_exist_ok=True)
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-qm", "the sample repository")
    return git_repo


@pytest.mark.slow  # the sample's every model, three times
def test_the_sample_scan_is_the_same_cached_and_uncached(sample: Path) -> None:
    status, out = run_cli(sample, "scan", "--format", "json")  # checks the property as a side effect
    assert status == 1 and json.loads(out)["summary"]["checkpoints"] >= 5
    again = _findings(run_cli(sample, "scan", "--format", "json"))  # now every outcome comes from the cache
    assert again == _findings((status, out))


def test_the_property_check_bites(
    model_repo: Path, worker: SharedWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache that served one message altered would be caught by the twin runs of `run_cli`."""
    from ckaudit.scan import evaluator

    real = evaluator.outcome_from_record

    def altered(value: dict) -> evaluator.Outcome:
        outcome = real(value)
        findings = tuple(dataclasses.replace(f, message=f.message + "!") for f in outcome.findings)
        return dataclasses.replace(outcome, findings=findings)

    monkeypatch.setattr(evaluator, "outcome_from_record", altered)
    write(model_repo, "models/net.py", NET.replace("nn.Conv2d(3, 8, 3)", "nn.Conv2d(1, 8, 3)"))
    with pytest.raises(AssertionError, match="answers differently with --no-cache"):
        run_cli(model_repo, "scan")  # fills the cache; its twin reads it back altered
