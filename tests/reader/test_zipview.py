"""Archive members are found as torch's own reader finds them; torch.load (in a subprocess) is the oracle.

Handcrafted archives: duplicate names, names differing only in case, a NUL byte in a name, a wrong CRC, a
local header naming another file, deflated pickles, an entry outside any folder, cut tails.
"""

from __future__ import annotations

import json
import pickle
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ckaudit.findings import Rule
from ckaudit.reader import CheckpointReadError, read_checkpoint
from ckaudit.reader.formats.zipview import TorchView, members_of
from tests.conftest import requires_torch
from tests.reader.streams import Entry, torch_entries, with_data_pkl, write_zip

pytestmark = requires_torch


@pytest.fixture(scope="module")
def base_entries(tmp_path_factory: pytest.TempPathFactory) -> list[Entry]:
    import torch

    saved = tmp_path_factory.mktemp("base") / "base.pt"
    torch.save({"w": torch.ones(2)}, saved)
    return torch_entries(saved)


def _tagged(tag: int) -> bytes:
    return pickle.dumps({"x": tag}, protocol=2)


_LOAD_TAGS = """
import json, sys, warnings
warnings.filterwarnings("ignore")
import torch
out = {}
for path in sys.argv[1:]:
    try:
        value = torch.load(path, weights_only=True)
        out[path] = value.get("x", "loaded") if isinstance(value, dict) else "loaded"
    except Exception as exc:
        out[path] = f"{type(exc).__name__}: {exc}"[:200]
print(json.dumps(out))
"""


