"""Where ckaudit's reading of the bytes could differ from torch.load's, the file is unsafe-pickle.

Each attack (tests/reader/divergence.py, our own designs) is proven in a throwaway subprocess to run its
payload (creating a canary file) under torch.load(weights_only=False); ckaudit must report unsafe-pickle
for it, and nothing may run while ckaudit reads it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ckaudit.files.safety import safety_findings
from ckaudit.findings import Rule
from tests.conftest import requires_torch
from tests.reader import attacks, divergence, oracle

pytestmark = requires_torch


@pytest.fixture(scope="module")
def attack_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    import torch

    folder = tmp_path_factory.mktemp("divergence")
    base = folder / "base.pt"
    torch.save({"w": torch.ones(2)}, base)
    canary = folder / "canary"
    return divergence.write_all(folder, canary, base), canary


def _rules(path: Path) -> set[Rule]:
    """The rules of the safety findings ckaudit reports for the file, read or not."""
    info = oracle.seen_info(path)
    return {f.rule for f in safety_findings(path.name, info, None)}


def test_every_divergence_is_unsafe_pickle_and_nothing_runs(
    attack_files: tuple[dict[str, Path], Path],
) -> None:
    files, canary = attack_files
    for name, path in files.items():
        assert Rule.UNSAFE_PICKLE in _rules(path), name
    assert not canary.exists(), "a payload ran inside ckaudit"


def test_frame_attack_is_harmless_to_pickle_loads() -> None:
    """The frame attack's two programs: pickle.loads (bytes) sees a string and stops."""
    assert divergence.loads_is_harmless(divergence.frame_boundary(Path("/nonexistent/canary")))


@pytest.mark.slow
def test_divergence_payloads_are_real(attack_files: tuple[dict[str, Path], Path], tmp_path: Path) -> None:
    """A throwaway subprocess runs torch.load(weights_only=False) on each: each payload creates the canary."""
    files, canary = attack_files
    ran = attacks.payloads_ran(canary, {n: str(p) for n, p in files.items()}, tmp_path)
    assert sorted(n for n, created in ran.items() if not created) == []
    assert len(ran) == len(files) >= 10


_TEXT_CASES = [
    b"I0x10\n",
    b"I010\n",
    b"I00\n",
    b"I01\n",
    b"I 1\n",
    b"I+1\n",
    b"I1_0\n",
    b"I1\x00junk\n",
    b"I-0x1f\n",
    b"I99999999999999999999999\n",
    b"I08\n",
    b"I0x\n",
    b"L0x10L\n",
    b"L10\n",
    b"F1.5\n",
    b"S'a\\x41'\n",
    b"S'unquoted\n",
    b"Vcaf\\u00e9\n",
]


@pytest.mark.parametrize("text", _TEXT_CASES)
def test_text_arguments_parse_as_the_c_unpickler(text: bytes) -> None:
    """The walker's value (or failure) for a text opcode is the C unpickler's reading a file object."""
    import io
    import pickle

    from ckaudit.reader.pickle import PickleError, walk_bytes

    data = text + b"."
    try:
        expected: object = pickle.load(io.BytesIO(data))
    except Exception:
        expected = "fails"
    try:
        seen: object = walk_bytes(data).root
    except PickleError:
        seen = "fails"
    assert (seen, type(seen)) == (expected, type(expected))
