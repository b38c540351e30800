"""Every published attack category is `unsafe-pickle`, nothing runs inside ckaudit, and the payloads are real.

The payloads (tests/reader/attacks.py) sit where torch.load reads them: as the data.pkl of a real torch.save
archive, as the main pickle of a legacy-format file, inside a real checkpoint's dict, and injected ahead of
a real data.pkl. A canary file proves nothing ran while ckaudit read them; a throwaway subprocess that
torch.load(weights_only=False)s each file proves the categories are genuinely dangerous.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from ckaudit.files.engine import FileScope, check_file
from ckaudit.findings import Rule
from ckaudit.reader import CheckpointReadError, read_checkpoint
from ckaudit.reader.safety import GlobalsVerdict, classify_globals
from tests.conftest import requires_torch
from tests.reader import attacks
from tests.reader import reader_fixtures as fx

pytestmark = requires_torch


def _audit(path: Path) -> GlobalsVerdict:
    """What ckaudit's reader names and calls in the file, classified, whether or not the file parses."""
    try:
        info = read_checkpoint(path)
        return classify_globals(info.globals, info.calls)
    except CheckpointReadError as exc:
        return classify_globals(exc.globals, exc.calls)


def _base_archive(folder: Path) -> Path:
    import torch

    base = folder / "base.pt"
    torch.save({"w": torch.ones(2)}, base)
    return base


def _data_pkl(archive: Path) -> bytes:
    with zipfile.ZipFile(archive) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))


def _write_files(folder: Path, canary: Path) -> dict[str, Path]:
    """name -> file: every category as data.pkl and as a legacy main pickle, plus two real checkpoints."""
    import torch

    base = _base_archive(folder)
    files = {}
    for name, payload in attacks.attack_pickles(canary).items():
        files[f"zip:{name}"] = folder / f"zip_{name}.pt"
        fx.replace_data_pkl(base, payload, files[f"zip:{name}"])
        files[f"legacy:{name}"] = folder / f"legacy_{name}.pt"
        fx.legacy_with_main(payload, files[f"legacy:{name}"])
    files["zip:checkpoint_dict_entry"] = folder / "checkpoint_dict_entry.pt"
    torch.save(
        {"model": {"w": torch.ones(2)}, "extra": attacks.Call(attacks.os.system, f"touch {canary}")},
        files["zip:checkpoint_dict_entry"],
    )
    injected = attacks.inject_into_data_pkl(
        _data_pkl(base), attacks.call_body("posix", "system", f"touch {canary}")
    )
    files["zip:checkpoint_injected"] = folder / "checkpoint_injected.pt"
    fx.replace_data_pkl(base, injected, files["zip:checkpoint_injected"])
    return files


@pytest.fixture(scope="module")
def attack_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    folder = tmp_path_factory.mktemp("attacks")
    canary = folder / "canary"
    return _write_files(folder, canary), canary


def test_every_category_is_unsafe_and_nothing_runs(attack_files: tuple[dict[str, Path], Path]) -> None:
    files, canary = attack_files
    missed = [name for name, path in files.items() if not _audit(path).unsafe]
    assert missed == []
    assert not canary.exists(), "a payload ran inside ckaudit"
    assert len(files) > 100  # two containers for each of the categories


def test_findings_are_unsafe_pickle_without_pasteable_allow_lines(
    attack_files: tuple[dict[str, Path], Path],
) -> None:
    """Through the file checks a user runs (scan, hook, diagnose): unsafe-pickle, and no add_safe_globals,
    also for files that are broken besides (a payload ahead of a parse error)."""
    files, canary = attack_files
    folder = canary.parent
    unreadable = set()
    for name, path in files.items():
        result, info = check_file(FileScope(folder), None, path.name)
        if info is None:
            unreadable.add(name)
        assert Rule.UNSAFE_PICKLE in [f.rule for f in result.findings], name
        assert not any("add_safe_globals([" in f.fix for f in result.findings), name
    assert {"zip:payload_then_bad_memo", "legacy:payload_then_unknown_opcode"} <= unreadable
    assert not canary.exists()


