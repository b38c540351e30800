"""Every pickle stream is audited, wherever it sits, and `unsafe-pickle` is never hidden behind the file
being broken or no checkpoint: plain pickles of every protocol, each of the legacy format's five pickles,
extra and duplicate archive members, a cut archive, numpy object arrays, torch's tar format.

Each payload is a canary; ckaudit must never create it, and torch.load / np.load in a throwaway
subprocess must (so every file here is genuinely dangerous).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from ckaudit.files.engine import FileScope, check_file
from ckaudit.findings import Finding, Rule
from tests.conftest import requires_torch
from tests.reader import streams
from tests.reader.streams import Entry

pytestmark = requires_torch


def _make_dangerous(root: Path) -> dict[str, Path]:
    """name -> file; each file's payload touches root/canaries/<name>."""
    import numpy as np
    import torch

    canaries = root / "canaries"
    canaries.mkdir()
    files: dict[str, Path] = {}

    def add(name: str, suffix: str = ".pt") -> tuple[Path, Path]:
        files[name] = root / f"{name}{suffix}"
        return files[name], canaries / name

    for protocol in range(6):
        path, canary = add(f"raw_protocol{protocol}", ".bin")
        path.write_bytes(streams.raw_pickle(canary, protocol))
    for where in ("magic", "protocol", "sys_info", "main", "keys"):
        path, canary = add(f"legacy_{where}")
        path.write_bytes(streams.legacy_parts(canary, where))
    base = root / "base.pt"
    torch.save({"w": torch.ones(2)}, base)
    entries = streams.torch_entries(base)
    path, canary = add("zip_extra_member")
    write = streams.write_zip
    write(path, [*entries, Entry(b"base/extra.pkl", streams.data_pkl_payload(canary))])
    path, canary = add("zip_duplicate")  # torch reads the first copy, Python's zipfile the second
    evil = streams.data_pkl_payload(canary)
    write(path, [Entry(b"base/data.pkl", evil), *entries[1:5], entries[0], *entries[5:]])
    path, canary = add("zip_nul_name")
    write(
        path,
        streams.with_data_pkl(
            entries, lambda e: [Entry(e.name, evil_of(canary)), Entry(e.name + b"\0.x", e.data)]
        ),
    )
    path, canary = add("zip_bad_crc")
    write(path, streams.with_data_pkl(entries, lambda e: [Entry(e.name, evil_of(canary), crc=1)]))
    path, canary = add("zip_upper_case")
    write(path, streams.with_data_pkl(entries, lambda e: [Entry(b"base/DATA.PKL", evil_of(canary))]))
    path, canary = add("zip_cut_tail")
    write(path, streams.with_data_pkl(entries, lambda e: [Entry(e.name, evil_of(canary))]))
    path.write_bytes(path.read_bytes()[:-30])
    path, canary = add("tar", ".tar")
    streams.write_tar_checkpoint(path, streams.tar_main_pickle(streams.payload(canary)), [1.0, 2.0])
    path, canary = add("tar_shadowed", ".tar")  # torch reads the later, benign copy: audited anyway
    shadowed = streams.tar_main_pickle(streams.payload(canary))
    streams.write_tar_checkpoint(path, streams.tar_main_pickle(), [1.0], shadowed=shadowed)
    path, canary = add("npy_object", ".npy")
    np.save(path, np.array([1, streams.payload(canary)], dtype=object), allow_pickle=True)
    path, canary = add("npz_object", ".npz")
    np.savez(path, a=np.ones(2), b=np.array([streams.payload(canary)], dtype=object))
    return files


def evil_of(canary: Path) -> bytes:
    return streams.data_pkl_payload(canary)


