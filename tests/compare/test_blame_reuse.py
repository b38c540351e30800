"""Issue 17: blame over a long history builds each distinct model tree once per run, not once per commit.

A history shaped like nanochat's: most commits touch Python files that are not the model's, a few change
the model file, and one puts back an earlier content (a revert). The worker is real; `worker.builds` counts
the dry runs the evaluator asked of it (tests/modelrepo.py). `--no-cache`, so no result of an earlier run
stands in for a build: the reuse measured is the run's own.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from tests.compare.test_blame import BREAK_CONV, FORWARD, commit, noise
from tests.conftest import git, requires_torch
from tests.modelrepo import NET, SharedWorker, populate, run_cli, untouched

pytestmark = requires_torch


@pytest.fixture(scope="module")
def long_history(tmp_path_factory: pytest.TempPathFactory, checkpoint_bytes: bytes) -> tuple[Path, dict]:
    repo = tmp_path_factory.mktemp("reuse") / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    populate(repo, checkpoint_bytes)
    marks = {"initial": commit(repo, "initial model")}
    model_edits = {8: ("forward", FORWARD), 16: ("reverted", NET), 24: ("break", BREAK_CONV)}
    for i in range(32):
        if i in model_edits:
            name, text = model_edits[i]
            marks[name] = commit(repo, name, {"models/net.py": text})
        else:
            noise(repo, i)
    return repo, marks


def test_each_distinct_model_tree_is_built_once(
    long_history: tuple[Path, dict], worker: SharedWorker
) -> None:
    repo, marks = long_history
    with untouched(repo):
        status, out = run_cli(repo, "blame", "checkpoints/net.pt", "--format", "json", "--no-cache")
    data = json.loads(out)
    assert len(data["history"]) == 33  # every commit touched Python code
    # three contents of models/net.py (NET, FORWARD, BREAK_CONV; models/blocks.py never changes): three
    # builds, not 33 — and the commit that put NET back got the first commit's answer without a build
    assert worker.builds == 3
    statuses = {h["commit"]: h for h in data["history"]}
    assert statuses[marks["reverted"]]["status"] == statuses[marks["initial"]]["status"] == "loads"
    assert statuses[marks["reverted"]]["findings"] == statuses[marks["initial"]]["findings"]
    assert data["breaks"] == [marks["break"]] and data["fixes"] == []
    assert status == 1


def test_a_second_walk_in_one_process_reuses_nothing_stale(
    long_history: tuple[Path, dict], worker: SharedWorker
) -> None:
    """The memo lives in one run's evaluator: a second run with the cache off builds the three trees again."""
    repo, _ = long_history
    run_cli(repo, "blame", "checkpoints/net.pt", "--no-cache")
    first = worker.builds
    run_cli(repo, "blame", "checkpoints/net.pt", "--no-cache")
    assert first == 3 and worker.builds == 6


def test_trees_are_materialised_ahead_only_when_no_outcome_is_known(
    long_history: tuple[Path, dict], worker: SharedWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk's prefetch thread writes a commit's tree ahead of its build only when neither this run nor
    the cache knows its outcome: the cold run writes the three distinct model trees (once each, though 33
    commits share them), the warm run, answered by the cache, writes none; both answer the same."""
    import ckaudit.scan.evaluator as evaluator_module

    written: list[str] = []
    threads: set[str] = set()
    real = evaluator_module.materialise

    def counting(tree, base=None):  # type: ignore[no-untyped-def]
        written.append(tree.commit)
        threads.add(threading.current_thread().name.partition("_")[0])
        return real(tree, base)

    monkeypatch.setattr(evaluator_module, "materialise", counting)
    repo, _ = long_history
    shutil.rmtree(repo / ".git" / "ckaudit", ignore_errors=True)
    _, cold = run_cli(repo, "blame", "checkpoints/net.pt", "--format", "json")
    assert worker.builds == 3 and len(written) == len(set(written)) == 3
    assert threads == {"ckaudit-trees"}  # written ahead, in the prefetch thread, not by the walk itself
    _, warm = run_cli(repo, "blame", "checkpoints/net.pt", "--format", "json")
    assert worker.builds == 3 and len(written) == 3
    assert json.loads(warm)["history"] == json.loads(cold)["history"]