def test_plain_pickle_file_with_a_payload_after_its_first_pickle(tmp_path: Path) -> None:
    """A .pkl of several pickles: torch.load stops after the first, a second pickle.load runs the next."""
    payload = attacks.pickle.dumps(attacks.Call(attacks.os.system, f"touch {tmp_path / 'canary'}"))
    (tmp_path / "objects.pkl").write_bytes(attacks.pickle.dumps({"epoch": 1}) + payload + b"not a pickle")
    result, _info = check_file(FileScope(tmp_path), None, "objects.pkl")
    (unsafe,) = [f for f in result.findings if f.rule is Rule.UNSAFE_PICKLE]
    assert unsafe.details["unsafe"] == ["posix.system"]
    assert not (tmp_path / "canary").exists()


def test_names_reported_for_known_categories(attack_files: tuple[dict[str, Path], Path]) -> None:
    files, _canary = attack_files
    expect = {
        "zip:os_system": "posix.system",
        "zip:attribute_chain_torch_os": "torch.os.system",
        "legacy:stack_global_memo": "os.system",
        "zip:inst_opcode": "os.system",
        "zip:obj_opcode": "posix.system",
        "zip:python2_builtin_name": "builtins.eval",
        "zip:torch_collect_env_run": "torch.utils.collect_env.run",
        "zip:numpy_runstring": "numpy.testing._private.utils.runstring",
        "zip:rebuild_from_type_v2": "posix.system",
        "zip:build_patches_setstate": "argparse.Namespace.__setstate__",
        "zip:defaultdict_factory": "posix.system",
        "zip:payload_after_stop": "posix.system",
        "zip:payload_then_bad_memo": "posix.system",
        "legacy:frames_one_per_opcode": "posix.system",
        "zip:checkpoint_injected": "posix.system",
    }
    for name, unsafe in expect.items():
        assert unsafe in _audit(files[name]).unsafe, name
    assert "<dynamic>.<unresolved>" in _audit(files["zip:stack_global_computed"]).unsafe
    assert "<dynamic>.<unresolved>" in _audit(files["zip:operator_methodcaller"]).unsafe
    assert any(n.startswith("<copyreg-extension>") for n in _audit(files["zip:ext_opcode"]).unsafe)


@pytest.mark.slow
def test_payloads_are_real(attack_files: tuple[dict[str, Path], Path], tmp_path: Path) -> None:
    """A throwaway subprocess runs torch.load(weights_only=False) on each file: every real category
    creates the canary, so each one is a genuine code-execution path, not a made-up name."""
    files, canary = attack_files
    real = attacks.real_categories(attacks.attack_pickles(canary))
    chosen = {f"zip:{n}": str(files[f"zip:{n}"]) for n in real}
    chosen |= {
        f"legacy:{n}": str(files[f"legacy:{n}"])
        for n in ("os_system", "frames_one_per_opcode", "payload_after_stop")
    }
    chosen |= {n: str(files[n]) for n in ("zip:checkpoint_dict_entry", "zip:checkpoint_injected")}
    chosen["raw:payload_after_stop"] = str(files["zip:payload_after_stop"])
    ran = attacks.payloads_ran(canary, chosen, tmp_path)
    assert sorted(n for n, created in ran.items() if not created) == []
    assert len(ran) >= 40


def test_walker_reports_payload_in_every_protocol() -> None:
    """Raw pickle bytes of every protocol, both decoders (bytes and stream)."""
    from ckaudit.reader.pickle import walk_bytes, walk_pickle

    for proto in range(6):
        data = attacks.pickle.dumps(attacks.Call(attacks.os.system, "true"), protocol=proto)
        assert "posix.system" in walk_bytes(data).calls, proto
        assert "posix.system" in walk_pickle(io.BytesIO(data), len(data)).calls, proto