@pytest.fixture(scope="module")
def dangerous(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("dangerous")
    return root, _make_dangerous(root)


def _findings(root: Path, path: Path) -> list[Finding]:
    result, _info = check_file(FileScope(root=root), None, path.name)
    return list(result.findings)


def test_every_stream_is_unsafe_and_nothing_runs(dangerous: tuple[Path, dict[str, Path]]) -> None:
    root, files = dangerous
    for name, path in files.items():
        findings = _findings(root, path)
        rules = [f.rule for f in findings]
        assert Rule.UNSAFE_PICKLE in rules, (name, [f.message for f in findings])
        unsafe = next(f for f in findings if f.rule is Rule.UNSAFE_PICKLE)
        assert "system" in unsafe.message, (name, unsafe.message)
        for finding in findings:
            assert "Download or copy the real file" not in (finding.fix or ""), name
    assert list((root / "canaries").iterdir()) == []


def test_broken_files_keep_their_own_finding_beside_unsafe(dangerous: tuple[Path, dict[str, Path]]) -> None:
    root, files = dangerous
    expected = {
        "raw_protocol0": Rule.NOT_A_CHECKPOINT,
        "raw_protocol5": Rule.NOT_A_CHECKPOINT,
        "legacy_magic": Rule.NOT_A_CHECKPOINT,
        "legacy_protocol": Rule.CORRUPT,
        "legacy_keys": Rule.CORRUPT,
        "zip_duplicate": Rule.CORRUPT,
        "zip_nul_name": Rule.CORRUPT,
        "zip_bad_crc": Rule.CORRUPT,
        "zip_cut_tail": Rule.TRUNCATED,
        "npy_object": Rule.NOT_A_CHECKPOINT,
        "npz_object": Rule.NOT_A_CHECKPOINT,
        "tar": Rule.WEIGHTS_ONLY_BLOCKED,
    }
    for name, rule in expected.items():
        rules = [f.rule for f in _findings(root, files[name])]
        assert rules[0] is Rule.UNSAFE_PICKLE, (name, rules)
        assert rule in rules, (name, rules)


def test_plain_pickles_are_their_own_format(tmp_path: Path) -> None:
    """A benign plain pickle is no checkpoint, but it is not 'download again' and nothing is unsafe."""
    for protocol in range(6):
        path = tmp_path / f"state{protocol}.pt"  # a .pkl nobody registered is only a note
        path.write_bytes(pickle.dumps({"lr": 0.1, "steps": [1, 2]}, protocol=protocol))
        findings = _findings(tmp_path, path)
        assert [f.rule for f in findings] == [Rule.NOT_A_CHECKPOINT]
        assert findings[0].details["format"] == "pickle"
        assert "plain pickle" in findings[0].message and "torch.save" in (findings[0].fix or "")


_ORACLE = """
import json, sys, warnings
warnings.filterwarnings("ignore")
import numpy, torch
for path in sys.argv[1:]:
    try:
        if path.endswith((".npy", ".npz")):
            loaded = numpy.load(path, allow_pickle=True)
            [loaded[k] for k in loaded.files] if hasattr(loaded, "files") else loaded
        else:
            torch.load(path, weights_only=False)
    except BaseException:
        pass
"""


@pytest.mark.slow
def test_each_payload_runs_under_torch_load(dangerous: tuple[Path, dict[str, Path]], tmp_path: Path) -> None:
    """The oracle: a real torch.load(weights_only=False) (np.load for numpy files) runs every payload but
    three that ckaudit reports to fail closed: the cut archive's (torch cannot open it), the extra member's
    (torch.load reads only data.pkl; other loaders, torch.package's, read any .pkl) and the shadowed tar
    member's (a repeated name: tarfile reads the last copy)."""
    root, files = dangerous
    paths = [str(p) for p in files.values()]
    subprocess.run([sys.executable, "-c", _ORACLE, *paths], cwd=tmp_path, check=True, capture_output=True)
    ran = {p.name for p in (root / "canaries").iterdir()}
    assert ran == set(files) - {"zip_cut_tail", "zip_extra_member", "tar_shadowed"}
    for canary in (root / "canaries").iterdir():
        canary.unlink()


def test_payload_after_a_parse_error_in_a_shard(tmp_path: Path) -> None:
    """A sharded index whose shard is a dangerous plain pickle: unsafe-pickle names it through the index."""
    shard = tmp_path / "pytorch_model-00001-of-00001.bin"
    shard.write_bytes(streams.raw_pickle(tmp_path / "canary", 2))
    index = tmp_path / "pytorch_model.bin.index.json"
    index.write_text(json.dumps({"weight_map": {"w": shard.name}}))
    rules = [f.rule for f in _findings(tmp_path, index)]
    assert rules == [Rule.UNSAFE_PICKLE, Rule.NOT_A_CHECKPOINT]
    assert not (tmp_path / "canary").exists()


def test_tar_checkpoint_is_read(tmp_path: Path) -> None:
    from ckaudit.reader import read_checkpoint

    path = tmp_path / "old.pt"
    streams.write_tar_checkpoint(path, streams.tar_main_pickle(), [1.0, 2.0, 3.0])
    info = read_checkpoint(path)
    assert info.format == "torch-tar"
    assert [(t.key, t.shape, t.dtype) for t in info.tensors] == [("w", (3,), "float32")]
    rules = [f.rule for f in _findings(tmp_path, path)]
    assert rules == [Rule.WEIGHTS_ONLY_BLOCKED]  # torch.load(weights_only=True) refuses any tar file
    assert os.path.getsize(path) == info.size


def test_inspect_shows_what_a_broken_file_calls(
    dangerous: tuple[Path, dict[str, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    from ckaudit.cli import main

    _root, files = dangerous
    status = main(["inspect", str(files["raw_protocol4"]), "--format", "json"])
    error = json.loads(capsys.readouterr().out)["error"]
    assert status != 0 and error["rule"] == "not-a-checkpoint" and error["details"]["format"] == "pickle"
    assert "posix.system" in error["calls"]
    main(["inspect", str(files["zip_cut_tail"])])
    assert "pickle globals seen: posix.system" in capsys.readouterr().out


def test_tensors_pickled_with_plain_pickle(tmp_path: Path) -> None:
    """pickle.dump(state_dict) is a plain pickle (its tensors are torch.save bytes inside), not `corrupt`."""
    import torch

    path = tmp_path / "state.pt"
    path.write_bytes(pickle.dumps({"w": torch.ones(2)}, protocol=2))
    findings = _findings(tmp_path, path)
    plain = [f for f in findings if f.rule is Rule.NOT_A_CHECKPOINT]
    assert plain and plain[0].details["format"] == "pickle", [f.message for f in findings]
    assert Rule.CORRUPT not in [f.rule for f in findings]


def test_trusted_globals_hold_for_broken_files_too(tmp_path: Path) -> None:
    """A cut archive whose pickle instantiates the repository's own class: unsafe until the registry's
    trusted_globals vouch for it, then only `truncated`."""
    import torch

    from ckaudit.files.content import audit_read
    from tests.reader.reader_fixtures import UserThing

    path = tmp_path / "run.pt"
    torch.save({"w": torch.ones(2), "config": UserThing()}, path)
    path.write_bytes(path.read_bytes()[:-10])
    name = f"{UserThing.__module__}.{UserThing.__qualname__}"
    untrusted = audit_read(tmp_path, "run.pt")
    trusted = audit_read(tmp_path, "run.pt", trusted=[name])
    assert isinstance(untrusted, list) and isinstance(trusted, list)
    assert [f.rule for f in untrusted] == [Rule.UNSAFE_PICKLE, Rule.TRUNCATED]
    assert name in untrusted[0].message
    assert [f.rule for f in trusted] == [Rule.TRUNCATED]