def _torch_tags(paths: list[Path]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_TAGS, *map(str, paths)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _predicted_tag(path: Path) -> int | None:
    with zipfile.ZipFile(path) as archive, path.open("rb") as handle:
        member = TorchView(members_of(archive)).record("data.pkl")
        if member is None:
            return None
        handle.seek(member.info.header_offset + 30 + len(member.raw_name))
        return int(pickle.loads(handle.read(member.info.file_size))["x"])


def _arrangement(base: list[Entry], rng: random.Random) -> list[Entry]:
    """The base archive with 1-4 extra copies of data.pkl (each tagged) at random places."""
    entries = [e for e in base if not e.name.endswith(b"/data.pkl")]
    folder = base[0].name.split(b"/")[0]
    copies = [Entry(folder + b"/data.pkl", _tagged(i)) for i in range(rng.randint(2, 5))]
    entries.insert(0, copies[0])  # torch names the archive folder after the first entry
    for copy in copies[1:]:
        entries.insert(rng.randint(1, len(entries)), copy)
    if rng.random() < 0.3:
        entries.insert(rng.randint(1, len(entries)), Entry(folder + b"/DATA.PKL", _tagged(99)))
    return entries


@pytest.mark.slow
def test_duplicate_names_resolve_as_torch_resolves_them(tmp_path: Path, base_entries: list[Entry]) -> None:
    rng = random.Random(8)
    paths = []
    for i in range(40):
        paths.append(tmp_path / f"dup{i}.pt")
        write_zip(paths[-1], _arrangement(base_entries, rng))
    loaded = _torch_tags(paths)
    differs = 0
    for path in paths:
        assert loaded[str(path)] == _predicted_tag(path), path.name
        with zipfile.ZipFile(path) as archive:  # Python's zipfile: the last entry of the exact name
            python_pick = pickle.loads(archive.read("base/data.pkl"))["x"]
        differs += python_pick != loaded[str(path)]
    assert differs, "no arrangement where torch and Python's zipfile pick different copies"


def test_disagreements_are_corrupt_and_every_copy_is_audited(
    tmp_path: Path, base_entries: list[Entry]
) -> None:
    import os

    from tests.reader.reader_fixtures import Exploit

    canary = tmp_path / "canary"
    evil = pickle.dumps({"x": 0, "p": Exploit(os.system, f"touch {canary}")}, protocol=2)
    cases = {
        # torch reads entry 0 (the payload), Python's zipfile the later copy
        "dup": [
            *with_data_pkl(base_entries, lambda e: [Entry(e.name, evil)]),
            Entry(b"base/data.pkl", _tagged(1)),
        ],
        "nul": with_data_pkl(
            base_entries, lambda e: [Entry(e.name, evil), Entry(e.name + b"\x00x", _tagged(1))]
        ),
        "crc": with_data_pkl(base_entries, lambda e: [Entry(e.name, evil, crc=0)]),
        "local": with_data_pkl(base_entries, lambda e: [Entry(e.name, evil, local_name=b"base/other.pkl")]),
    }
    for name, entries in cases.items():
        path = tmp_path / f"{name}.pt"
        write_zip(path, entries)
        with pytest.raises(CheckpointReadError) as caught:
            read_checkpoint(path)
        assert caught.value.rule is Rule.CORRUPT, name
        assert "torch and Python's zipfile read this archive differently" in caught.value.message, name
        assert caught.value.details["disagreements"], name
        assert "posix.system" in caught.value.calls, name
    assert not canary.exists()


def test_a_name_python_cannot_decode(tmp_path: Path, base_entries: list[Entry]) -> None:
    """A member flagged UTF-8 whose name is not: Python's zipfile cannot open the archive (nor can
    torch.load, which decodes every record name); its pickles are still audited from the local headers."""
    import os

    from tests.reader.reader_fixtures import Exploit

    evil = pickle.dumps(Exploit(os.system, f"touch {tmp_path / 'canary'}"), protocol=2)
    path = tmp_path / "odd.pt"
    write_zip(path, [*base_entries, Entry(b"base/\xff\xfe.pkl", evil, flags=0x800)])
    with pytest.raises(CheckpointReadError) as caught:
        read_checkpoint(path)
    assert caught.value.rule is Rule.CORRUPT
    assert "posix.system" in caught.value.calls
    assert not (tmp_path / "canary").exists()


@pytest.mark.slow
def test_what_only_torch_reads(tmp_path: Path, base_entries: list[Entry]) -> None:
    """An upper-case DATA.PKL is torch's data.pkl (miniz compares names case-insensitively); a deflated one
    is read; an archive whose first entry sits in no folder is no torch checkpoint."""
    upper = tmp_path / "upper.pt"
    write_zip(upper, with_data_pkl(base_entries, lambda e: [Entry(b"base/DATA.PKL", e.data)]))
    assert read_checkpoint(upper).tensors[0].key == "w"
    deflated = tmp_path / "deflated.pt"
    write_zip(deflated, with_data_pkl(base_entries, lambda e: [Entry(e.name, e.data, method=8)]))
    assert read_checkpoint(deflated).tensors[0].shape == (2,)
    loose = tmp_path / "loose.pt"
    write_zip(loose, [Entry(b"readme", b"hi"), *base_entries])
    with pytest.raises(CheckpointReadError) as caught:
        read_checkpoint(loose)
    assert caught.value.rule is Rule.NOT_A_CHECKPOINT
    outcomes = _torch_tags([upper, deflated, loose])
    assert outcomes[str(upper)] == outcomes[str(deflated)] == "loaded"
    assert "not in a subdirectory" in str(outcomes[str(loose)])


def test_zip_cut_anywhere_is_truncated(files: dict[str, Path], tmp_path: Path) -> None:
    """Every prefix of a torch.save archive (past its first bytes) lacks the end of the central directory."""
    data = files["small.pt"].read_bytes()
    target = tmp_path / "cut.pt"
    for cut in [*range(2, 200, 7), *range(len(data) - 120, len(data))]:
        target.write_bytes(data[:cut])
        with pytest.raises(CheckpointReadError) as caught:
            read_checkpoint(target)
        assert caught.value.rule is Rule.TRUNCATED, (cut, caught.value.message)
