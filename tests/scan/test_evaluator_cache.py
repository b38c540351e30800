"""The evaluator's cache validity, unit by unit (no worker): a stored outcome is served only while the files
its build imported and the installed versions of the distributions it used are unchanged; only a complete
outcome is stored; a dead worker stores nothing and raises `WorkerDied`; the environment cause comes from
ckaudit.lock's recorded versions, never from the cache's history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ckaudit.cache import JsonStore
from ckaudit.errors import WorkerDied, WorkerError
from ckaudit.findings import Finding, Rule, Severity
from ckaudit.registry.config import CheckpointEntry, Config, ModelSpec
from ckaudit.registry.lock import Signature, dump_lock
from ckaudit.scan import evaluator as module
from ckaudit.scan.evaluator import Evaluator, Outcome
from ckaudit.worker.client import Incident
from ckaudit.worker.interpreter import Interpreter

SPEC = ModelSpec("m", factory="models:M")
ENTRY = CheckpointEntry(path="c.pt", model="m")
SHAPE = Finding(Rule.SHAPE_MISMATCH, Severity.ERROR, "fc.weight: [2, 4] vs [3, 4]", checkpoint="c.pt")


class FakeTree:
    def __init__(self, oids: dict[str, str]) -> None:
        self.oids = oids

    def oid(self, path: str) -> str | None:
        return self.oids.get(path)


class FakeWorker:
    def __init__(self) -> None:
        self.incidents: list[Incident] = []


def install(site: Path, name: str, version: str) -> None:
    for old in site.glob(f"{name}-*.dist-info"):
        (old / "METADATA").unlink()
        old.rmdir()
    meta = site / f"{name}-{version}.dist-info"
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """An Evaluator over a real on-disk cache, with the build (`_evaluate`'s compat check) replaced."""
    site = tmp_path / "site"
    install(site, "mylayers", "1.0")
    config = Config(root=tmp_path, models={"m": SPEC}, checkpoints=(ENTRY,))
    evaluator = Evaluator(config, JsonStore(tmp_path / "cache"))
    evaluator._interpreter = Interpreter("python", "2.13.0", "3.11", (str(site),))
    worker = FakeWorker()
    monkeypatch.setattr(Evaluator, "worker", lambda self: worker)
    monkeypatch.setattr(Evaluator, "outcome_key", lambda self, *a: "k" * 64)
    monkeypatch.setattr(Evaluator, "checkout", lambda self, tree: tmp_path)
    state: dict[str, Any] = {"builds": 0, "answer": None, "incident": None}

    def fake_compat(*args: object) -> object:
        state["builds"] += 1
        if state["incident"] is not None:
            worker.incidents.append(state["incident"])
        return state["answer"]

    monkeypatch.setattr("ckaudit.compat.check_compat", fake_compat)  # the face the evaluator imports from
    return {"evaluator": evaluator, "site": site, "state": state, "tmp": tmp_path}


def answer(loads: bool, sources: tuple[str, ...] = ("models.py",), version: str = "1.0") -> Any:
    from ckaudit.compat.check import CompatResult
    from ckaudit.worker.results import ModelBuild

    build = ModelBuild(ok=True, sources=sources, distributions={"mylayers": version})
    return CompatResult(loads, () if loads else (SHAPE,), sources, build)


def fresh(setup: dict[str, Any]) -> Evaluator:
    """Another run (another process): same cache folder, empty memo."""
    old = setup["evaluator"]
    new = Evaluator(old.config, JsonStore(setup["tmp"] / "cache"))
    new._interpreter = old._interpreter
    return new


def test_a_stored_outcome_is_served_while_its_files_and_packages_are_unchanged(setup: dict[str, Any]) -> None:
    state, tree = setup["state"], FakeTree({"models.py": "a1"})
    state["answer"] = answer(loads=True)
    first = setup["evaluator"].outcome(tree, SPEC, ENTRY, None)
    assert first.loads and not first.cached and state["builds"] == 1
    again = fresh(setup).outcome(tree, SPEC, ENTRY, None)
    assert again.cached and again.loads and state["builds"] == 1
    assert (
        fresh(setup).outcome(FakeTree({"models.py": "b2"}), SPEC, ENTRY, None).cached is False
    )  # file changed
    assert state["builds"] == 2
    install(setup["site"], "mylayers", "2.0")  # a package the build used changed version
    assert fresh(setup).outcome(tree, SPEC, ENTRY, None).cached is False
    assert state["builds"] == 3


def test_a_timed_out_outcome_is_a_finding_but_not_stored(setup: dict[str, Any]) -> None:
    state, tree = setup["state"], FakeTree({"models.py": "a1"})
    state["answer"] = answer(loads=False)
    state["incident"] = Incident("timeout", "timed out after 3 s", "dry_run", "")
    outcome = setup["evaluator"].outcome(tree, SPEC, ENTRY, None)
    assert not outcome.complete and not outcome.loads
    state["incident"] = None
    assert fresh(setup).outcome(tree, SPEC, ENTRY, None).cached is False and state["builds"] == 2


def test_a_dead_worker_raises_and_stores_nothing(setup: dict[str, Any]) -> None:
    state, tree = setup["state"], FakeTree({"models.py": "a1"})
    state["answer"] = answer(loads=False, sources=())  # a crashed build reports no source files
    state["incident"] = Incident("crashed", "the worker was killed by SIGKILL", "build", "Fatal\n")
    with pytest.raises(WorkerDied, match="killed by SIGKILL") as died:
        setup["evaluator"].outcome(tree, SPEC, ENTRY, None)
    assert died.value.exit_code == 3 and "not a verdict about the code" in str(died.value)
    assert not list((setup["tmp"] / "cache").rglob("*.json"))


def test_the_environment_cause_comes_from_the_lock_cached_or_not(setup: dict[str, Any]) -> None:
    state, tree, tmp = setup["state"], FakeTree({"models.py": "a1"}), setup["tmp"]
    record = Signature("torch-zip", "", {}, packages={"mylayers": "1.0"})
    (tmp / "ckaudit.lock").write_text(dump_lock({"c.pt": record}))
    install(setup["site"], "mylayers", "2.0")
    state["answer"] = answer(loads=False, version="2.0")  # the build now uses mylayers 2.0
    uncached = setup["evaluator"].outcome(tree, SPEC, ENTRY, None)
    assert uncached.environment == {"mylayers": ("1.0", "2.0")} and not uncached.cached
    cached = fresh(setup).outcome(tree, SPEC, ENTRY, None)
    assert cached.cached and state["builds"] == 1
    assert cached.environment == uncached.environment and cached.findings == uncached.findings


def test_records_round_trip() -> None:
    outcome = Outcome(False, True, (SHAPE,), {"models.py": "a1"}, None, {"mylayers": "1.0"})
    back = module.outcome_from_record(module.outcome_record(outcome))
    assert back == Outcome(False, True, (SHAPE,), {"models.py": "a1"}, None, {"mylayers": "1.0"}, cached=True)


def test_an_early_worker_that_cannot_start_is_reported_by_the_build_that_needs_it(tmp_path: Path) -> None:
    """The hook starts the worker before its first build; an interpreter that cannot run is not an error
    then (every outcome may come from the cache) but is when a build needs the worker."""
    config = Config(root=tmp_path, models={"m": SPEC}, checkpoints=(ENTRY,))
    with Evaluator(config, JsonStore(tmp_path / "cache"), python=str(tmp_path / "no-python")) as evaluator:
        evaluator.start_worker()
        assert evaluator._worker is None
        with pytest.raises(WorkerError, match="cannot start the model worker"):
            evaluator.worker()


def test_a_worker_never_asked_anything_is_closed_without_waiting_for_its_start() -> None:
    import sys

    from ckaudit.worker.client import ModelWorker

    worker = ModelWorker(sys.executable, timeout=60)
    process = worker._process
    assert process is not None
    worker.close()  # torch's import is still under way: killed, not awaited
    assert process.popen.poll() is not None and worker._process is None
