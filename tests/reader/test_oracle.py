"""The differential oracle (tests/reader/oracle.py) over seeds and a bounded mutation fuzzer.

For every file: ckaudit's reported globals include every global torch.load resolved (unless ckaudit says
it cannot follow the file, which is unsafe-pickle whatever follows), and a file where torch resolved a
name that is not inert is reported as unsafe-pickle. A fixed seed and a bounded count keep this in the
fast tier; `benchmarks/oracle_fuzz.py` runs it longer.
"""

from __future__ import annotations

import os
import pickle
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from ckaudit.files.safety import safety_findings
from ckaudit.findings import Rule
from ckaudit.reader.pickle.stubs import UNPROVEN
from ckaudit.reader.safety import is_inert, normalize
from tests.conftest import requires_torch
from tests.reader import divergence, oracle, streams
from tests.reader import reader_fixtures as fx

pytestmark = requires_torch
MUTANTS = int(os.environ.get("CKAUDIT_ORACLE_MUTANTS", "150"))
SEED = int(os.environ.get("CKAUDIT_ORACLE_SEED", "16"))


@pytest.fixture(scope="module")
def torch_oracle() -> Iterator[oracle.Oracle]:
    running = oracle.Oracle()
    yield running
    running.close()


def _seeds(folder: Path) -> dict[str, bytes]:
    import argparse

    import numpy as np
    import torch

    canary = folder / "canary"
    base = folder / "base.pt"
    torch.save({"w": torch.ones(2)}, base)
    seeds = {name: path.read_bytes() for name, path in divergence.write_all(folder, canary, base).items()}
    rich = folder / "rich.pt"
    torch.save(
        {"sd": {"w": torch.ones(3)}, "args": argparse.Namespace(lr=0.1), "rng": np.random.get_state()}, rich
    )
    seeds["rich"] = rich.read_bytes()
    legacy = folder / "legacy.pt"
    torch.save({"w": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    seeds["legacy"] = legacy.read_bytes()
    tar = folder / "old.tar"
    streams.write_tar_checkpoint(tar, streams.tar_main_pickle({"lr": 0.1}), [1.0, 2.0])
    seeds["tar"] = tar.read_bytes()
    seeds["plain4"] = pickle.dumps({"a": [1, 2.0, "x"], "b": (None, True)}, protocol=4)
    seeds["plain0"] = pickle.dumps({"a": [1, 2.0, "x"]}, protocol=0)
    evil = folder / "evil.pt"
    fx.replace_data_pkl(base, divergence.nested_rebuild(canary), evil)
    seeds["evil"] = evil.read_bytes()
    return seeds


def _ckaudit(path: Path) -> tuple[set[str], set[Rule]]:
    info = oracle.seen_info(path)
    names = {normalize(n) for n in (*info.globals, *info.calls)}
    return names, {f.rule for f in safety_findings(path.name, info, None)}


def _divergence(path: Path, torch_oracle: oracle.Oracle) -> str | None:
    resolved = {normalize(n) for n in torch_oracle.globals(path)}
    names, rules = _ckaudit(path)
    missing = resolved - names
    if any(n.startswith(UNPROVEN) for n in names):
        # ckaudit could not follow what torch reads and says so: unsafe whatever the names are
        return None if Rule.UNSAFE_PICKLE in rules else f"{path.name}: unproven but not unsafe-pickle"
    if missing:
        return f"{path.name}: torch resolved {sorted(missing)}, ckaudit did not report them"
    dangerous = [n for n in resolved if not is_inert(n)]
    if dangerous and Rule.UNSAFE_PICKLE not in rules:
        return f"{path.name}: torch resolved {dangerous}, ckaudit reports {sorted(r.value for r in rules)}"
    return None


def test_oracle_sees_what_torch_resolves(tmp_path: Path, torch_oracle: oracle.Oracle) -> None:
    """The oracle itself: a real checkpoint's rebuild functions, and a payload's name without running it."""
    seeds = _seeds(tmp_path)
    path = tmp_path / "probe.pt"
    path.write_bytes(seeds["evil"])
    assert "uuid._get_command_stdout" in torch_oracle.globals(path)
    assert not (tmp_path / "canary").exists()
    path.write_bytes(seeds["rich"])
    assert "torch._utils._rebuild_tensor_v2" in torch_oracle.globals(path)


def test_no_divergence_on_seeds_and_mutants(tmp_path: Path, torch_oracle: oracle.Oracle) -> None:
    seeds = _seeds(tmp_path)
    rng = random.Random(SEED)
    cases = list(seeds.items())
    names = sorted(seeds)
    for i in range(MUTANTS):
        name = rng.choice(names)
        cases.append((f"{name}-m{i}", oracle.mutate(seeds[name], rng)))
    found = []
    for name, data in cases:
        path = tmp_path / f"case-{name}.pt"
        path.write_bytes(data)
        problem = _divergence(path, torch_oracle)
        if problem:
            found.append(problem)
    assert found == [], "\n".join(found)
    assert not (tmp_path / "canary").exists()
